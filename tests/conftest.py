import pytest
from django.db import connection

from tests.factories import make_console_user, make_user, sign_in
from users.models import Role


@pytest.fixture
def admin_user(db):
    return make_console_user(Role.ADMIN)


@pytest.fixture
def back_office_user(db):
    return make_console_user(Role.BACK_OFFICE)


@pytest.fixture
def compliance_user(db):
    return make_console_user(Role.COMPLIANCE)


@pytest.fixture
def user(db, admin_user):
    return make_user(actor=admin_user)


@pytest.fixture
def admin_client(client, admin_user):
    sign_in(client, admin_user)
    return client


@pytest.fixture
def back_office_client(client, back_office_user):
    sign_in(client, back_office_user)
    return client


@pytest.fixture
def compliance_client(client, compliance_user):
    sign_in(client, compliance_user)
    return client


def pytest_collection_modifyitems(config, items):
    """Tests marked `postgres` are skipped, with the reason, when the database is SQLite."""
    skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL); make test-pg runs it")
    if connection.vendor != "postgresql":
        for item in items:
            if "postgres" in item.keywords:
                item.add_marker(skip)


@pytest.fixture
def without_four_eyes(settings):
    """A deployment that guards nothing (`FOUR_EYES_GUARDED` empty): guarded changes apply at
    once. Only for tests about something else that change a counter account, roles or the
    CONSOLE flag on the way (a version's diff, sessions ended by a role taken away, ...); the
    four-eyes rule itself is held by tests/test_four_eyes.py and the tests that say so."""
    settings.FOUR_EYES_GUARDED = []
