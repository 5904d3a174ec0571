"""`manage.py bench`: the console against the Django admin at a million users (issue 4).

Needs PostgreSQL (`DATABASE_URL`; `make bench` uses the local `console` database). Applies the
migrations, loads users with `seed_users` until there are `--users` of them (reused when present),
then times each scenario on the console and on `/admin/users/user/` with a signed-in admin, DEBUG
off. Prints one table and writes the figures (with the machine and the data they came from) as
JSON; `--only` re-runs some scenarios and merges them into the existing file.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.test import Client
from django.test.utils import override_settings

from console.devtools import bench
from console.devtools.bench import Call, Scenario, query_string
from users.models import StatusChange, User, UserVersion

ADMIN_LIST = "/admin/users/user/"
CONSOLE_LIST = "/users/"
CONSOLE_BOARD = "/board/"
CONSOLE_DASHBOARD = "/dashboard/"
CONSOLE_EXPORT = "/users/export.csv"
CONSOLE_SEARCH_PARAM = "q"
ADMIN_PAGE_SIZE = 100
DEEP_ROW = 100_000
# The filter combination: active Belgian users holding the robo-advisor flag.
CONSOLE_FILTERS = {"status": "ACTIVE", "residency_country": "BE", "flag": "ROBO_ADVISOR"}
ADMIN_FILTERS = {"status__exact": "ACTIVE", "residency_country__exact": "BE"}


class Command(BaseCommand):
    help = "Benchmark the console against the Django admin at 1M users on PostgreSQL."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--users", type=int, default=1_000_000, help="users to bench at")
        parser.add_argument("--requests", type=int, default=50, help="timed requests each")
        parser.add_argument("--warmup", type=int, default=3, help="untimed requests first")
        parser.add_argument("--csv-runs", type=int, default=2, help="full CSV exports to time")
        parser.add_argument(
            "--only",
            default="",
            help="comma-separated scenario keys; with --only or --side the figures are merged "
            "into an existing --output",
        )
        parser.add_argument(
            "--side", choices=("both", "console", "admin"), default="both", help="which UI"
        )
        parser.add_argument("--output", default="artifacts/bench.json", help="JSON figures")
        parser.add_argument(
            "--no-seed", action="store_true", help="bench whatever is in the database"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if connection.vendor != "postgresql":
            raise CommandError(
                "The benchmark needs PostgreSQL: set DATABASE_URL, e.g. "
                "postgres://postgres@127.0.0.1:5432/console (make bench does)."
            )
        if options["requests"] < 1:
            raise CommandError("--requests must be at least 1.")
        call_command("migrate", interactive=False, verbosity=0)
        users = User.objects.count()
        if users < options["users"] and not options["no_seed"]:
            self.stdout.write(f"{users:,} users in the database; seeding to {options['users']:,}")
            call_command("seed_users", count=options["users"] - users, stdout=self.stdout)
            users = User.objects.count()
        self.stdout.write(f"Benchmarking at {users:,} users.")

        scenarios = self.scenarios(options["requests"] + options["warmup"] + 2)
        only = {key.strip() for key in options["only"].split(",") if key.strip()}
        unknown = only - {s.key for s in scenarios} - {"csv", "access_log"}
        if unknown:
            raise CommandError(
                f"Unknown scenario {sorted(unknown)[0]!r}; known: "
                f"{', '.join([s.key for s in scenarios] + ['csv', 'access_log'])}."
            )

        output = Path(options["output"])
        report: dict[str, Any] = {}
        if (only or options["side"] != "both") and output.exists():
            report = json.loads(output.read_text())
        report.setdefault("scenarios", {})
        report.update(
            {
                "generated_at": bench.now_iso(),
                "machine": bench.machine(),
                "data": {
                    "users": users,
                    "versions": _estimate("users_userversion", UserVersion),
                    "status_changes": _estimate("users_statuschange", StatusChange),
                },
                "requests_per_scenario": options["requests"],
                "targets_ms": {
                    **{s.key: s.target_ms for s in scenarios},
                    "access_log": bench.ACCESS_LOG_TARGET_MS,
                },
            }
        )

        # whitenoise warns that collectstatic never ran; the bench serves no static file.
        warnings.filterwarnings("ignore", message="No directory at")
        actor = bench.bench_actor()
        client = bench.signed_in_client(actor)
        storages = {
            **settings.STORAGES,
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }
        with override_settings(
            DEBUG=False,
            ALLOWED_HOSTS=["testserver"],
            SECURE_SSL_REDIRECT=False,
            STORAGES=storages,
        ):
            client.get(CONSOLE_LIST)  # imports, template loading, connection
            if (not only or "csv" in only) and options["side"] in ("both", "console"):
                self.stdout.write("CSV export (console; the admin has none)")
                report["csv"] = bench.run_csv(
                    client, CONSOLE_EXPORT, runs=options["csv_runs"], log=self.stdout.write
                )
                write_report(output, report)
            for scenario in scenarios:
                if only and scenario.key not in only:
                    continue
                self.stdout.write(f"{scenario.label}")
                entry = report["scenarios"].setdefault(scenario.key, {"label": scenario.label})
                entry["label"] = scenario.label
                entry["target_ms"] = scenario.target_ms
                if scenario.admin_note:
                    entry["admin_note"] = scenario.admin_note
                for side, build in (("console", scenario.console), ("admin", scenario.admin)):
                    if build is None or options["side"] not in ("both", side):
                        continue
                    result = bench.run_scenario(
                        client,
                        side,
                        scenario,
                        build,
                        requests=options["requests"],
                        warmup=options["warmup"],
                        log=self.stdout.write,
                    )
                    entry[side] = result.summary()
                    summary = entry[side]
                    # The machine is shared: the 1-minute load average says how busy it was.
                    summary["load_average"] = round(os.getloadavg()[0], 1)
                    # Written as it goes: a long admin run that is stopped keeps its figures.
                    write_report(output, report)
                    if summary["n"]:
                        self.stdout.write(
                            f"    {side:8} p50 {summary['p50_ms']:9.1f} ms   "
                            f"p95 {summary['p95_ms']:9.1f} ms   queries {summary['queries']}"
                        )
            if (not only or "access_log" in only) and options["side"] in ("both", "console"):
                self.stdout.write(ACCESS_LOG_LABEL)
                result = bench.run_access_log(
                    actor,
                    [row["id"] for row in sample_users(options["requests"])],
                    requests=options["requests"],
                    warmup=options["warmup"],
                )
                report["scenarios"]["access_log"] = {
                    "label": ACCESS_LOG_LABEL,
                    "target_ms": bench.ACCESS_LOG_TARGET_MS,
                    "console": result.summary(),
                }
                write_report(output, report)
        write_report(output, report)
        self.stdout.write("")
        self.stdout.write(format_table(report))
        self.stdout.write("")
        self.stdout.write(format_markdown(report))
        self.stdout.write(f"\nFigures written to {output}")

    # --- what is measured ----------------------------------------------------------------------

    def scenarios(self, needed: int) -> list[Scenario]:
        samples = sample_users(needed * 3)
        if len(samples) < needed * 3:
            raise CommandError("Not enough users with an email, phone and external id to bench.")
        searchable = samples[:needed]
        console_edits = samples[needed : needed * 2]
        admin_edits = samples[needed * 2 :]

        def pick(index: int) -> dict[str, str]:
            return searchable[index % len(searchable)]

        def console_search(value_of) -> Any:
            return lambda i: Call(
                "GET", query_string(CONSOLE_LIST, {CONSOLE_SEARCH_PARAM: value_of(pick(i))})
            )

        def admin_search(value_of) -> Any:
            return lambda i: Call("GET", query_string(ADMIN_LIST, {"q": value_of(pick(i))}))

        console_deep = console_deep_page_url()
        console_deep_by_number = console_deep_page_url(by_number=True)
        admin_deep = query_string(ADMIN_LIST, {"p": DEEP_ROW // ADMIN_PAGE_SIZE})

        def edit(path_of, users: list[dict[str, str]], expect: tuple[int, ...]) -> Any:
            def build(index: int) -> Call:
                row = users[index % len(users)]
                path = path_of(row["id"])

                def prepare(client: Client) -> dict[str, Any]:
                    page = client.get(path)
                    if page.status_code != 200:
                        raise CommandError(f"GET {path} -> {page.status_code}")
                    data = bench.form_data(page.content.decode(), containing="first_name")
                    if "first_name" not in data:
                        raise CommandError(f"No first_name input in the form of {path}")
                    data["first_name"] = f"Bench{index}"
                    return data

                return Call("POST", path, prepare=prepare, expect=expect)

            return build

        def detail_region(target: str) -> Callable[[int], Call]:
            """A region of the detail page as htmx fetches it after the page."""
            headers = {"HTTP_HX_REQUEST": "true", "HTTP_HX_TARGET": target}
            return lambda i: Call("GET", f"/users/{pick(i)['id']}/", headers=headers)

        def create(index: int) -> Call:
            def prepare(client: Client) -> dict[str, Any]:
                page = client.get("/users/new/")
                if page.status_code != 200:
                    raise CommandError(f"GET /users/new/ -> {page.status_code}")
                data = bench.form_data(page.content.decode(), containing="first_name")
                # A new person each time: emails are unique (bench-… users are left out of the
                # samples the other lines draw).
                stamp = f"{os.getpid()}-{index}-{time.monotonic_ns()}"
                data.update(first_name="Bench", last_name=f"Create {index}")
                data["email"] = f"bench-create-{stamp}@bench.example"
                return data

            return Call("POST", "/users/new/", prepare=prepare, expect=(302,))

        return [
            Scenario(
                "list",
                "List, page 1",
                40,
                lambda i: Call("GET", CONSOLE_LIST),
                lambda i: Call("GET", ADMIN_LIST),
            ),
            Scenario(
                "deep_page",
                f"List, deep page by Next links (row {DEEP_ROW:,})",
                40,
                lambda i: Call("GET", console_deep),
                lambda i: Call("GET", admin_deep),
            ),
            Scenario(
                "deep_page_by_number",
                f"List, deep page typed as a number (row {DEEP_ROW:,}, OFFSET)",
                None,
                lambda i: Call("GET", console_deep_by_number),
                lambda i: Call("GET", admin_deep),
            ),
            Scenario(
                "search_email",
                "Exact search: email",
                25,
                console_search(lambda u: u["email"]),
                admin_search(lambda u: u["email"]),
            ),
            Scenario(
                "search_id",
                "Exact search: id",
                25,
                console_search(lambda u: u["id"]),
                admin_search(lambda u: u["id"]),
            ),
            Scenario(
                "search_external_id",
                "Exact search: external id",
                25,
                console_search(lambda u: u["external_id"]),
                admin_search(lambda u: u["external_id"]),
            ),
            Scenario(
                "search_phone",
                "Exact search: phone",
                25,
                console_search(lambda u: u["phone"]),
                admin_search(lambda u: u["phone"]),
            ),
            Scenario(
                "search_substring",
                "Substring search: name 'ann'",
                100,
                lambda i: Call("GET", query_string(CONSOLE_LIST, {CONSOLE_SEARCH_PARAM: "ann"})),
                lambda i: Call("GET", query_string(ADMIN_LIST, {"q": "ann"})),
            ),
            Scenario(
                "filter_combination",
                "Filter combination",
                50,
                lambda i: Call("GET", query_string(CONSOLE_LIST, CONSOLE_FILTERS)),
                lambda i: Call("GET", query_string(ADMIN_LIST, ADMIN_FILTERS)),
                admin_note="status=ACTIVE and residency_country=BE (the admin has no flag filter)",
            ),
            Scenario(
                "board",
                "Status board",
                80,
                lambda i: Call("GET", CONSOLE_BOARD),
                lambda i: Call(
                    "GET", query_string(ADMIN_LIST, {"status__exact": "WAITING_FOR_VERIFICATION"})
                ),
                admin_note="no board: the changelist filtered on one status, the closest screen",
            ),
            Scenario(
                "dashboard",
                "Onboarding dashboard",
                80,
                # The quick periods in turn: a week, a month, a quarter of the summary.
                lambda i: Call(
                    "GET", query_string(CONSOLE_DASHBOARD, {"days": (7, 30, 90)[i % 3]})
                ),
                None,
                admin_note="no dashboard in the admin",
            ),
            Scenario(
                "detail",
                "Detail page (access log on)",
                30,
                lambda i: Call("GET", f"/users/{pick(i)['id']}/"),
                lambda i: Call("GET", f"{ADMIN_LIST}{pick(i)['id']}/change/"),
            ),
            Scenario(
                "detail_history",
                "Detail page: its history, fetched after it (htmx)",
                30,
                detail_region("history"),
                None,
                admin_note="the admin's change page has no history region",
            ),
            Scenario(
                "detail_accesses",
                "Detail page: its Accessed by panel, fetched after it (htmx)",
                30,
                detail_region("accessed-by"),
                None,
                admin_note="the admin has no access log",
            ),
            Scenario(
                "create",
                "Create (POST): version 1, its status row and their hashes",
                50,
                create,
                None,
                admin_note="console only: the admin's add form is another workflow",
            ),
            Scenario(
                "edit",
                "Edit (POST)",
                50,
                edit(lambda pk: f"/users/{pk}/edit/", console_edits, (302,)),
                edit(lambda pk: f"{ADMIN_LIST}{pk}/change/", admin_edits, (302,)),
            ),
        ]


# The access log's own line: the INSERT a detail view adds, timed alone (console only).
ACCESS_LOG_LABEL = "Access log: one detail view logged (INSERT)"


def write_report(output: Path, report: dict[str, Any]) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n")


def sample_users(count: int) -> list[dict[str, str]]:
    """Users spread over the table, with every searchable value set (repeatable sample)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT id, email, phone, external_id FROM users_user
            TABLESAMPLE SYSTEM (2) REPEATABLE (42)
            WHERE NOT deleted AND email IS NOT NULL AND phone IS NOT NULL
              AND external_id IS NOT NULL AND email NOT LIKE 'bench-%%'
            LIMIT %s
            """,
            [count],
        )
        return [
            {"id": row[0], "email": row[1], "phone": row[2], "external_id": row[3]}
            for row in cursor.fetchall()
        ]


def console_deep_page_url(*, by_number: bool = False) -> str:
    """The console's page holding row 100,000 of the default list.

    As a person reaches it, by Next links: each one carries the last row of its page, so this
    URL continues from row 99,999 (found once, untimed). `by_number` is the same page typed as
    a number in the URL, which has to skip 99,999 rows (OFFSET).
    """
    from django.http import QueryDict

    from users.views.common import list_state
    from users.views.list import PAGE_SIZE

    page = DEEP_ROW // PAGE_SIZE + 1
    if by_number:
        return query_string(CONSOLE_LIST, {"page": page})
    state = list_state(QueryDict())
    anchor = state.queryset.order_by(*state.ordering).values_list("pk", flat=True)[DEEP_ROW - 1]
    return query_string(CONSOLE_LIST, {"page": page, "after": anchor})


def _estimate(table: str, model: Any) -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = %s", [table])
        row = cursor.fetchone()
    return int(row[0]) if row and row[0] and row[0] > 0 else model.objects.count()


@dataclass(frozen=True)
class Line:
    """One scenario of a report, as both tables show it."""

    label: str
    console_p50: float | None
    console_p95: float | None
    admin_p50: float | None
    admin_p95: float | None
    target: float | None

    @property
    def ratio(self) -> float | None:
        if self.admin_p95 and self.console_p95:
            return self.admin_p95 / self.console_p95
        return None

    @property
    def met(self) -> str:
        return verdict(self.console_p95, self.admin_p95, self.target)


def report_lines(report: dict[str, Any]) -> list[Line]:
    lines = []
    for key, entry in report.get("scenarios", {}).items():
        console, admin = entry.get("console", {}), entry.get("admin", {})
        lines.append(
            Line(
                label=entry.get("label", key),
                console_p50=console.get("p50_ms"),
                console_p95=console.get("p95_ms"),
                admin_p50=admin.get("p50_ms"),
                admin_p95=admin.get("p95_ms"),
                target=entry.get("target_ms"),
            )
        )
    return lines


def format_table(report: dict[str, Any]) -> str:
    """One line per scenario: console and admin p50/p95, the admin/console ratio, the target."""
    lines = report_lines(report)
    width = max([len("scenario"), *(len(line.label) for line in lines)])
    header = (
        f"{'scenario':{width}} {'console p50':>12} {'console p95':>12} {'admin p50':>11} "
        f"{'admin p95':>11} {'admin/console':>14} {'target p95':>11}  met"
    )
    out = [header, "-" * len(header)]
    for line in lines:
        ratio = f"{line.ratio:.1f}x" if line.ratio else "n/a"
        out.append(
            f"{line.label:{width}} {_ms(line.console_p50):>12} {_ms(line.console_p95):>12} "
            f"{_ms(line.admin_p50):>11} {_ms(line.admin_p95):>11} {ratio:>14} "
            f"{_ms(line.target):>11}  {line.met}"
        )
    csv = report.get("csv")
    if csv and "rows_per_s" in csv:
        out.append(
            f"{'CSV export, all rows':{width}} {csv['rows_per_s']:>10,} rows/s, peak RSS "
            f"+{csv['peak_rss_growth_mb']} MB ({csv['rows']:,} rows; admin: none); "
            f"target >= 50,000 rows/s, <= 50 MB: {'yes' if csv_met(csv) else 'NO'}"
        )
    elif csv:
        out.append(f"{'CSV export, all rows':{width}} {csv.get('error')}")
    return "\n".join(out)


def format_markdown(report: dict[str, Any]) -> str:
    """The same figures as a Markdown table, as the README shows them."""
    out = [
        "| scenario | console p50 ms | console p95 ms | admin p50 ms | admin p95 ms "
        "| admin/console (p95) | target p95 | met |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]

    def cell(value: float | None) -> str:
        return "" if value is None else f"{value:,.1f}"

    for line in report_lines(report):
        out.append(
            f"| {line.label} | {cell(line.console_p50)} | {cell(line.console_p95)} "
            f"| {cell(line.admin_p50)} | {cell(line.admin_p95)} "
            f"| {f'{line.ratio:.1f}x' if line.ratio else ''} "
            f"| {f'≤ {line.target:g} ms' if line.target else ''} "
            f"| {'**no**' if line.met == 'NO' else line.met} |"
        )
    csv = report.get("csv")
    if csv and "rows_per_s" in csv:
        out.append(
            f"| CSV export, all {csv['rows']:,} rows | {csv['rows_per_s']:,} rows/s "
            f"| peak RSS +{csv['peak_rss_growth_mb']} MB | (none) | | "
            f"| ≥ 50,000 rows/s, ≤ 50 MB | {'yes' if csv_met(csv) else '**no**'} |"
        )
    return "\n".join(out)


def csv_met(csv: dict[str, Any]) -> bool:
    return csv["rows_per_s"] >= 50_000 and csv["peak_rss_growth_mb"] <= 50


def verdict(console_p95: float | None, admin_p95: float | None, target: float | None) -> str:
    if console_p95 is None:
        return "?"
    ok = target is None or console_p95 <= target
    if admin_p95 is not None and admin_p95 > 100:
        ok = ok and admin_p95 / console_p95 >= 10
    return "yes" if ok else "NO"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} ms"
