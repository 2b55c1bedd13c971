"""`pbx report`, `pbx report lost` and `pbx bench reports`."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click

from appliance.clickutil import data_option
from appliance.reports.periods import Period, PeriodError

BY_CHOICES = ("hour", "weekday", "day", "person", "group", "number", "menu")
LOST_COLUMNS = ("started_at", "caller", "dialled", "wait_s", "outcome", "where", "dest", "short", "case_id",
                "ended_how", "called_back_at", "closed_by")


def _period(store: Any, first: str | None, last: str | None) -> Period:
    try:
        to = date.fromisoformat(last) if last else datetime.now(ZoneInfo(store.timezone)).date()
        frm = date.fromisoformat(first) if first else to - timedelta(days=6)
        return Period(frm, to, store.timezone)
    except (ValueError, PeriodError) as e:
        raise click.BadParameter(str(e)) from None


def _csv(rows: list[dict], columns: tuple[str, ...] | list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in columns})
    return buf.getvalue()


def _table(rows: list[dict], columns: list[str]) -> str:
    text = [[str(c) for c in columns]] + [["-" if r.get(c) is None else str(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in text) for i in range(len(columns))]
    return "\n".join("  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths)))
                     for row in text)


def table_columns(by: str, rows: list[dict]) -> list[str]:
    return list(rows[0]) if rows else ["key"]


def _summary_text(s: dict) -> str:
    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f} %"

    lines = [
        f"{s['from']} to {s['to']} ({s['timezone']})",
        f"calls in {s['calls_in']}, out {s['calls_out']} (answered {s['out_answered']})",
        f"offered {s['offered']}: answered {s['answered']}, missed {s['missed']} "
        f"(abandoned {s['abandoned']}: menu {s['abandoned_where']['menu']}, queue {s['abandoned_where']['queue']}, "
        f"ringing {s['abandoned_where']['ringing']}, other {s['abandoned_where']['other']}; "
        f"voicemail {s['voicemail']}); short abandons apart: {s['short']}",
        f"wait to answer: average {s['avg_wait']} s, 90 % within {s['p90_wait']} s; "
        f"service level {pct(s['service_level'])} answered within {s['answer_within_s']:g} s",
        f"average talk {s['avg_talk']} s (outbound {s['avg_out_talk']} s)",
        f"missed-call cases {s['cases']['opened']}: closed {s['cases']['closed']}, open {s['cases']['open']}, "
        f"called back {s['cases']['called_back']}; average time to handle {s['cases']['avg_took_s']} s",
        f"call-back requests {s['callbacks']['requested']}: called back {s['callbacks']['called_back']}, "
        f"failed {s['callbacks']['failed']}, open {s['callbacks']['open']}",
    ]
    return "\n".join(lines)


@click.group("report", invoke_without_command=True)
@data_option
@click.option("--from", "first", metavar="DATE", help="First office day (YYYY-MM-DD); default: 6 days before --to.")
@click.option("--to", "last", metavar="DATE", help="Last office day, included (YYYY-MM-DD); default: today.")
@click.option("--by", type=click.Choice(BY_CHOICES), help="A table by this instead of the summary.")
@click.option("--within", default=20, show_default=True, type=click.IntRange(min=1),
              help="Service level: answered within this many whole seconds.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (with --by).")
@click.pass_context
def report(ctx: click.Context, data_dir: Path, first: str | None, last: str | None, by: str | None, within: float,
           as_json: bool, as_csv: bool) -> None:
    """Call figures over a range of office days: calls in and out, answered, missed, abandoned and where,
    wait, service level, talk, call-backs, missed-call cases; tables by hour, weekday, day, person, group,
    number or menu; staffing advice by Erlang C.

    Example: pbx report --from 2025-03-01 --to 2025-03-31 --by hour --csv > march.csv
    """
    ctx.ensure_object(dict)
    ctx.obj.update(data_dir=data_dir, first=first, last=last, within=within, as_json=as_json, as_csv=as_csv)
    if ctx.invoked_subcommand is not None:
        return
    from appliance.reports import build_report
    from appliance.store import Store

    with Store(data_dir) as store:
        period = _period(store, first, last)
        rep = build_report(store, period, answer_within_s=within, only=(by,) if by else ("summary", "staffing"))
    if by:
        rows = rep.tables[by]
        cols = table_columns(by, rows)
        if as_json:
            click.echo(json.dumps(rows, indent=1, ensure_ascii=False))
        elif as_csv:
            click.echo(_csv(rows, cols), nl=False)
        else:
            click.echo(_table(rows, cols))
        return
    summary = rep.summary()
    staffing = [{"weekday": s.weekday, "from_hour": s.first_hour, "to_hour": s.end_hour, "needed": s.needed,
                 "had": s.had} for s in rep.staffing]
    if as_json:
        click.echo(json.dumps({**summary, "staffing": staffing}, indent=1, ensure_ascii=False))
        return
    if as_csv:
        raise click.UsageError("--csv needs --by (or use `pbx report lost --csv`)")
    from appliance.reports.staffing import sentence

    click.echo(_summary_text(summary))
    advice = [s for s in rep.staffing if s.short_of > 0]
    if advice:
        click.echo(f"staffing (target {int(100 * 0.8)} % within {within:g} s):")
        for s in advice:
            click.echo("  " + sentence(s))


@report.command("lost")
@click.pass_context
def report_lost(ctx: click.Context) -> None:
    """The lost calls of the range (the latest 500): caller, time, wait, where they gave up, and whether
    and when they were called back (from the missed-call cases).  Takes the options of `pbx report` before
    `lost`.

    Example: pbx report --from 2025-03-01 --to 2025-03-07 --csv lost
    """
    from appliance.reports import build_report
    from appliance.store import Store

    o = ctx.obj
    with Store(o["data_dir"]) as store:
        rep = build_report(store, _period(store, o["first"], o["last"]), answer_within_s=o["within"], only=("lost",))
    if o["as_json"]:
        click.echo(json.dumps(rep.lost, indent=1, ensure_ascii=False))
    elif o["as_csv"]:
        click.echo(_csv(rep.lost, LOST_COLUMNS), nl=False)
    else:
        click.echo(_table(rep.lost, list(LOST_COLUMNS)) if rep.lost else "no lost calls")
        if rep.lost_count > len(rep.lost):
            click.echo(f"the latest {len(rep.lost)} of {rep.lost_count} lost calls")


@click.command("reports")
@click.option("--records", default=500_000, show_default=True, help="Call records to generate.")
@click.option("--days", default=365, show_default=True, help="Over this many days, ending yesterday.")
@click.option("--goal-ms", default=200.0, show_default=True, help="The time each report should take at most.")
def bench_reports(records: int, days: int, goal_ms: float) -> None:
    """Generate call records into a temporary store and time each report over the last 30 days and over
    the whole range, against the goal.

    Example: pbx bench reports --records 100000
    """
    from appliance.reports.bench import run

    run(records, days, goal_ms, click.echo)
