"""The console's roles, as Django permissions on `users.User`.

The groups are created by the data migration `users/migrations/0002_roles.py`, which holds the
table of role -> permissions (a migration keeps its own frozen copy). Views and the API check
`user.has_perm("users.<codename>")`, never a role name, so the table is the one place to change.
"""
