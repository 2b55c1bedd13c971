"""`pbx missed`, `pbx missed done`, `pbx missed assign`: missed-call cases from the command line.

With the appliance running, each goes through its control socket (so a
change is published at once, to the LEDs, the panel and the outbox's
worker); without it, straight to the store (the outbox's rows wait there
for the next start).
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Any

import click

from appliance.clickutil import ask_appliance, data_option
from appliance.missed.cases import Case, describe


def _who() -> str:
    try:
        return f"command line ({getpass.getuser()})"
    except (KeyError, OSError):
        return "command line"


def _ask(data_dir: Path, cmd: str, **args: Any) -> dict:
    """Run a missed command in the running appliance, or on the store when none runs."""
    return ask_appliance(data_dir, cmd, _direct, **args)


def _direct(data_dir: Path, cmd: str, **args: Any) -> dict:
    from appliance.missed.service import MissedError, MissedService
    from appliance.store import Store

    with Store(data_dir) as store:
        svc = MissedService(store)
        try:
            if cmd == "missed.list":
                return svc.list(bool(args.get("all")))
            if cmd == "missed.done":
                return svc.done(args["id"], args["by"], args.get("note"))
            return svc.assign(args["id"], args["ext"], args["by"])
        except MissedError as e:
            raise click.ClickException(str(e)) from None


def _show_case(row: dict, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(row, indent=2, ensure_ascii=False))
    else:
        click.echo(describe(Case.from_row(row)))


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")


@click.group("missed", invoke_without_command=True)
@data_option
@click.option("--all", "show_all", is_flag=True, help="Closed cases too (and short abandons), after the open ones.")
@json_option
@click.pass_context
def missed(ctx: click.Context, data_dir: Path, show_all: bool, as_json: bool) -> None:
    """Missed-call cases: the open ones, oldest first (every case with --all).

    Example: pbx missed --all --json
    """
    if ctx.invoked_subcommand is not None:
        return
    result = _ask(data_dir, "missed.list", all=show_all)
    if as_json:
        click.echo(json.dumps(result["cases"], indent=2, ensure_ascii=False))
        return
    if not result["cases"]:
        click.echo("no open missed-call cases" if not show_all else "no missed-call cases")
    for row in result["cases"]:
        click.echo(describe(Case.from_row(row)))


@missed.command("done")
@data_option
@click.argument("case_id", metavar="ID", type=int)
@click.option("--note", default=None, help="What was done (kept on the case).")
@json_option
def missed_done(data_dir: Path, case_id: int, note: str | None, as_json: bool) -> None:
    """Close a case by hand, with a note.

    Example: pbx missed done 12 --note "called from a mobile, offer sent"
    """
    _show_case(_ask(data_dir, "missed.done", id=case_id, note=note, by=_who())["case"], as_json)


@missed.command("assign")
@data_option
@click.argument("case_id", metavar="ID", type=int)
@click.argument("extension", metavar="EXT")
@json_option
def missed_assign(data_dir: Path, case_id: int, extension: str, as_json: bool) -> None:
    """Give an open case to another extension.

    Example: pbx missed assign 12 103
    """
    _show_case(_ask(data_dir, "missed.assign", id=case_id, ext=extension, by=_who())["case"], as_json)
