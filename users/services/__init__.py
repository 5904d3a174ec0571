"""Every write: one module per sub-domain, each service atomic, keyword-only and typed.

- `users`: create, update, status moves, flags, roles, delete and restore, with the version
  record and the status history written in the same transaction;
- `invitations`: a user created with a console login, and the set-password mail;
- `tokens`: API tokens issued, revoked and authenticated;
- `idempotency`: the API's idempotency keys;
- `proposals` and `change_requests`: four-eyes approval of guarded changes (filed by the
  writes above, decided by a second person);
- `notes`: case notes (append-only), alone or with a status move;
- `reason_codes`: the list of reason codes status moves take, maintained by admins.
"""

from users.services.change_requests import (
    change_request_approve,
    change_request_reject,
    change_request_withdraw,
    change_requests_expire,
)
from users.services.notes import case_note_add
from users.services.users import (
    StaleVersion,
    check_status_move,
    clean_user_data,
    creation_changes,
    proposed_changes,
    user_change_status,
    user_create,
    user_delete,
    user_restore,
    user_set_flag,
    user_set_flags,
    user_set_password,
    user_set_roles,
    user_snapshot,
    user_update,
)

__all__ = [
    "StaleVersion",
    "case_note_add",
    "change_request_approve",
    "change_request_reject",
    "change_request_withdraw",
    "change_requests_expire",
    "check_status_move",
    "clean_user_data",
    "creation_changes",
    "proposed_changes",
    "user_change_status",
    "user_create",
    "user_delete",
    "user_restore",
    "user_set_flag",
    "user_set_flags",
    "user_set_password",
    "user_set_roles",
    "user_snapshot",
    "user_update",
]
