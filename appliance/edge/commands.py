"""`pbx phones`: the registered phones, from the store's bindings table."""

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
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
