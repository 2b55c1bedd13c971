"""Options every `pbx` command shares."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import click


def data_option(fn):
    """`--data DIR`: the directory of the appliance's database and control socket."""
    return click.option(
        "--data", "data_dir", type=click.Path(file_okay=False, path_type=Path),
        default=lambda: os.environ.get("PBX_DATA", "data"), show_default="$PBX_DATA or ./data",
        help="Directory of the appliance's database and control socket.",
    )(fn)


def ask_appliance(data_dir: Path, cmd: str, direct: Callable[..., dict], **args: Any) -> dict:
    """Run control command `cmd` in the running appliance, or `direct(data_dir, cmd, **args)` on
    the store when none runs (the same change, saved where the appliance will read it)."""
    from appliance.control import ControlClient, ControlError, socket_path

    client = ControlClient(socket_path(data_dir))
    try:
        client.connect()
    except ControlError:
        return direct(data_dir, cmd, **args)
    try:
        with client:
            return client.request(cmd, **args)
    except ControlError as e:
        raise click.ClickException(str(e)) from None
