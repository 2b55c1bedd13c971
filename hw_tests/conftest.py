"""Tests that need a real Raspberry Pi and its parts.

On any other machine every test here is skipped, and the reason is printed
in the header and in the summary (`-rs`).  On a Pi, run them as the service
user would: `sudo -u pbx .venv/bin/python -m pytest hw_tests`.
"""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

MODEL = Path("/proc/device-tree/model")


def pi_model() -> str:
    """The board's model string ("Raspberry Pi 4 Model B Rev 1.4"), or "" elsewhere."""
    try:
        model = MODEL.read_bytes().rstrip(b"\0").decode("ascii", "replace")
    except OSError:
        return ""
    return model if model.startswith("Raspberry Pi") else ""


def why_not() -> str:
    return f"needs a Raspberry Pi; this is {platform.machine()} without {MODEL} naming one"


def pytest_configure(config: pytest.Config) -> None:
    if "s" not in (config.option.reportchars or ""):
        config.option.reportchars = (config.option.reportchars or "") + "s"


def pytest_report_header(config: pytest.Config) -> str:
    model = pi_model()
    return f"hardware: {model}" if model else f"hardware tests skipped: {why_not()}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if pi_model():
        return
    skip = pytest.mark.skip(reason=why_not())
    for item in items:
        if Path(str(item.fspath)).resolve().is_relative_to(Path(__file__).parent):
            item.add_marker(skip)
