"""`pbx phones` and `pbx guard`: the registered phones and the edge's bans, from the store."""

from __future__ import annotations

import time
from pathlib import Path

import click

from appliance.clickutil import data_option


@click.command("phones")
@data_option
def phones(data_dir: Path) -> None:
    """List registered phones: extension, contact, source address, user agent, expires in.

    The edge writes bindings about once a second, so a phone that registered
    a moment ago may take a second to show.

    Example: pbx phones --data /var/lib/pbx
    """
    from appliance.store import Store

    with Store(data_dir) as store:
        now = time.time()
        rows = store.bindings(now=now)
    if not rows:
        click.echo("No phones registered.")
        return
    table = [("EXTENSION", "CONTACT", "SOURCE", "USER AGENT", "EXPIRES IN")]
    for r in rows:
        source = f"{r['transport'] or 'udp'}:{r['source_host']}:{r['source_port']}"
        table.append((r["extension"], r["contact"], source, r["user_agent"] or "-", f"{int(r['expires_at'] - now)} s"))
    _print_table(table)


def _print_table(table: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


@click.group("guard")
def guard() -> None:
    """The edge's bans: which addresses are silenced, and lifting a ban.

    Example: pbx guard list
    """


# What each kind of ban silences (see appliance/edge/guard.py PASSES_BAN).
_SILENCES = {"flood": "requests without valid credentials", "auth failures": "all but calls already up"}


@guard.command("list")
@data_option
def guard_list(data_dir: Path) -> None:
    """List banned addresses: address, reason, what is silenced, until when.

    Bans are kept in the store, so they outlast a restart.

    Example: pbx guard list --data /var/lib/pbx
    """
    from appliance.store import Store

    with Store(data_dir) as store:
        rows = store.bans(time.time())
    if not rows:
        click.echo("No addresses are banned.")
        return
    table = [("ADDRESS", "REASON", "SILENCES", "UNTIL")]
    for r in rows:
        until = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["until"]))
        table.append((r["address"], r["reason"] or "-", _SILENCES.get(r["reason"], "all but calls already up"), until))
    _print_table(table)


@guard.command("unban")
@click.argument("address")
@data_option
def guard_unban(address: str, data_dir: Path) -> None:
    """Lift the ban on ADDRESS (as `pbx guard list` shows it).

    A running appliance lets the address in again within about a second.

    Example: pbx guard unban 203.0.113.9
    """
    from appliance.store import Store

    with Store(data_dir) as store:
        lifted = store.delete_ban(address)
    if not lifted:
        raise click.ClickException(f"{address} is not banned")
    click.echo(f"{address} is no longer banned")
