"""`pbx line status` and `pbx line test`: the analog lines, asked through each line's own socket.

Each line's user agent (appliance/analog) keeps `DATA/lines/<name>.json` (its state, rewritten on every
change and every second) and answers on `DATA/lines/<name>.sock`; these commands read the first and ask
the second, so they work while `pbx run` runs and need nothing from the engine.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import click

from appliance.analog.fxo import status_dir
from appliance.clickutil import data_option


def _names(data_dir: Path, only: str | None) -> list[str]:
    names = sorted(p.stem for p in status_dir(data_dir).glob("*.sock"))
    if only:
        if only not in names:
            raise click.ClickException(f"no analog line {only!r} is running (running: {', '.join(names) or 'none'})")
        return [only]
    return names


def ask(data_dir: Path, name: str, cmd: str, timeout: float = 15.0) -> dict:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(str(status_dir(data_dir) / f"{name}.sock"))
        except OSError as e:
            raise click.ClickException(f"line {name} does not answer ({e}); is `pbx run` running?") from None
        s.sendall((json.dumps({"cmd": cmd}) + "\n").encode())
        return json.loads(s.makefile().readline() or "{}")


@click.group()
def line() -> None:
    """The analog adapters: lines (FXO) and phones (FXS, as ext<number>): their state, and a test of a line's relay and audio."""


@line.command("status")
@data_option
@click.option("--line", "only", default=None, help="one line by its trunk name")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def status(data_dir: Path, only: str | None, as_json: bool) -> None:
    """Hook, ringing, the last caller ID, the audio levels and the echo canceller of each analog line.

    Example: pbx line status --line line1
    """
    out = {name: ask(data_dir, name, "status") for name in _names(data_dir, only)}
    if as_json:
        click.echo(json.dumps(out, indent=2))
        return
    if not out:
        click.echo("no analog line is running")
    for name, st in out.items():
        caller = st.get("last_caller") or {}
        who = caller.get("number") or caller.get("status") or "none yet"
        audio = st.get("audio") or {}
        level = (f"in {audio.get('rx_dbfs')} dBFS, out {audio.get('tx_dbfs')} dBFS" if audio.get("open")
                 else "audio closed")
        held = f" (holding {st['held'] or 'a call'})" if st.get("held") is not None else ""
        click.echo(f"{name} ({st.get('number') or 'no number'}): {st.get('state')}{held}, {st.get('hook')}-hook"
                   f"{', ringing' if st.get('ringing') else ''}; last caller: {who}; {level}; {_echo(audio)}"
                   f"{'; ' + audio['error'] if audio.get('error') else ''}")


def _echo(audio: dict) -> str:
    """The canceller and the gains, as `pbx line status` prints them."""
    tail = audio.get("echo_tail_ms")
    if not tail:
        text = "echo canceller off"
    else:
        state = audio.get("echo_state")
        text = f"echo canceller {tail} ms" + (f" ({state})" if audio.get("open") and state else "")
        if audio.get("open") and state == "cancelling":
            text += f", in {audio.get('rx_clean_dbfs')} dBFS after it"
    gains = [f"{way} gain {audio[key]:+g} dB" for way, key in (("rx", "rx_gain_db"), ("tx", "tx_gain_db"))
             if audio.get(key)]
    return ", ".join([text, *gains])


@line.command("test")
@data_option
@click.option("--line", "only", default=None, help="one line by its trunk name")
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def test(data_dir: Path, only: str | None, as_json: bool) -> None:
    """Go off-hook, play a 1 kHz tone, measure what comes back and what the echo canceller leaves, go on-hook.

    The line must be idle.  ERL: how far below the tone its echo comes back; ERLE: how much further the
    canceller takes it down.

    Example: pbx line test --line line1
    """
    out = {name: ask(data_dir, name, "test") for name in _names(data_dir, only)}
    if as_json:
        click.echo(json.dumps(out, indent=2))
    else:
        for name, r in out.items():
            if r.get("error"):
                click.echo(f"{name}: {r['error']}")
                continue
            loop = {None: "no loop pin", True: "loop current flows", False: "NO loop current"}[r.get("loop_current")]
            click.echo(f"{name}: hook relay {r['hook_relay']}; {loop}; {r['tone_hz']:.0f} Hz out at "
                       f"{r['sent_dbfs']} dBFS, back {r['returned_dbfs']} dBFS "
                       f"({'the tone' if r['tone_returned'] else 'not the tone'}){_echo_loss(r)}"
                       f"{'; ' + r['audio_error'] if r['audio_error'] else ''}")
    if not all(r.get("ok") for r in out.values()):
        raise SystemExit(1)


def _echo_loss(r: dict) -> str:
    """The line test's echo figures: the hybrid's return loss, and what the canceller took off it."""
    if r.get("erl_db") is None:
        return ""
    text = f"; echo return loss {r['erl_db']} dB"
    if r.get("erle_db") is None:
        return text + " (echo canceller off)"
    return text + f"; after the {r['echo_tail_ms']} ms canceller {r['cancelled_dbfs']} dBFS (ERLE {r['erle_db']} dB)"


@click.command("line")
@click.option("--hold", default=4.0, show_default=True, help="Seconds the line's process holds the GIL.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object instead of a table.")
def bench_line(hold: float, as_json: bool) -> None:
    """Jitter and loss on another call, and on the line's own, while an analog line's process is busy.

    Starts an engine, two desk phones, a provider and one line (mock pins, ALSA's file plugin),
    bridges a provider call and a line call, holds the line's GIL, and prints what each end received.

    Example: pbx bench line --hold 4
    """
    from appliance.analog import bench

    report = bench.run(hold, echo=(lambda text: None) if as_json else click.echo)
    if as_json:
        click.echo(json.dumps(report, indent=1))


@click.command("echo")
@click.option("--seconds", default=200.0, show_default=True, help="Seconds of audio through the canceller per tail.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object instead of a table.")
def bench_echo(seconds: float, as_json: bool) -> None:
    """What the analog line's echo canceller (speexdsp) costs per 20 ms frame, at 64 and 128 ms tails.

    Example: pbx bench echo --seconds 200
    """
    from appliance.analog import bench

    report = bench.canceller_cost((64, 128), seconds, echo=(lambda text: None) if as_json else click.echo)
    if as_json:
        click.echo(json.dumps(report, indent=1))
