"""The systemd units parse cleanly and keep the promises the appliance relies on."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

UNITS = Path(__file__).resolve().parents[2] / "systemd"


def unit(name: str) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str
    cp.read(UNITS / name)
    return cp


def test_systemd_analyze_verify_finds_nothing(tmp_path):
    pbx = Path(sys.executable).with_name("pbx")
    assert pbx.exists(), "the pbx command is installed in the environment running the tests"
    for src in UNITS.glob("*.service"):
        (tmp_path / src.name).write_text(src.read_text().replace("/opt/pbx/.venv/bin/pbx", str(pbx)))
    res = subprocess.run(["systemd-analyze", "verify", *map(str, tmp_path.glob("*.service"))],
                         capture_output=True, text=True)
    ours = [line for line in (res.stdout + res.stderr).splitlines() if "pbx" in line]
    assert res.returncode == 0 and ours == [], res.stdout + res.stderr


def test_appliance_unit_is_notify_with_watchdog_and_keeps_devices():
    svc = unit("pbx-appliance.service")["Service"]
    assert svc["Type"] == "notify"
    assert int(svc["WatchdogSec"]) > 1  # the engine pings every second
    assert svc["Restart"] == "on-failure"
    # Back within 2 s of a crash: half a second's wait, about a second to start.
    assert svc["RestartSec"] == "500ms"
    assert unit("pbx-appliance.service")["Unit"]["StartLimitIntervalSec"] == "0"  # never gives up
    assert svc["User"] == "pbx" and svc["StateDirectory"] == "pbx"
    assert "PrivateDevices" not in svc  # /dev/gpiochip* and /dev/snd stay reachable
    assert "--no-web" in svc["ExecStart"]  # the panel has its own unit


def test_the_service_user_is_declared():
    text = (UNITS / "pbx.sysusers").read_text()
    assert any(line.startswith("u pbx ") for line in text.splitlines())


def test_install_lays_out_code_units_and_user(tmp_path):
    res = subprocess.run([str(UNITS / "install")], env={"DESTDIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "opt/pbx/appliance/cli.py").exists()
    assert (tmp_path / "opt/pbx/scripts/setup").exists()
    assert not (tmp_path / "opt/pbx/.venv").exists() and not (tmp_path / "opt/pbx/.git").exists()
    for unit_name in ("pbx-appliance.service", "pbx-web.service"):
        assert (tmp_path / "etc/systemd/system" / unit_name).read_text() == (UNITS / unit_name).read_text()
    assert "u pbx" in (tmp_path / "usr/lib/sysusers.d/pbx.conf").read_text()
