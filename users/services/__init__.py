"""Every write: one module per sub-domain, each service atomic, keyword-only and typed.

- `users`: create, update, status moves, flags, roles, delete and restore, with the version
  record and the status history written in the same transaction;
- `invitations`: a user created with a console login, and the set-password mail;
- `tokens`: API tokens issued, revoked and authenticated;
- `idempotency`: the API's idempotency keys.
"""

from users.services.users import (
    StaleVersion,
    check_status_move,
    clean_user_data,
    creation_changes,
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
    "check_status_move",
    "clean_user_data",
    "creation_changes",
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
