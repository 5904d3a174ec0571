"""Logging filters for the LOGGING setting."""

from __future__ import annotations

import logging


class ForbiddenWithoutTraceback(logging.Filter):
    """Log a 403 as its one line ("Forbidden (Permission denied): /path"), without a traceback.

    Django logs every `PermissionDenied` on `django.request` as a warning with the exception
    attached, so each refusal printed its traceback (and the exception it was raised while
    handling, when there was one): dozens of lines for an expected answer. A refusal is not a
    bug; the line keeps the path, and the record keeps its `status_code` and `request`.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) == 403:
            record.exc_info = None
            record.exc_text = None
        return True
