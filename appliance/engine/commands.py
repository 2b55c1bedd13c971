"""Click commands of the engine: `pbx calls` and `pbx bench calls`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from appliance.clickutil import data_option


@click.command("calls")
@data_option
@click.option("--limit", default=20, show_default=True, help="How many calls, newest first.")
@click.option("--path", "show_path", is_flag=True, help="Show each call's path, step by step.")
def calls(data_dir: Path, limit: int, show_path: bool) -> None:
    """List recent calls: who called whom, who answered, how long they waited and talked.

    Example: pbx calls --data /var/lib/pbx --limit 10
    """
    from appliance.store import Store

    with Store(data_dir) as store:
        rows = store.recent_calls(limit)
    if not rows:
        click.echo("no calls yet")
        return
    click.echo(f"{'started':19}  {'direction':9}  {'from':>14}  {'to':>14}  {'outcome':9}  {'answered by':>13}"
               f"  {'wait':>6}  {'talk':>7}")
    for r in rows:
        click.echo(f"{(r['started_at'] or '')[:19].replace('T', ' '):19}  {r['direction'] or '':9}  "
                   f"{r['caller'] or 'withheld':>14}  {r['dialled'] or '':>14}  {r['outcome'] or '':9}  "
                   f"{r['answered_by'] or '-':>13}  {r['wait_s'] or 0:>5.1f}s  {r['talk_s'] or 0:>6.1f}s")
        if show_path:
            for p in r["path"]:
                text = p.get("text") or ", ".join(f"{k}={v}" for k, v in p.items() if k not in ("t", "kind"))
                click.echo(f"    {p.get('t', ''):>7}  {p['kind']:10} {text}")


@click.command("calls")
@click.option("--sizes", default="10,25,50,100,200", show_default=True, help="Concurrent call counts to measure.")
@click.option("--hold", default=5.0, show_default=True,
              help="Seconds each size is held (both ends talking) while CPU is sampled.")
@click.option("--rounds", default=3, show_default=True, help="Rounds per size; their delays are pooled.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object instead of a table.")
@click.option("--monitor", is_flag=True,
              help="Also run the live monitor with a subscriber: each size with and without it, rounds interleaved;"
                   " its events delivered against those published, and the post-dial delay it adds.")
def bench_calls(sizes: str, hold: float, rounds: int, as_json: bool, monitor: bool) -> None:
    """Bridged PCMU calls through the engine: its CPU, memory and loop turns, the post-dial delay
    it adds, and the RTP lost and the jitter on the bridged streams.

    Example: pbx bench calls --sizes 10,100 --json > bench.json

    Example: pbx bench calls --sizes 50 --monitor
    """
    from appliance.engine import bench

    report = bench.run(tuple(int(s) for s in sizes.split(",") if s.strip()), hold=hold,
                       echo=(lambda line: None) if as_json else click.echo, rounds=rounds, monitor=monitor)
    if as_json:
        click.echo(json.dumps(report, indent=1))
