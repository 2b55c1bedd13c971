"""Options every `pbx` command shares."""

from __future__ import annotations

import os
from pathlib import Path

import click


def data_option(fn):
    """`--data DIR`: the directory of the appliance's database and control socket."""
    return click.option(
        "--data", "data_dir", type=click.Path(file_okay=False, path_type=Path),
        default=lambda: os.environ.get("PBX_DATA", "data"), show_default="$PBX_DATA or ./data",
        help="Directory of the appliance's database and control socket.",
    )(fn)
