"""Role-by-URL permission matrix over EVERY URL pattern of the console.

HOW TO REGISTER A NEW URL (other screens too): add an entry to `MATRIX` below, keyed by the
pattern's full name (`"users:user-list"`, or `"login"` for an un-namespaced one), saying

- `method`: the request the check makes ("GET" or "POST"; POST for anything that writes),
- `allowed`: the roles that get through (anything else must get a 403),
- `kwargs`: how to fill the URL's parameters from the `Subjects` fixture (a live user, a deleted
  one, an API token id),
- `data`: the POST body, if it matters (it should be a valid request, so "allowed" is real),
- `status`: the status code an allowed role gets (a page 200, a plain POST its redirect),
- `effect`: for a request that writes, what must have happened (the state after, the version
  record): a check of `(subjects, actor, response)`. Without one, nothing may change,
- `public`: True only for pages everyone may open (sign-in, sign-out, invitation links),
- `get_refused`: True when the URL must refuse GET (POST-only: nothing changes on GET).

`test_every_url_is_in_the_matrix` walks the resolver and FAILS for any pattern without an entry,
so a new screen cannot ship without saying who may use it. Unnamed patterns fail too: name them.

An allowed cell asserts the effect, not only "not 403": a view that answered 200 without doing
anything would pass a bare "not refused" check.

The Django admin (`admin/`) and the JSON API (`api/`) are left out on purpose: the admin has its
own permission system and tests (tests/test_admin.py), the API its token auth and tests
(tests/test_api.py).

A person without a console role cannot hold a session at all (console/auth.py drops it at the
next request), so the `no_role` column expects the sign-in page, exactly like `anonymous`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.factories import VALID_IBANS, make_console_user, make_user, sign_in
from users import services
from users.models import (
    AccessEvent,
    ApiToken,
    CaseAssignment,
    CaseNote,
    ChangeRequest,
    FeatureFlag,
    FeatureFlagGrant,
    Role,
    SavedView,
    SecurityEvent,
    Status,
    StatusChange,
    User,
    UserVersion,
)
from users.services.tokens import issue_token

EXCLUDED_PREFIXES = (
    "admin/",  # Django admin: its own permission checks (is_staff, model perms) and tests
    "api/",  # JSON API: token auth, tested in tests/test_api.py
    "webauthn/",  # django-otp-webauthn's JSON ceremonies, tested in tests/test_signin.py
)
ROLES = ("anonymous", "no_role", Role.BACK_OFFICE, Role.COMPLIANCE, Role.ADMIN)
ALL_ROLES = frozenset({Role.BACK_OFFICE, Role.COMPLIANCE, Role.ADMIN})
BACK_OFFICE, COMPLIANCE, ADMIN = Role.BACK_OFFICE, Role.COMPLIANCE, Role.ADMIN


@dataclass
class Subjects:
    user: Any
    deleted: Any
    token_pk: int
    change_request_pk: int  # a pending counter account of `user`, proposed by another admin


# (subjects, the signed-in actor or None, the response) -> asserts what the request did.
Effect = Callable[[Subjects, Any, Any], None]


@dataclass(frozen=True)
class Entry:
    method: str
    allowed: frozenset[str]
    status: int = 200
    effect: Effect | None = None
    kwargs: Callable[[Subjects], dict[str, Any]] = lambda s: {}
    data: Callable[[Subjects], dict[str, Any]] = lambda s: {}
    public: bool = False
    get_refused: bool = False
    notes: str = field(default="", compare=False)


def user_pk(s: Subjects) -> dict[str, Any]:
    return {"pk": s.user.pk}


def change_request_pk(s: Subjects) -> dict[str, Any]:
    return {"pk": s.change_request_pk}


def someone_elses_view(s: Subjects) -> dict[str, Any]:
    """A saved view of another person (issue 14.7): only its owner renames or deletes it."""
    view, _ = SavedView.objects.get_or_create(owner=s.user, screen="list", name="Theirs")
    return {"pk": view.pk}


# --- effects of the allowed requests -------------------------------------------------------------


def assert_new_version(before: User, actor: User, changes: dict[str, list[Any]]) -> User:
    """`before` is one version further, made by `actor`, with exactly `changes`."""
    after = User.objects.get(pk=before.pk)
    assert after.version == before.version + 1
    assert after.version_authored_by_user_id == actor.pk
    version = UserVersion.objects.get(user=after, version=after.version)
    assert version.author_id == actor.pk
    assert version.changes == changes
    return after


def moved_to_signature(s: Subjects, actor: User, response) -> None:
    moved = Status.WAITING_FOR_VERIFICATION, Status.WAITING_FOR_SIGNATURE
    after = assert_new_version(s.user, actor, {"status": list(moved)})
    assert after.status == Status.WAITING_FOR_SIGNATURE
    change = StatusChange.objects.get(user=after, version=after.version)
    assert (change.from_status, change.to_status) == moved
    assert change.changed_by_id == actor.pk
    assert not change.off_flow


def assigned_to_actor(s: Subjects, actor: User, response) -> None:
    after = User.objects.get(pk=s.user.pk)
    assert after.assignee_id == actor.pk
    row = CaseAssignment.objects.get(user=after)
    assert (row.assignee_id, row.previous_assignee_id, row.assigned_by_id) == (
        actor.pk,
        None,
        actor.pk,
    )


def storyteller_granted(s: Subjects, actor: User, response) -> None:
    assert_new_version(s.user, actor, {"feature_flags": [[], [FeatureFlag.STORYTELLER]]})
    grant = FeatureFlagGrant.objects.get(user=s.user, flag=FeatureFlag.STORYTELLER)
    assert grant.granted_by_id == actor.pk


def made_back_office(s: Subjects, actor: User, response) -> None:
    # Four-eyes: the grant is proposed, the record unchanged until a second person approves.
    request = ChangeRequest.objects.get(
        user=s.user, kind=ChangeRequest.Kind.ROLES, state=ChangeRequest.State.PENDING
    )
    assert request.proposed_by_id == actor.pk
    assert request.changes == {"roles": [[], [Role.BACK_OFFICE]]}
    assert User.objects.get(pk=s.user.pk).role_names() == set()


def view_saved(s: Subjects, actor: User, response) -> None:
    view = SavedView.objects.get(owner=actor, name="Belgium")
    assert (view.screen, view.query) == ("list", "residency_country=BE")


def soft_deleted(s: Subjects, actor: User, response) -> None:
    after = assert_new_version(s.user, actor, {"deleted": [False, True]})
    assert after.deleted


def restored(s: Subjects, actor: User, response) -> None:
    after = assert_new_version(s.deleted, actor, {"deleted": [True, False]})
    assert not after.deleted


def token_revoked(s: Subjects, actor: User, response) -> None:
    token = ApiToken.objects.get(pk=s.token_pk)
    assert token.revoked_at is not None
    assert token.revoked_by_id == actor.pk


def signed_out(s: Subjects, actor: User | None, response) -> None:
    assert response["Location"] == reverse("login")
    assert "_auth_user_id" not in response.wsgi_request.session


def redirects_to(name: str) -> Effect:
    def effect(s: Subjects, actor: User, response) -> None:
        assert response["Location"] == reverse(name)

    return effect


def csv_of_the_users(s: Subjects, actor: User, response) -> None:
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    assert body.startswith("id,external_id,")
    assert s.user.pk in body
    assert s.deleted.pk not in body  # deleted users only when asked for


def csv_of_the_log(s: Subjects, actor: User, response) -> None:
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    assert body.startswith("at,kind,actor,subject,")


def csv_of_the_access_log(s: Subjects, actor: User, response) -> None:
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    assert body.startswith("at,kind,actor,subject,")


def unlocked(s: Subjects, actor: User, response) -> None:
    row = SecurityEvent.objects.get(kind=SecurityEvent.Kind.UNLOCKED)
    assert (row.actor_id, row.username) == (actor.pk, "locked@x.example")


def account_approved(s: Subjects, actor: User, response) -> None:
    request = ChangeRequest.objects.get(pk=s.change_request_pk)
    assert (request.state, request.decided_by_id) == (ChangeRequest.State.APPROVED, actor.pk)
    after = User.objects.get(pk=s.user.pk)
    assert after.bank_account_number == VALID_IBANS[0]
    version = UserVersion.objects.get(user=after, version=after.version)
    assert version.approved_by_id == actor.pk
    assert version.author_id == request.proposed_by_id != actor.pk


def account_rejected(s: Subjects, actor: User, response) -> None:
    request = ChangeRequest.objects.get(pk=s.change_request_pk)
    assert (request.state, request.decided_by_id) == (ChangeRequest.State.REJECTED, actor.pk)
    assert request.decision_reason == "Not the client's account"
    assert User.objects.get(pk=s.user.pk).bank_account_number == ""


def lists_the_request(s: Subjects, actor: User, response) -> None:
    assert f'id="change-request-{s.change_request_pk}"' in response.content.decode()


def user_unlocked(s: Subjects, actor: User, response) -> None:
    row = SecurityEvent.objects.get(kind=SecurityEvent.Kind.UNLOCKED)
    assert (row.actor_id, row.subject_id) == (actor.pk, s.user.pk)


def factors_were_reset(s: Subjects, actor: User, response) -> None:
    row = SecurityEvent.objects.get(kind=SecurityEvent.Kind.FACTOR_RESET)
    assert (row.actor_id, row.subject_id) == (actor.pk, s.user.pk)


def field_checked(s: Subjects, actor: User, response) -> None:
    assert response.content.decode().lstrip().startswith('<div id="field-first_name"')


def lists_this_session(s: Subjects, actor: User, response) -> None:
    assert "this session" in response.content.decode()


def lists_sessions(s: Subjects, actor: User, response) -> None:
    assert "Sessions of" in response.content.decode()


def note_added(s: Subjects, actor: User, response) -> None:
    note = CaseNote.objects.get(user=s.user)
    assert (note.author, note.text) == (actor, "Called the client.")


def shows_the_file(s: Subjects, actor: User, response) -> None:
    assert f"Record at version {s.user.version}" in response.content.decode()


def revealed(s: Subjects, actor: User, response) -> None:
    assert "85073003361" in response.content.decode()
    event = AccessEvent.objects.get(kind=AccessEvent.Kind.REVEALED, actor=actor)
    assert (event.subject_id, event.field) == (s.user.pk, "identity")


MATRIX: dict[str, Entry] = {
    # sign-in and own account
    "favicon": Entry("GET", ALL_ROLES, status=302, public=True, notes="to the static SVG"),
    "login": Entry("GET", ALL_ROLES, status=302, effect=redirects_to("users:home"), public=True),
    "logout": Entry(
        "POST", ALL_ROLES, status=302, effect=signed_out, public=True, get_refused=True
    ),
    # The second factor: a verified session gets the step-up form, enrolment and the recovery
    # codes send it on (it has a factor, and no new codes to show).
    "signin-verify": Entry("GET", ALL_ROLES),
    "signin-enrol": Entry("GET", ALL_ROLES, status=302),
    "signin-recovery-codes": Entry("GET", ALL_ROLES, status=302),
    "account-factors": Entry("GET", ALL_ROLES),
    "password_change": Entry("GET", ALL_ROLES),
    # One's own sessions; "Stay signed in" of the idle warning (the plain form: back home).
    "account-sessions": Entry("GET", ALL_ROLES, effect=lists_this_session),
    "account-sessions-keep-alive": Entry(
        "POST", ALL_ROLES, status=302, effect=redirects_to("users:home"), get_refused=True
    ),
    "password_change_done": Entry("GET", ALL_ROLES),
    # A made-up link: the page that says so, for anyone.
    "users:invite-accept": Entry(
        "GET",
        ALL_ROLES,
        status=404,
        kwargs=lambda s: {"uidb64": "MA", "token": "nope"},
        public=True,
    ),
    # list, board, export
    "users:home": Entry("GET", ALL_ROLES, status=302, effect=redirects_to("users:user-list")),
    "users:user-list": Entry("GET", ALL_ROLES),
    "users:user-export": Entry("GET", ALL_ROLES, effect=csv_of_the_users),
    "users:user-bulk": Entry(
        "POST",
        frozenset({COMPLIANCE, ADMIN}),
        status=302,
        effect=moved_to_signature,
        data=lambda s: {
            "action": "status",
            "status": Status.WAITING_FOR_SIGNATURE,
            "ids": [s.user.pk],
        },
        get_refused=True,
    ),
    "users:board": Entry("GET", ALL_ROLES),
    "users:board-move": Entry(
        "POST",
        frozenset({COMPLIANCE, ADMIN}),
        status=302,
        effect=moved_to_signature,
        kwargs=user_pk,
        data=lambda s: {"status": Status.WAITING_FOR_SIGNATURE},
        get_refused=True,
    ),
    "users:board-assign": Entry(
        "POST",
        frozenset({COMPLIANCE, ADMIN}),
        status=302,
        effect=assigned_to_actor,
        kwargs=user_pk,
        get_refused=True,
    ),
    # detail, create, edit
    "users:user-detail": Entry("GET", ALL_ROLES, kwargs=user_pk),
    "users:user-create": Entry("GET", frozenset({BACK_OFFICE, ADMIN})),
    "users:user-validate-field": Entry(
        "POST",
        frozenset({BACK_OFFICE, ADMIN}),
        effect=field_checked,  # checks one input; saves nothing
        data=lambda s: {"_field": "first_name", "first_name": "Jo"},
        get_refused=True,
    ),
    "users:user-edit": Entry("GET", frozenset({BACK_OFFICE, ADMIN}), kwargs=user_pk),
    "users:user-status": Entry(
        "POST",
        frozenset({COMPLIANCE, ADMIN}),
        status=302,
        effect=moved_to_signature,
        kwargs=user_pk,
        data=lambda s: {"status": Status.WAITING_FOR_SIGNATURE},
        get_refused=True,
    ),
    "users:user-assign": Entry(
        "POST",
        frozenset({COMPLIANCE, ADMIN}),
        status=302,
        effect=assigned_to_actor,
        kwargs=user_pk,
        data=lambda s: {"action": "claim", "expected_assignee": ""},
    ),
    "users:user-note": Entry(
        "POST",
        frozenset({COMPLIANCE, ADMIN}),
        status=302,
        effect=note_added,
        kwargs=user_pk,
        data=lambda s: {"note": "Called the client."},
        get_refused=True,
    ),
    "users:user-flag": Entry(
        "POST",
        frozenset({ADMIN}),
        status=302,
        effect=storyteller_granted,
        kwargs=user_pk,
        data=lambda s: {"flag": FeatureFlag.STORYTELLER, "enabled": "1"},
        get_refused=True,
    ),
    # GET shows the form with a choice checked (where a step-up returns); POST saves.
    "users:user-roles": Entry(
        "POST",
        frozenset({ADMIN}),
        status=302,
        effect=made_back_office,
        kwargs=user_pk,
        data=lambda s: {"role": Role.BACK_OFFICE},
    ),
    "users:user-diff": Entry("GET", frozenset({BACK_OFFICE, COMPLIANCE, ADMIN}), kwargs=user_pk),
    # four-eyes: approvers (approve_change) see and decide; only the proposer withdraws, and
    # the fixture's request was proposed by another admin than the one signed in here.
    "users:approvals": Entry("GET", frozenset({COMPLIANCE, ADMIN}), effect=lists_the_request),
    "users:change-request-approve": Entry(
        "POST",
        frozenset({COMPLIANCE, ADMIN}),
        status=302,
        effect=account_approved,
        kwargs=change_request_pk,
        get_refused=True,
    ),
    "users:change-request-reject": Entry(
        "POST",
        frozenset({COMPLIANCE, ADMIN}),
        status=302,
        effect=account_rejected,
        kwargs=change_request_pk,
        data=lambda s: {"reason": "Not the client's account"},
        get_refused=True,
    ),
    "users:change-request-withdraw": Entry(
        "POST", frozenset(), kwargs=change_request_pk, get_refused=True
    ),
    # saved views (issue 14.7): whoever sees the list saves; only the owner renames or deletes
    "users:saved-views": Entry("GET", ALL_ROLES),
    "users:saved-view-save": Entry(
        "POST",
        ALL_ROLES,
        status=302,
        effect=view_saved,
        data=lambda s: {"screen": "list", "name": "Belgium", "query": "residency_country=BE"},
        get_refused=True,
    ),
    "users:saved-view-rename": Entry(
        "POST", frozenset(), kwargs=someone_elses_view, data=lambda s: {"name": "Mine"}
    ),
    "users:saved-view-delete": Entry("POST", frozenset(), kwargs=someone_elses_view),
    # GET is the confirmation page (works without JavaScript); POST deletes.
    "users:user-delete": Entry(
        "POST", frozenset({BACK_OFFICE, ADMIN}), status=302, effect=soft_deleted, kwargs=user_pk
    ),
    "users:user-restore": Entry(
        "POST",
        frozenset({ADMIN}),
        status=302,
        effect=restored,
        kwargs=lambda s: {"pk": s.deleted.pk},
        get_refused=True,
    ),
    # the security log and its CSV (tests/test_security_log.py)
    "users:security-log": Entry("GET", frozenset({ADMIN})),
    "users:security-log-export": Entry("GET", frozenset({ADMIN}), effect=csv_of_the_log),
    "users:security-log-unlock": Entry(
        "POST",
        frozenset({ADMIN}),
        status=302,
        effect=unlocked,
        data=lambda s: {"username": "locked@x.example"},
        get_refused=True,
    ),
    # the access log and its CSV (issue 13.4, tests/test_access_log.py): compliance and admins
    "users:access-log": Entry("GET", frozenset({COMPLIANCE, ADMIN})),
    "users:access-log-export": Entry(
        "GET", frozenset({COMPLIANCE, ADMIN}), effect=csv_of_the_access_log
    ),
    # the onboarding dashboard (issue 14.6, tests/test_dashboard.py): compliance and admins
    "users:dashboard": Entry("GET", frozenset({COMPLIANCE, ADMIN})),
    # Another user's sessions: admins only.
    "users:user-sessions": Entry(
        "GET", frozenset({ADMIN}), kwargs=lambda s: {"pk": s.user.pk}, effect=lists_sessions
    ),
    # A user's file as of a date (issue 13.5): compliance and admins.
    "users:user-file": Entry(
        "GET",
        frozenset({COMPLIANCE, ADMIN}),
        kwargs=user_pk,
        data=lambda s: {"as_of": "2100-01-01"},
        effect=shows_the_file,
    ),
    # Revealing a masked value with a purpose (issue 13.3): compliance and admins.
    "users:user-reveal": Entry(
        "POST",
        frozenset({COMPLIANCE, ADMIN}),
        kwargs=lambda s: {"pk": s.user.pk, "name": "identity"},
        data=lambda s: {"purpose": "KYC_REVIEW"},
        effect=revealed,
    ),
    # the sign-in region of the detail page (tests/test_unlock.py): unlock, and factor reset
    # (GET is its confirmation; POST after step-up resets)
    "users:user-unlock": Entry(
        "POST",
        frozenset({ADMIN}),
        status=302,
        effect=user_unlocked,
        kwargs=user_pk,
        get_refused=True,
    ),
    "users:user-factors-reset": Entry(
        "POST", frozenset({ADMIN}), status=302, effect=factors_were_reset, kwargs=user_pk
    ),
    # API tokens page (the API itself is excluded above)
    "users:api-tokens": Entry("GET", frozenset({ADMIN})),
    "users:api-token-revoke": Entry(
        "POST",
        frozenset({ADMIN}),
        status=302,
        effect=token_revoked,
        kwargs=lambda s: {"pk": s.token_pk},
        notes="GET asks for confirmation (tests/test_tokens.py); only POST revokes",
    ),
}


def walk(patterns, prefix: str = "", namespace: str = "") -> Iterator[tuple[str, str | None]]:
    """(route, full name) for every pattern, descending into includes."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            ns = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from walk(pattern.url_patterns, prefix + str(pattern.pattern), ns)
        elif isinstance(pattern, URLPattern):
            name = f"{namespace}{pattern.name}" if pattern.name else None
            yield prefix + str(pattern.pattern), name


def console_patterns() -> list[tuple[str, str | None]]:
    return [
        (route, name)
        for route, name in walk(get_resolver().url_patterns)
        if not route.startswith(EXCLUDED_PREFIXES)
    ]


def test_every_url_is_in_the_matrix():
    patterns = console_patterns()
    unnamed = [route for route, name in patterns if name is None]
    assert not unnamed, f"Name these URL patterns so the matrix can list them: {unnamed}"
    missing = sorted({name for _, name in patterns} - set(MATRIX))
    assert not missing, (
        f"URL patterns without a permission entry: {missing}. "
        "Add them to MATRIX in tests/test_permissions.py (see the comment at its top)."
    )
    stale = sorted(set(MATRIX) - {name for _, name in patterns})
    assert not stale, f"MATRIX lists URLs that no longer exist: {stale}"


@pytest.fixture
def subjects(db, admin_user) -> Subjects:
    user = make_user(actor=admin_user, identity="85073003361")
    deleted = make_user(actor=admin_user)
    services.user_delete(user=deleted, actor=admin_user)
    token, _secret = issue_token(user=admin_user, name="matrix")
    proposed = services.user_update(
        user=user,
        data={"counter_account": {"bank_account_number": VALID_IBANS[0]}},
        actor=admin_user,
    )
    [request] = services.proposed_changes(proposed)
    return Subjects(
        user=User.objects.get(pk=user.pk),
        deleted=User.objects.get(pk=deleted.pk),
        token_pk=token.pk,
        change_request_pk=request.pk,
    )


def client_for(role: str) -> tuple[Client, User | None]:
    """A client signed in with `role`, and who that is (None when anonymous)."""
    client = Client()
    if role == "anonymous":
        return client, None
    if role == "no_role":
        user = make_console_user(Role.BACK_OFFICE)
        user.groups.clear()
        sign_in(client, user)
        return client, user
    user = make_console_user(role)
    sign_in(client, user)
    return client, user


def audit_counts() -> tuple[int, ...]:
    return (
        UserVersion.objects.count(),
        StatusChange.objects.count(),
        FeatureFlagGrant.objects.count(),
        ApiToken.objects.filter(revoked_at__isnull=False).count(),
        ChangeRequest.objects.count(),
        ChangeRequest.objects.exclude(state=ChangeRequest.State.PENDING).count(),
        CaseAssignment.objects.count(),
    )


def is_sign_in_redirect(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", sorted(MATRIX))
def test_role_url_matrix(name, role, subjects):
    entry = MATRIX[name]
    url = reverse(name, kwargs=entry.kwargs(subjects))
    client, actor = client_for(role)
    before = audit_counts()
    send = client.get if entry.method == "GET" else client.post
    response = send(url, entry.data(subjects))

    assert response.status_code < 500, f"{name} as {role}: {response.status_code}"
    allowed = role in entry.allowed
    if entry.public and not allowed:
        # Signed out (or dropped at the request for want of a role): the page still opens.
        assert response.status_code != 403, f"{name} is public but refused {role}"
    elif role in ("anonymous", "no_role"):
        assert is_sign_in_redirect(response), f"{name} as {role} must go to sign-in"
    elif allowed:
        assert response.status_code == entry.status, f"{name} as {role}: {response.status_code}"
        if entry.effect is not None:
            entry.effect(subjects, actor, response)
    else:
        assert response.status_code == 403, f"{name} must refuse {role}: {response.status_code}"
        assert "You do not have access" in response.content.decode()
    writes = allowed and entry.effect in WRITES
    if not writes:
        # Nothing changes on GET, nothing changes when refused, and a check saves nothing.
        assert audit_counts() == before, f"{name} as {role} changed data"


# Effects that are writes: every other request must leave the audit trail as it was.
WRITES = frozenset(
    {
        moved_to_signature,
        storyteller_granted,
        made_back_office,
        soft_deleted,
        restored,
        token_revoked,
        account_approved,
        account_rejected,
        assigned_to_actor,
    }
)


@pytest.mark.parametrize("name", sorted(n for n, e in MATRIX.items() if e.get_refused))
def test_post_only_urls_refuse_get(name, subjects, admin_user):
    entry = MATRIX[name]
    client = Client()
    sign_in(client, admin_user)
    before = audit_counts()
    response = client.get(reverse(name, kwargs=entry.kwargs(subjects)))
    assert response.status_code == 405
    assert audit_counts() == before


def test_htmx_posts_need_the_csrf_token(subjects, compliance_user):
    """CSRF applies to HTMX requests too: base.html sends the token as X-CSRFToken."""
    client = Client(enforce_csrf_checks=True)
    sign_in(client, compliance_user)
    url = reverse("users:board-move", kwargs={"pk": subjects.user.pk})
    data = {"status": Status.WAITING_FOR_SIGNATURE}
    refused = client.post(url, data, headers={"HX-Request": "true"})
    assert refused.status_code == 403
    subjects.user.refresh_from_db()
    assert subjects.user.status == Status.WAITING_FOR_VERIFICATION

    page = client.get(reverse("users:board"))
    token = page.context["csrf_token"]
    assert f'"X-CSRFToken": "{token}"' in page.content.decode()
    accepted = client.post(
        url, data, headers={"HX-Request": "true", "HX-Target": "board", "X-CSRFToken": str(token)}
    )
    assert accepted.status_code == 200
    subjects.user.refresh_from_db()
    assert subjects.user.status == Status.WAITING_FOR_SIGNATURE
