from django.urls import path, register_converter

from users.models import USER_ID_PATTERN
from users.views import (
    access,
    approvals,
    board,
    client_file,
    common,
    dashboard,
    detail,
    edit,
    invite,
    reveal,
    saved_views,
    security,
    sessions,
    tokens,
)
from users.views import list as list_views


class UserIdConverter:
    """`U` + ULID only, so that /users/<word>/ routes of other screens never reach a detail."""

    regex = USER_ID_PATTERN

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(UserIdConverter, "user_id")

app_name = "users"

urlpatterns = [
    path("", common.home, name="home"),
    # list, bulk actions, export and the status board (users/views/list.py, users/views/board.py)
    path("users/", list_views.user_list, name="user-list"),
    path("users/bulk/", list_views.user_bulk, name="user-bulk"),
    path("users/export.csv", list_views.user_export, name="user-export"),
    path("board/", board.board, name="board"),
    path("board/move/<user_id:pk>/", board.board_move, name="board-move"),
    path("board/assign/<user_id:pk>/", board.board_assign, name="board-assign"),
    # saved views of the list and the board (users/views/saved_views.py)
    path("views/", saved_views.saved_views, name="saved-views"),
    path("views/save/", saved_views.saved_view_save, name="saved-view-save"),
    path("views/<int:pk>/rename/", saved_views.saved_view_rename, name="saved-view-rename"),
    path("views/<int:pk>/delete/", saved_views.saved_view_delete, name="saved-view-delete"),
    # detail + edit screens (users/views/detail.py, users/views/edit.py)
    path("users/new/", edit.user_create, name="user-create"),
    path("users/validate/", edit.user_validate_field, name="user-validate-field"),
    path("users/<user_id:pk>/", detail.user_detail, name="user-detail"),
    path("users/<user_id:pk>/edit/", edit.user_edit, name="user-edit"),
    path("users/<user_id:pk>/status/", detail.user_status, name="user-status"),
    path("users/<user_id:pk>/assign/", detail.user_assign, name="user-assign"),
    path("users/<user_id:pk>/notes/", detail.user_note, name="user-note"),
    path("users/<user_id:pk>/flags/", detail.user_flag, name="user-flag"),
    path("users/<user_id:pk>/roles/", detail.user_roles, name="user-roles"),
    path("users/<user_id:pk>/diff/", detail.user_diff, name="user-diff"),
    path("users/<user_id:pk>/delete/", detail.user_delete, name="user-delete"),
    path("users/<user_id:pk>/restore/", detail.user_restore, name="user-restore"),
    path("users/<user_id:pk>/sessions/", sessions.user_sessions, name="user-sessions"),
    path("users/<user_id:pk>/file/", client_file.user_file, name="user-file"),
    path("users/<user_id:pk>/reveal/<str:name>/", reveal.user_reveal, name="user-reveal"),
    path("users/<user_id:pk>/unlock/", detail.user_unlock, name="user-unlock"),
    path("users/<user_id:pk>/factors/reset/", detail.user_factors_reset, name="user-factors-reset"),
    # the onboarding dashboard (users/views/dashboard.py)
    path("dashboard/", dashboard.dashboard, name="dashboard"),
    # four-eyes approval (users/views/approvals.py)
    path("approvals/", approvals.approvals, name="approvals"),
    path(
        "change-requests/<int:pk>/approve/",
        approvals.change_request_approve,
        name="change-request-approve",
    ),
    path(
        "change-requests/<int:pk>/reject/",
        approvals.change_request_reject,
        name="change-request-reject",
    ),
    path(
        "change-requests/<int:pk>/withdraw/",
        approvals.change_request_withdraw,
        name="change-request-withdraw",
    ),
    # API tokens and console login invitations (users/views/tokens.py, users/views/invite.py)
    path("api-tokens/", tokens.api_tokens, name="api-tokens"),
    path("api-tokens/<int:pk>/revoke/", tokens.api_token_revoke, name="api-token-revoke"),
    # the security log (users/views/security.py)
    path("security-log/", security.security_log_page_view, name="security-log"),
    path("security-log/export.csv", security.security_log_export, name="security-log-export"),
    path("security-log/unlock/", security.security_log_unlock, name="security-log-unlock"),
    # the access log (users/views/access.py)
    path("access-log/", access.access_log_page_view, name="access-log"),
    path("access-log/export.csv", access.access_log_export, name="access-log-export"),
    path("invite/<uidb64>/<token>/", invite.invite_accept, name="invite-accept"),
]
