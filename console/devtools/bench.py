"""The console-versus-admin benchmark behind `manage.py bench` (issue 4).

Requests go through `django.test.Client` in this process, signed in with `force_login`, with
DEBUG off and production-like settings, so the figures are server-side latency: URL routing,
middleware, session and auth, queries, template rendering; no network, no browser. Each scenario
runs a few warm-up requests, then at least 50 timed ones on the console and the same number on
the Django admin over the same table (its closest equivalent where it has no such screen).

Everything about the machine and the data goes into the JSON next to the figures, so that a
number can be traced to what produced it.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import secrets
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlencode

import django
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from users.models import FeatureFlag, Role, User

BENCH_EMAIL = "bench-admin@bank.example"


@dataclass
class Call:
    """One request of a scenario; `prepare` runs untimed first (an edit GETs its form)."""

    method: str
    path: str
    data: dict[str, Any] | None = None
    prepare: Callable[[Client], dict[str, Any]] | None = None
    expect: tuple[int, ...] = (200,)
    # Request headers, as the test client takes them (HTTP_HX_TARGET=... for an htmx region).
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Scenario:
    key: str
    label: str
    target_ms: float | None
    console: Callable[[int], Call] | None
    admin: Callable[[int], Call] | None
    admin_note: str = ""


@dataclass
class Result:
    side: str
    scenario: str
    timings_ms: list[float] = field(default_factory=list)
    queries: int | None = None
    errors: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        times = sorted(self.timings_ms)
        if not times:
            return {"n": 0, "errors": self.errors[:5]}
        return {
            "n": len(times),
            "p50_ms": round(percentile(times, 50), 2),
            "p95_ms": round(percentile(times, 95), 2),
            "mean_ms": round(statistics.fmean(times), 2),
            "max_ms": round(times[-1], 2),
            "queries": self.queries,
            "errors": self.errors[:5],
        }


def percentile(sorted_values: list[float], pct: float) -> float:
    """Linear interpolation between closest ranks (what numpy calls 'linear')."""
    if len(sorted_values) == 1:
        return sorted_values[0]
    rank = (len(sorted_values) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


# --- forms: what a browser would post back ---------------------------------------------------


class FormParser(HTMLParser):
    """The fields of each POST form of a page, as a browser would submit them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[list[tuple[str, str]]] = []
        self.fields: list[tuple[str, str]] | None = None  # the form being read
        self._select: str | None = None
        self._select_multiple = False
        self._select_values: list[str] = []
        self._first_option: str | None = None
        self._option: str | None = None
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {key: value or "" for key, value in attrs}
        if tag == "form" and a.get("method", "get").lower() == "post":
            self.fields = []
            self.forms.append(self.fields)
            return
        if self.fields is None:
            return
        if tag == "input":
            kind = a.get("type", "text").lower()
            name = a.get("name")
            if not name or kind in ("submit", "button", "image", "reset", "file"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            if "disabled" in a:
                return
            self.fields.append((name, a.get("value", "on" if kind == "checkbox" else "")))
        elif tag == "select" and "disabled" not in a:
            self._select = a.get("name")
            self._select_multiple = "multiple" in a
            self._select_values = []
            self._first_option = None
        elif tag == "option" and self._select is not None:
            self._option = a.get("value")
            self._text = []
            if "selected" in a:
                self._select_values.append(self._option if self._option is not None else "")
        elif tag == "textarea" and "disabled" not in a:
            self._textarea = a.get("name")
            self._text = []

    def handle_data(self, data: str) -> None:
        if self._textarea is not None or self._option is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self.fields is None:
            return
        if tag == "form":
            self.fields = None
        elif tag == "option" and self._select is not None:
            value = self._option if self._option is not None else "".join(self._text).strip()
            if self._first_option is None:
                self._first_option = value
            self._option = None
        elif tag == "select" and self._select:
            values = self._select_values
            if not values and not self._select_multiple and self._first_option is not None:
                values = [self._first_option]
            self.fields.extend((self._select, value) for value in values)
            self._select = None
        elif tag == "textarea" and self._textarea:
            text = "".join(self._text)
            self.fields.append((self._textarea, text[1:] if text.startswith("\n") else text))
            self._textarea = None


def form_data(html: str, *, containing: str) -> dict[str, Any]:
    """What the page's POST form holding an input `containing` would submit."""
    parser = FormParser()
    parser.feed(html)
    for fields in parser.forms:
        if any(name == containing for name, _ in fields):
            break
    else:
        return {}
    data: dict[str, Any] = {}
    for name, value in fields:
        if name not in data:
            data[name] = value
        elif isinstance(data[name], list):
            data[name].append(value)
        else:
            data[name] = [data[name], value]
    return data


# --- memory while streaming ------------------------------------------------------------------


class RssSampler(threading.Thread):
    """Peak resident memory of this process, sampled every few milliseconds.

    RSS and not tracemalloc: the database driver's buffers live outside Python's allocator, and
    a fetch-everything cursor would hide there.
    """

    def __init__(self, interval: float = 0.005) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.page = os.sysconf("SC_PAGE_SIZE")
        self.baseline = self.rss()
        self.peak = self.baseline
        self._stop_event = threading.Event()

    def rss(self) -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * self.page

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, self.rss())
            time.sleep(self.interval)

    def stop(self) -> int:
        self._stop_event.set()
        self.join()
        self.peak = max(self.peak, self.rss())
        return self.peak - self.baseline


# --- the run ----------------------------------------------------------------------------------


def bench_actor() -> User:
    """The signed-in admin both sides use (created through the services once)."""
    from users import services

    actor = User.objects.filter(email__iexact=BENCH_EMAIL).first()
    if actor is None:
        actor = services.user_create(
            data={
                "email": BENCH_EMAIL,
                "first_name": "Bench",
                "last_name": "Admin",
                "feature_flags": [FeatureFlag.CONSOLE],
            },
            actor=None,
            # Only a user with a usable password may use the console (contract); nobody
            # signs in with this one, the client is force-logged-in.
            password=secrets.token_urlsafe(32),
            roles=[Role.ADMIN],
        )
    elif not actor.has_usable_password():
        actor = services.user_set_password(user=actor, password=secrets.token_urlsafe(32))
    return actor


def signed_in_client(actor: User) -> Client:
    """A client signed in as `actor` past the second factor a moment ago, as after typing a
    code: every console page needs both (the session record included)."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from users.services import sessions
    from users.views.common import FACTOR_VERIFIED_AT

    client = Client()
    client.force_login(actor)
    device = TOTPDevice.objects.filter(user=actor, confirmed=True).first()
    if device is None:
        device = TOTPDevice.objects.create(user=actor, name="Bench", confirmed=True)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session[FACTOR_VERIFIED_AT] = session[sessions.LAST_ACTIVITY] = time.time()
    session[sessions.LAST_SEEN_WRITTEN] = time.time()
    session.save()
    sessions.session_record(session_key=session.session_key, user=actor, ip_address="127.0.0.1")
    return client


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory_gb = None
    try:
        with open("/proc/meminfo") as info:
            memory_gb = round(int(info.readline().split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg_version = cursor.fetchone()[0]
        settings = {}
        for name in ("shared_buffers", "work_mem", "effective_cache_size", "jit"):
            cursor.execute(f"SHOW {name}")
            settings[name] = cursor.fetchone()[0]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "os": platform.platform(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "postgresql": pg_version,
        "postgresql_settings": settings,
        "load_average_at_start": os.getloadavg(),
    }


def run_scenario(
    client: Client,
    side: str,
    scenario: Scenario,
    build: Callable[[int], Call],
    *,
    requests: int,
    warmup: int,
    log: Callable[[str], None],
) -> Result:
    result = Result(side=side, scenario=scenario.key)
    for index in range(warmup + requests):
        call = build(index)
        data = call.data
        if call.prepare is not None:
            data = call.prepare(client)
        started = time.perf_counter()
        if call.method == "GET":
            response = client.get(call.path, data or {}, **call.headers)
        else:
            response = client.post(call.path, data or {}, **call.headers)
        if response.streaming:
            for _ in response.streaming_content:
                pass
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code not in call.expect:
            result.errors.append(f"{call.method} {call.path} -> {response.status_code}")
            if len(result.errors) >= 3:
                log(f"    {side} {scenario.key}: giving up, {result.errors[0]}")
                break
            continue
        if index >= warmup:
            result.timings_ms.append(elapsed)
    # One more request, untimed, to count its queries (capturing slows the timed ones).
    if not result.errors:
        call = build(warmup + requests)
        data = call.prepare(client) if call.prepare is not None else call.data
        with CaptureQueriesContext(connection) as captured:
            response = (
                client.get(call.path, data or {}, **call.headers)
                if call.method == "GET"
                else client.post(call.path, data or {}, **call.headers)
            )
            if response.streaming:
                for _ in response.streaming_content:
                    pass
        result.queries = len(captured.captured_queries)
    return result


# Logging one detail view (the access log's INSERT alone, issue 13.4) costs under this at p95.
ACCESS_LOG_TARGET_MS = 1


def run_access_log(actor: User, subject_ids: list[str], *, requests: int, warmup: int) -> Result:
    """Time `access_record` as the detail page calls it: one VIEWED_DETAIL row each, for the
    users of `subject_ids` in turn (the rows stay: the log is append-only)."""
    from users.models import AccessEvent
    from users.services.access import access_record

    result = Result(side="console", scenario="access_log")
    for index in range(warmup + requests):
        subject = User(pk=subject_ids[index % len(subject_ids)])
        started = time.perf_counter()
        access_record(kind=AccessEvent.Kind.VIEWED_DETAIL, actor=actor, subject=subject)
        elapsed = (time.perf_counter() - started) * 1000
        if index >= warmup:
            result.timings_ms.append(elapsed)
    with CaptureQueriesContext(connection) as captured:
        access_record(
            kind=AccessEvent.Kind.VIEWED_DETAIL, actor=actor, subject=User(pk=subject_ids[0])
        )
    result.queries = len(captured.captured_queries)
    return result


def run_csv(client: Client, path: str, *, runs: int, log: Callable[[str], None]) -> dict[str, Any]:
    """Stream the whole export, counting rows; throughput and peak RSS growth per run."""
    figures = []
    for _ in range(runs):
        sampler = RssSampler()
        sampler.start()
        started = time.perf_counter()
        response = client.get(path)
        rows = size = 0
        if response.status_code != 200:
            sampler.stop()
            return {"error": f"GET {path} -> {response.status_code}"}
        chunks = response.streaming_content if response.streaming else [response.content]
        for chunk in chunks:
            rows += chunk.count(b"\n")
            size += len(chunk)
        elapsed = time.perf_counter() - started
        growth = sampler.stop()
        data_rows = max(rows - 1, 0)  # the header line
        figures.append(
            {
                "rows": data_rows,
                "bytes": size,
                "seconds": round(elapsed, 2),
                "rows_per_s": round(data_rows / elapsed),
                "peak_rss_growth_mb": round(growth / 1024 / 1024, 1),
                "streaming": response.streaming,
            }
        )
        log(
            f"    csv: {data_rows:,} rows in {elapsed:.1f} s = {data_rows / elapsed:,.0f} rows/s, "
            f"peak RSS +{growth / 1024 / 1024:.1f} MB"
        )
    best = max(figures, key=lambda f: f["rows_per_s"])
    return {
        "runs": figures,
        "rows": best["rows"],
        "rows_per_s": best["rows_per_s"],
        "peak_rss_growth_mb": max(f["peak_rss_growth_mb"] for f in figures),
    }


def query_string(path: str, params: dict[str, Any]) -> str:
    return f"{path}?{urlencode(params, doseq=True)}"


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
