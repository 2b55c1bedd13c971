"""`pbx night status|on|off|auto`: the night switches from the command line.

With the appliance running, the command goes through its control socket
(so the change is published at once, to the LEDs and the panel); without it,
straight to the store, which the appliance reads when it starts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from appliance.clickutil import ask_appliance, data_option

WHO = "command line"


def _ask(data_dir: Path, cmd: str, **args: Any) -> dict:
    """Run a night command in the running appliance, or on the store when none runs."""
    return ask_appliance(data_dir, cmd, _direct, **args)


def _direct(data_dir: Path, cmd: str, **args: Any) -> dict:
    from appliance.night.service import NightError, NightService
    from appliance.store import Store

    with Store(data_dir) as store:
        svc = NightService(store)
        try:
            if cmd == "night.status":
                return svc.status(args.get("switch"))
            return svc.set(args["mode"], permanent=args.get("permanent", False), switch=args.get("switch"),
                           by=args["by"])
        except NightError as e:
            raise click.ClickException(str(e)) from None


def _show(result: dict, as_json: bool) -> None:
    switches = result["switches"]
    if as_json:
        click.echo(json.dumps(switches, indent=2, ensure_ascii=False))
        return
    changed = result.get("changed")
    for sid, view in switches.items():
        name = f" ({view['name']})" if view.get("name") and view["name"] != sid else ""
        same = " - unchanged" if changed is not None and sid not in changed else ""
        click.echo(f"{sid}{name}: {view['text']}{same}")


switch_option = click.option("--switch", "switch", metavar="NAME", default=None,
                             help="One night switch (its id in routing.night); default: every switch.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print the state as a JSON object, by switch.")


@click.group("night")
def night() -> None:
    """Night mode: see and set the night switches (day, night, or the schedule).

    Example: pbx night status
    """


@night.command("status")
@data_option
@switch_option
@json_option
def night_status(data_dir: Path, switch: str | None, as_json: bool) -> None:
    """Print each night switch's mode, how it was set and until when.

    Example: pbx night status --json
    """
    _show(_ask(data_dir, "night.status", switch=switch), as_json)


permanent_option = click.option("--permanent", is_flag=True,
                                help="Until returned to automatic (default: until the schedule's next boundary).")


def _set(data_dir: Path, mode: str, permanent: bool, switch: str | None, as_json: bool) -> None:
    _show(_ask(data_dir, "night.set", mode=mode, permanent=permanent, switch=switch, by=WHO), as_json)


@night.command("on")
@data_option
@permanent_option
@switch_option
@json_option
def night_on(data_dir: Path, permanent: bool, switch: str | None, as_json: bool) -> None:
    """Night mode by hand, until the schedule's next boundary (for good with --permanent).

    Example: pbx night on --switch kyiv
    """
    _set(data_dir, "on", permanent, switch, as_json)


@night.command("off")
@data_option
@permanent_option
@switch_option
@json_option
def night_off(data_dir: Path, permanent: bool, switch: str | None, as_json: bool) -> None:
    """Day mode by hand, until the schedule's next boundary (for good with --permanent).

    Example: pbx night off --permanent
    """
    _set(data_dir, "off", permanent, switch, as_json)


@night.command("auto")
@data_option
@switch_option
@json_option
def night_auto(data_dir: Path, switch: str | None, as_json: bool) -> None:
    """Back to the schedule: end any override.

    Example: pbx night auto
    """
    _set(data_dir, "auto", False, switch, as_json)
