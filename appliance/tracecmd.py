"""`pbx trace` and `pbx bench routing`: the routing core from the command line.

The CLI registers these (`trace` at the top level, `bench_routing` under
`pbx bench`).  They live beside the CLI and not in appliance/routing, because
they read what routing never reads: a configuration file (with the loader
`pbx config import` uses), the appliance's database and the clock.  They turn
what they read into routing's inputs and print what routing decides.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone as dt_timezone
from pathlib import Path
from typing import Any

import click

from appliance.clickutil import data_option
from appliance.errors import ConfigError
from appliance.routing.config import parse
from appliance.routing.facts import Call, Contact, saved_switches
from appliance.routing.numbers import normalise
from appliance.routing.router import Router
from appliance.routing.schedule import zone
from appliance.routing.trace import Scenario, follow


def _split(values: tuple[str, ...]) -> frozenset[str]:
    return frozenset(x.strip() for v in values for x in v.split(",") if x.strip())


def _from_file(path: Path) -> tuple[Router, dict[str, Contact], dict[str, str], dict[str, Any]]:
    from appliance.configfile import ConfigFileError, load_text, read_file

    try:
        with path.open("rb") as f:
            cfg = load_text(read_file(f))
    except ConfigFileError as e:
        raise click.ClickException(f"{path}: {e}") from None
    extensions = {e["number"]: e.get("name") or "" for e in cfg.extensions}
    return _router(cfg.routing, extensions, cfg.timezone), *_contacts(cfg.contacts), {}


def _from_store(data_dir: Path) -> tuple[Router, dict[str, Contact], dict[str, str], dict[str, Any]]:
    from appliance.store import DB_NAME, Store

    if not (data_dir / DB_NAME).exists():
        raise click.ClickException(f"no appliance database in {data_dir}: give --data DIR or --config FILE")
    with Store(data_dir) as store:
        doc = store.routing_document()
        if not doc:
            raise click.ClickException("the appliance has no routing yet: import a configuration "
                                       "(pbx config import) or give --config FILE")
        extensions = {str(e["number"]): e.get("name") or "" for e in store.extensions()}
        saved = {key: store.routing_state(key) for key in ("night", "overrides", "positions")}
        return _router(doc, extensions, store.timezone), *_contacts(store.contacts()), saved


def _router(doc: dict, extensions: dict[str, str], tz: str) -> Router:
    try:
        return Router(parse(doc, extensions, timezone=tz))
    except ConfigError as e:
        raise click.ClickException(f"the routing is not valid: {e.at('routing')}") from None


def _contacts(rows: list[dict]) -> tuple[dict[str, Contact], dict[str, str]]:
    """Contacts from their rows, and the managers learned from answered calls."""
    contacts: dict[str, Contact] = {}
    learned: dict[str, str] = {}
    for row in rows:
        number = normalise(str(row.get("number") or ""))
        if not number:
            continue
        manager = str(row["manager"]) if row.get("manager") else None
        if row.get("learned") and manager:
            learned[number] = manager
            manager = None
        contacts[number] = Contact(str(row.get("name") or ""), manager, bool(row.get("vip")),
                                   str(row.get("company") or row.get("note") or ""))
    return contacts, learned


def _when(at: str | None, tz: str) -> datetime:
    if not at:
        return datetime.now(dt_timezone.utc)
    try:
        when = datetime.fromisoformat(at)
    except ValueError:
        raise click.BadParameter(f"'{at}' is not an ISO time like 2025-03-10T20:15", param_hint="--at") from None
    return when if when.tzinfo else when.replace(tzinfo=zone(tz))


@click.command("trace")
@click.option("--caller", required=True, help="The caller's number (any form: 067..., 380..., +380...).")
@click.option("--dialled", required=True, help="The number the caller dialled (one of the office's numbers).")
@click.option("--trunk", default="", help="The trunk the call came in on.")
@click.option("--at", "at", default=None,
              help="When the call comes, ISO time; without an offset it is the office's local time. Default: now.")
@click.option("--night", type=click.Choice(["on", "off"]), default=None,
              help="Set the night switch by hand for this trace.")
@click.option("--busy", multiple=True, metavar="EXT,...", help="Extensions in a call.")
@click.option("--unregistered", multiple=True, metavar="EXT,...", help="Extensions whose phones are offline.")
@click.option("--dnd", multiple=True, metavar="EXT,...", help="Extensions on do not disturb.")
@click.option("--answer", default=None, metavar="EXT", help="Who picks up when rung (an extension or a number).")
@click.option("--press", multiple=True, metavar="DIGITS",
              help="What the caller enters at each menu, in turn (repeat the option). Default: nothing.")
@click.option("--webhook-answer", default=None, metavar="JSON",
              help='What the webhook answers, e.g. \'{"extension": "101"}\'. Default: no answer in time.')
@click.option("--config", "config_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              default=None, help="Trace a configuration file instead of the appliance's saved routing.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with a `steps` list.")
@data_option
def trace(caller: str, dialled: str, trunk: str, at: str | None, night: str | None, busy: tuple[str, ...],
          unregistered: tuple[str, ...], dnd: tuple[str, ...], answer: str | None, press: tuple[str, ...],
          webhook_answer: str | None, config_file: Path | None, as_json: bool, data_dir: Path) -> None:
    """Show the steps a call would take, and why.

    Nothing is dialled: the saved routing (or --config FILE) is followed with
    everyone free and nobody answering, unless told otherwise.

    Example:

        pbx trace --caller 0671234567 --dialled 0441234567 --at 2025-03-10T20:15 --busy 101,102
    """
    if config_file is not None:
        router, contacts, learned, saved = _from_file(config_file)
    else:
        router, contacts, learned, saved = _from_store(data_dir)
    hook: Any = None
    if webhook_answer is not None:
        try:
            hook = json.loads(webhook_answer)
        except json.JSONDecodeError:
            hook = webhook_answer
    scenario = Scenario(
        busy=_split(busy), unregistered=_split(unregistered), dnd=_split(dnd), answer=answer,
        press=tuple(press), webhook_answer=hook,
        night=None if night is None else night == "on", contacts=contacts, learned=learned,
    )
    # The same reading of the saved states as the engine's (lookups.read_switches).
    night, overrides = saved_switches(saved.get("night"), saved.get("overrides"))
    when = _when(at, router.config.timezone)
    result = follow(router, Call(caller, dialled, trunk), when, scenario,
                    saved_night=night, saved_overrides=overrides,
                    saved_positions={str(k): int(v) for k, v in (saved.get("positions") or {}).items()})
    if as_json:
        click.echo(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(result.text())


@click.command("routing")
@click.option("--calls", default=20000, show_default=True, help="Calls to decide, each to its end.")
@click.option("--seed", default=1, show_default=True, help="Seed of the random mix of calls.")
@data_option
def bench_routing(calls: int, seed: int, data_dir: Path) -> None:
    """Decisions per second on a 50-extension, 10-group configuration built in memory.

    Every call is decided from its first step to its end (answer, voicemail
    or hang up) through schedules, the night switch, personal managers,
    every hunt strategy, menus, queues and the duty roster.

    Example:

        pbx bench routing --calls 50000
    """
    from appliance.routing.bench import run

    result = run(calls, seed)
    click.echo(f"{result.calls} calls, {result.decisions} decisions in {result.seconds:.2f} s "
               "(50 extensions, 10 groups)")
    click.echo(f"{result.per_second:,.0f} decisions/s".replace(",", ""))


@click.command("duty")
@click.option("--json", "as_json", is_flag=True, help="One object: each roster's today and next.")
@data_option
def duty(as_json: bool, data_dir: Path) -> None:
    """Who is on duty after hours: today's mobile and the next change, for each roster.

    The roster's day turns at its changeover time (08:00 unless set): before
    it, last night's duty still holds.

    Example:

        pbx duty --data /var/lib/pbx
    """
    from datetime import timedelta

    from appliance.routing.router import on_duty

    router, _, _, _ = _from_store(data_dir)
    now = datetime.now(dt_timezone.utc)
    out = {}
    for ident, roster in router.config.duty.items():
        day, number = on_duty(roster, now)
        nxt = None
        for days in range(1, 15):  # the next day whose duty differs, within two weeks
            later = now + timedelta(days=days)
            d, n = on_duty(roster, later)
            if n != number:
                nxt = {"day": d.isoformat(), "number": n}
                break
        out[ident] = {"name": roster.name, "day": day.isoformat(), "number": number, "next": nxt}
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    if not out:
        click.echo("No duty roster in the routing (docs/routing.md, duty).")
    for ident, r in out.items():
        today = r["number"] or "nobody"
        line = f"{ident} ({r['name']}): {r['day']} {today}"
        if r["next"]:
            line += f"; from {r['next']['day']} {r['next']['number'] or 'nobody'}"
        click.echo(line)
