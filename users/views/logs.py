"""What the security log and the access log pages share: their filters carried in the page and
export links, and a streamed CSV whose cells a spreadsheet will not run as formulas."""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import json
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone

from users.selectors.export import EXPORT_FORMULA_START

_FORMULA_FIRST = frozenset("".join(EXPORT_FORMULA_START))
# Rows joined into one chunk of the stream: one write per row is most of the export's time.
CHUNK = 500


def filter_query(request: HttpRequest) -> str:
    """The filters of this request as a query string (the page and export links keep them)."""
    return urlencode([(k, v) for k, v in request.GET.items() if k != "after" and v])


def cell(value: object) -> str:
    """A cell's text; one a spreadsheet would run as a formula (as the users' export) is
    quoted."""
    text = "" if value is None else str(value)
    if text and text[0] in _FORMULA_FIRST:
        return "'" + text
    return text


def instant(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="seconds")


def detail_cell(detail: dict[str, Any] | None) -> str:
    return cell(json.dumps(detail, sort_keys=True) if detail else "")


class _Echo:
    def write(self, value: str) -> str:
        return value


def _lines(columns: Iterable[str], rows: Iterable[list[str]]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(columns)
    for chunk in itertools.batched(rows, CHUNK, strict=False):
        yield "".join(writer.writerow(row) for row in chunk)


def csv_response(
    *, name: str, columns: Iterable[str], rows: Iterable[list[str]]
) -> StreamingHttpResponse:
    """`rows` streamed as `<name>-<local time>.csv`, never cached."""
    response = StreamingHttpResponse(_lines(columns, rows), content_type="text/csv; charset=utf-8")
    filename = f"{name}-{timezone.localtime():%Y%m%d-%H%M}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response
