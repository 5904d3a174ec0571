"""The benchmark's verdicts and report (the timing itself runs only at 1M users: make bench)."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from console.devtools.management.commands.bench import format_markdown, format_table, verdict


@pytest.mark.parametrize(
    ("console_p95", "admin_p95", "target", "met"),
    [
        (20.0, 250.0, 40, "yes"),  # under target, 12.5x the admin
        (30.0, 250.0, 40, "NO"),  # under target but only 8.3x an admin above 100 ms
        (45.0, 90.0, 50, "yes"),  # the admin is under 100 ms: the 10x rule does not apply
        (55.0, 90.0, 50, "NO"),  # over target
        (30.0, None, 40, "yes"),  # no admin figure (yet)
        (30.0, 250.0, None, "NO"),  # no target: only the ratio
        (None, 250.0, 40, "?"),
    ],
)
def test_verdict_needs_the_target_and_ten_times_an_admin_over_100_ms(
    console_p95, admin_p95, target, met
):
    assert verdict(console_p95, admin_p95, target) == met


REPORT = {
    "scenarios": {
        "board": {
            "label": "Status board",
            "target_ms": 80,
            "console": {"p50_ms": 20.3, "p95_ms": 22.0},
            "admin": {"p50_ms": 252.5, "p95_ms": 267.9},
        },
        "detail": {
            "label": "Detail page",
            "target_ms": 30,
            "console": {"p50_ms": 31.0, "p95_ms": 35.5},
        },
    },
    "csv": {"rows": 989_842, "rows_per_s": 100_277, "peak_rss_growth_mb": 0.4},
}


def test_report_tables():
    table = format_table(REPORT)
    assert "Status board" in table
    assert "12.2x" in table
    markdown = format_markdown(REPORT).splitlines()
    assert markdown[2] == ("| Status board | 20.3 | 22.0 | 252.5 | 267.9 | 12.2x | ≤ 80 ms | yes |")
    assert markdown[3] == "| Detail page | 31.0 | 35.5 |  |  |  | ≤ 30 ms | **no** |"
    assert markdown[4].startswith("| CSV export, all 989,842 rows | 100,277 rows/s |")
    assert markdown[4].endswith("| yes |")


@pytest.mark.django_db
def test_the_benchmark_refuses_bad_settings_before_touching_the_database():
    # Other databases are refused outright; on PostgreSQL a bad option is refused before the
    # migrations and the seeding run.
    if connection.vendor != "postgresql":
        with pytest.raises(CommandError, match="needs PostgreSQL"):
            call_command("bench", "--no-seed")
    else:
        with pytest.raises(CommandError, match="--requests must be at least 1"):
            call_command("bench", "--no-seed", "--requests", "0")


@pytest.mark.django_db
def test_the_access_log_line_times_one_insert_per_detail_view(admin_user, user):
    """Bench: logging a detail view (issue 13.4) is timed alone, one INSERT each, against its
    1 ms target; the detail scenario itself runs with the log on."""
    from console.devtools import bench
    from users.models import AccessEvent

    result = bench.run_access_log(admin_user, [user.pk], requests=5, warmup=2)
    summary = result.summary()
    assert summary["n"] == 5
    assert summary["queries"] == 1
    assert AccessEvent.objects.filter(actor=admin_user, subject=user).count() == 5 + 2 + 1
    report = {
        "scenarios": {
            "access_log": {
                "label": "Access log: one detail view logged (INSERT)",
                "target_ms": bench.ACCESS_LOG_TARGET_MS,
                "console": {"p50_ms": 0.3, "p95_ms": 0.6},
            }
        }
    }
    assert format_markdown(report).splitlines()[2] == (
        "| Access log: one detail view logged (INSERT) | 0.3 | 0.6 |  |  |  | ≤ 1 ms | yes |"
    )
