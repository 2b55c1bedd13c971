"""`pbx call EXT NUMBER`: click-to-call from the command line, through the running appliance.

The appliance rings the extension's desk phone; when it is answered it calls
the number over a trunk and joins them (appliance/engine/callback.py).  No
pjsua2 here: the command is a control-socket client, like the panel.
"""

from __future__ import annotations

from pathlib import Path

import click

from appliance.clickutil import data_option


@click.command("call")
@click.argument("ext")
@click.argument("number")
@click.option("--whisper", is_flag=True, help="The desk phone hears whom it calls before the number is dialled.")
@data_option
def call(ext: str, number: str, whisper: bool, data_dir: Path) -> None:
    """Ring extension EXT's desk phone, then call NUMBER and join them (within EXT's dial rules).

    Example: pbx call 101 0671234567 --whisper
    """
    from appliance.control import ControlClient, ControlError, socket_path

    client = ControlClient(socket_path(data_dir))
    try:
        client.connect()
    except ControlError:
        raise click.ClickException("the appliance is not running (pbx run): nothing can be called") from None
    try:
        with client:
            reply = client.request("calls.originate", ext=ext, number=number, whisper=whisper)
    except ControlError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"calling: extension {ext} rings first, then {number} (call {reply['call_id']})")
