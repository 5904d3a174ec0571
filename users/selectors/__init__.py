"""Every read the screens, the API and the admin make of users: one module per kind of page.

- `users`: the list's queryset, the search box, capped counts, offset and keyset pages, and
  the users an actor may see;
- `board`: counts per status and the board's columns;
- `history`: versions, status rows, case notes, the status timeline and the diff between two
  versions;
- `export`: the CSV's rows, in keyset chunks or as one COPY on PostgreSQL.
"""

from users.selectors.board import CARD_FIELDS, CardRow, board_columns, status_counts
from users.selectors.export import (
    EXPORT_CHUNK,
    EXPORT_FORMULA_START,
    export_copy_sql,
    export_in_database,
    iter_export_chunks,
    iter_export_records,
)
from users.selectors.history import (
    TimelineEntry,
    recent_case_notes,
    recent_status_changes,
    recent_versions,
    status_timeline,
    version_diff,
    versions_since,
)
from users.selectors.users import (
    COUNT_CAP,
    DEFERRED_JOIN_FROM,
    LIST_FIELDS,
    SearchTerm,
    capped_count,
    classify_search,
    count_for_page,
    flags_of,
    keyset_page,
    page_of_users,
    search_users,
    user_list_queryset,
    visible_users,
)

__all__ = [
    "CARD_FIELDS",
    "COUNT_CAP",
    "DEFERRED_JOIN_FROM",
    "EXPORT_CHUNK",
    "EXPORT_FORMULA_START",
    "LIST_FIELDS",
    "CardRow",
    "SearchTerm",
    "TimelineEntry",
    "board_columns",
    "capped_count",
    "classify_search",
    "count_for_page",
    "export_copy_sql",
    "export_in_database",
    "flags_of",
    "iter_export_chunks",
    "iter_export_records",
    "keyset_page",
    "page_of_users",
    "recent_case_notes",
    "recent_status_changes",
    "recent_versions",
    "search_users",
    "status_counts",
    "status_timeline",
    "user_list_queryset",
    "version_diff",
    "versions_since",
    "visible_users",
]
