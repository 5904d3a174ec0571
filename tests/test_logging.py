"""What the console logs (console/settings.py LOGGING, console/log_filters.py)."""

from __future__ import annotations

import logging
import sys

from django.test import override_settings
from django.urls import reverse

from console.log_filters import ForbiddenWithoutTraceback


def test_a_403_is_logged_as_one_line_without_a_traceback(back_office_client, caplog):
    url = reverse("users:api-tokens")
    with caplog.at_level(logging.INFO):
        response = back_office_client.get(url)
    assert response.status_code == 403
    records = [r for r in caplog.records if r.name == "django.request"]
    assert len(records) == 1
    (record,) = records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == f"Forbidden (Permission denied): {url}"
    assert record.exc_info is None
    assert record.status_code == 403
    assert "Traceback" not in caplog.text


def test_other_errors_keep_their_traceback():
    try:
        raise ValueError("boom")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("django.request", logging.ERROR, __file__, 1, "x", (), exc_info)
    record.status_code = 500
    assert ForbiddenWithoutTraceback().filter(record)
    assert record.exc_info is exc_info


def _printing_handlers(logger_name: str, record: logging.LogRecord) -> list[logging.Handler]:
    """The handlers of the configuration (not pytest's) that would emit `record`."""
    found = []
    logger: logging.Logger | None = logging.getLogger(logger_name)
    while logger is not None:
        found += [
            h
            for h in logger.handlers
            if not type(h).__module__.startswith("_pytest")
            and record.levelno >= h.level
            and h.filter(record)
        ]
        logger = logger.parent if logger.propagate else None
    return found


@override_settings(DEBUG=True)
def test_a_request_warning_is_printed_once_even_with_debug():
    # Django's own "django" console handler (DEBUG only) printed it besides the root's.
    record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "x", (), None)
    assert len(_printing_handlers("django.request", record)) == 1
