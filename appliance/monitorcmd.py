"""`pbx monitor [--json] [--follow]`: the calls in progress, from the running appliance's live monitor."""

from __future__ import annotations

import json
from pathlib import Path

import click

from appliance.clickutil import data_option
from appliance.control import ControlClient, ControlError, socket_path
from appliance.monitor import ENDED, SNAPSHOT, Following


def clock(seconds: float | None) -> str:
    s = int(seconds or 0)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def who(call: dict) -> str:
    name = f"{call['caller_name']} " if call.get("caller_name") else ""
    vip = " VIP" if call.get("vip") else ""
    return f"{name}{call.get('caller') or 'withheld'}{vip}"


# What each stage says about itself, from the call's view.
DETAILS = {
    "arriving": lambda c: f"to {c['dialled']}",
    "greeting": lambda c: c["step_name"],
    "menu": lambda c: f"{c['menu']}, keys {c['keys'] or '-'}",
    "queue": lambda c: f"{c['queue']}, position {c['position']}, waiting {clock(c['queue_s'])}",
    "ringing": lambda c: " ".join(c["ringing"]) + (f" (queue {c['queue']}, position {c['position']})"
                                                    if c["queue"] and c["position"] else ""),
    "talking": lambda c: f"with {c['with']}",
    "held": lambda c: f"with {c['with']}, on hold by {c['held_by']}",
    "transferring": lambda c: f"from {c['with']} to {c['transfer_to']}",
    "voicemail": lambda c: c["step_name"],
    "webhook": lambda c: c["step_name"],
}


def line(call: dict) -> str:
    detail = DETAILS.get(call["stage"], lambda c: "")(call)
    return f"{call['id']}  {call['stage']:<12} {clock(call['stage_s']):>7}  {who(call)}  {detail}".rstrip()


@click.command("monitor")
@data_option
@click.option("--json", "as_json", is_flag=True,
              help="Print the snapshot as one JSON object (with --follow: one JSON object a line).")
@click.option("--follow", is_flag=True, help="Keep printing each change until interrupted.")
def monitor(data_dir: Path, as_json: bool, follow: bool) -> None:
    """Print every call in progress: its stage, for how long, the caller, and whom it rings or talks with.

    Stages: arriving, greeting, menu, queue, ringing, talking, held, transferring, voicemail, webhook.

    Example: pbx monitor --follow
    """
    path = socket_path(data_dir)
    try:
        if not follow:
            with ControlClient(path) as client:
                snap = client.request("monitor.snapshot")
            if as_json:
                click.echo(json.dumps(snap, indent=2, ensure_ascii=False))
            else:
                click.echo("\n".join(line(c) for c in snap["calls"]) or "no calls in progress")
            return
        for item in Following(path):
            if item is None:
                continue
            if as_json:
                click.echo(json.dumps(item, ensure_ascii=False))
            elif item["kind"] == SNAPSHOT:
                click.echo("\n".join(line(c) for c in item["calls"]) or "no calls in progress")
            elif item["kind"] == ENDED:
                click.echo(f"{item['call_id']}  ended ({item['outcome']})")
            else:
                click.echo(line(item["call"]))
    except ControlError as e:
        raise click.ClickException(str(e)) from None
    except KeyboardInterrupt:
        pass
