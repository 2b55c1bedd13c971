"""`pbx bench panel`: response times of the panel's main pages on a 50-extension, 10-group office.

The office is built in a temporary data directory (the routing of
`appliance.routing.bench.office`, extensions with passwords, some contacts),
the panel is served by the same threaded server `pbx run` uses, and a logged-
in client asks for every page of the menu in turn, `rounds` times, over HTTP
on loopback.  Printed: p50 and p95 per page and over all pages, in ms; the
goal is p95 <= 50 ms.  No appliance runs, so the dashboard's questions to it
fail at once (as they do when it is down).
"""

from __future__ import annotations

import http.cookiejar
import logging
import re
import statistics
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Callable

import click

GOAL_P95_MS = 50.0


def build_office(data_dir: Path, extensions: int = 50, groups: int = 10) -> str:
    """Save the benchmark's office into data_dir; returns the owner password."""
    from werkzeug.security import generate_password_hash

    from appliance.configfile import apply_config, parse_document
    from appliance.routing.bench import office
    from appliance.store import Store

    routing, exts = office(extensions, groups)
    routing = {k: v for k, v in routing.items() if k != "timezone"}
    doc = {
        "version": 1,
        "extensions": [{"number": n, "name": name, "password": f"secret-{n}-pass"} for n, name in exts.items()],
        "contacts": [{"number": f"+38067{1000000 + i}", "name": f"Customer {i}", "manager": str(100 + i % extensions)}
                     for i in range(200)],
        "routing": routing,
    }
    password = "bench-owner-password"
    with Store(data_dir) as store:
        store.seed_defaults()
        apply_config(store, parse_document(doc))
        store.set_setting("panel_password_hash", generate_password_hash(password))
    return password


def _pages(app) -> list[str]:
    urls = []
    with app.test_request_context():
        from flask import url_for

        for endpoint, _label in app.jinja_env.globals["NAV"]:
            urls.append(url_for(endpoint))
    return urls


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(rounds: int = 20, echo: Callable[[str], None] = print) -> dict:
    import threading

    from werkzeug.serving import make_server

    from web import create_app

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request in the figures
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        password = build_office(data)
        app = create_app({"DATA_DIR": str(data)})
        port = _free_port()
        server = make_server("127.0.0.1", port, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{port}"
        try:
            opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
            page = opener.open(base + "/auth/login").read().decode()
            token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
            opener.open(base + "/auth/login", urllib.parse.urlencode(
                {"password": password, "csrf_token": token}).encode()).read()
            pages = _pages(app)
            times: dict[str, list[float]] = {p: [] for p in pages}
            for p in pages:  # warm up: templates compiled, catalogs read
                opener.open(base + p).read()
            for _ in range(rounds):
                for p in pages:
                    t0 = time.perf_counter()
                    with opener.open(base + p) as resp:
                        resp.read()
                        if resp.status != 200 or resp.url.rstrip("/") != (base + p).rstrip("/"):
                            raise click.ClickException(f"{p} answered {resp.status} at {resp.url}")
                    times[p].append((time.perf_counter() - t0) * 1000)
        finally:
            server.shutdown()
    report = {"pages": {}, "rounds": rounds}
    for p, ts in times.items():
        report["pages"][p] = {"p50_ms": round(statistics.median(ts), 1), "p95_ms": round(_p95(ts), 1)}
        echo(f"{p:<24} p50 {statistics.median(ts):6.1f} ms   p95 {_p95(ts):6.1f} ms")
    every = [t for ts in times.values() for t in ts]
    report["all"] = {"p50_ms": round(statistics.median(every), 1), "p95_ms": round(_p95(every), 1)}
    met = report["all"]["p95_ms"] <= GOAL_P95_MS
    echo(f"all pages: p50 {report['all']['p50_ms']} ms, p95 {report['all']['p95_ms']} ms "
         f"(goal p95 <= {GOAL_P95_MS:.0f} ms: {'met' if met else 'missed'})")
    return report


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


@click.command("panel")
@click.option("--rounds", default=20, show_default=True, help="Requests per page.")
def bench_panel(rounds: int) -> None:
    """p50/p95 response times of the panel's main pages, 50 extensions and 10 groups.

    Example: pbx bench panel --rounds 50
    """
    run(rounds)
