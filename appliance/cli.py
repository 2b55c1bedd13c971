"""The `pbx` command: run the appliance and look after it.

Every command takes `--data DIR`, the directory that holds the SQLite file and
the control socket (default: $PBX_DATA, else ./data).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path

import click

from appliance import __version__
from appliance.clickutil import data_option
from appliance.errors import ConfigError


def open_store(data_dir: Path):
    from appliance.store import Store

    return Store(data_dir)


def tell_running(data_dir: Path) -> None:
    """If the appliance is running on this data, have it read the configuration again."""
    from appliance.control import ControlClient, ControlError, socket_path

    if not socket_path(data_dir).exists():
        return
    try:
        with ControlClient(socket_path(data_dir)) as client:
            known = client.request("engine.reload")
        click.echo(f"the running appliance uses it now ({known['extensions']} extensions, {known['trunks']} trunks)")
    except ControlError as e:
        click.echo(f"the running appliance did not take it yet ({e}); it will after a restart", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """An office PBX appliance: desk phones, trunks, hunt groups, IVR, night mode."""


@cli.command()
def version() -> None:
    """Print the appliance's version and its pjsua2 build.

    Example: pbx version
    """
    from importlib.metadata import PackageNotFoundError, version as dist_version

    click.echo(f"pbx-appliance {__version__}")
    try:
        click.echo(f"pjsua2 {dist_version('pjsua2')} (built by appliance.pjbuild)")
    except PackageNotFoundError:
        click.echo("pjsua2 not installed (scripts/setup builds it)")


@cli.command("build-engine")
@click.option("--accept-index", is_flag=True, help="Build the tarball Debian's archive lists now, not the pinned one.")
@click.option("--force", is_flag=True, help="Reinstall even if this very build is installed.")
def build_engine(accept_index: bool, force: bool) -> None:
    """Build pjsua2 from Debian's pjproject source (cached per machine) and install it here.

    scripts/setup runs this; run it by hand after changing appliance/pjbuild.

    Example: pbx build-engine
    """
    from appliance.pjbuild import main as pjbuild_main

    args = ["--python", sys.executable, "--install" if force else "--install-if-needed"]
    if accept_index:
        args.append("--accept-index")
    code = pjbuild_main(args)
    if code:
        sys.exit(code)


@cli.command()
@data_option
@click.option("--bind", default="0.0.0.0", show_default=True, help="Address for SIP and the panel.")
@click.option("--sip-port", type=int, default=5060, show_default=True, help="SIP port for phones (UDP and TCP).")
@click.option("--web-port", type=int, default=8080, show_default=True, help="Port of the web panel.")
@click.option("--engine-port", type=int, default=5080, show_default=True, help="Loopback SIP port of the call engine.")
@click.option("--trunk-port", type=int, default=5070, show_default=True, help="SIP port for trunks (providers), on --bind.")
@click.option("--no-web", is_flag=True, help="Do not serve the panel from this process.")
@click.option("--web-bind", default=None, help="Address of the panel (default: --bind); 127.0.0.1 keeps it to this machine.")
@click.option("--https", is_flag=True, help="Serve the panel over HTTPS (a certificate is made on the first start).")
@click.option("--web-cert", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
              help="The panel's certificate (PEM), with --web-key, instead of a made one.")
@click.option("--web-key", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
              help="The key of --web-cert (PEM).")
@click.option("--tls-port", type=int, default=5061, show_default=True,
              help="SIP over TLS port for phones (their calls use SRTP); 0 turns TLS off.")
@click.option("--sip-cert", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
              help="Certificate (PEM) for SIP over TLS, with --sip-key, instead of the one made on the first start.")
@click.option("--sip-key", type=click.Path(path_type=Path, exists=True, dir_okay=False), default=None,
              help="The key of --sip-cert (PEM).")
@click.option("--log-level", default="INFO", show_default=True, type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]))
def run(data_dir: Path, bind: str, sip_port: int, web_port: int, engine_port: int, trunk_port: int, no_web: bool,
        web_bind: str | None, https: bool, web_cert: Path | None, web_key: Path | None, tls_port: int,
        sip_cert: Path | None, sip_key: Path | None, log_level: str) -> None:
    """Run the appliance: SIP edge, call engine, control socket and panel.

    Prints a line with `ready` when every part is up; SIGTERM stops it.

    Example: pbx run --data /var/lib/pbx
    """
    from appliance.app import RunOptions, run as run_app

    logging.basicConfig(level=log_level, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if bool(web_cert) != bool(web_key):
        raise click.UsageError("--web-cert and --web-key go together")
    if bool(sip_cert) != bool(sip_key):
        raise click.UsageError("--sip-cert and --sip-key go together")
    options = RunOptions(data_dir=data_dir, bind=bind, sip_port=sip_port, web_port=web_port,
                         engine_port=engine_port, web=not no_web, web_bind=web_bind,
                         https=https or bool(web_cert), web_cert=web_cert, web_key=web_key,
                         tls_port=tls_port, sip_cert=sip_cert, sip_key=sip_key,
                         extra={"trunk_port": trunk_port})
    sys.exit(asyncio.run(run_app(options)))


@cli.command()
@data_option
@click.option("--bind", default="0.0.0.0", show_default=True)
@click.option("--port", type=int, default=8080, show_default=True)
def web(data_dir: Path, bind: str, port: int) -> None:
    """Serve the owner's panel on its own (the pbx-web service).

    Example: pbx web --data /var/lib/pbx --port 8080
    """
    from werkzeug.serving import run_simple

    from web import create_app

    run_simple(bind, port, create_app({"DATA_DIR": str(data_dir)}), threaded=True)


@cli.command()
@data_option
@click.option("--json", "as_json", is_flag=True, help="Print the raw status object.")
def status(data_dir: Path, as_json: bool) -> None:
    """Ask the running appliance how it is.

    Example: pbx status --data /var/lib/pbx
    """
    from appliance.control import ControlClient, ControlError, socket_path

    try:
        with ControlClient(socket_path(data_dir)) as client:
            st = client.request("status")
    except ControlError as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        click.echo(json.dumps(st, indent=2))
        return
    click.echo(f"pbx-appliance {st['version']}, up {st['uptime_s']:.0f} s")
    click.echo(f"engine: {'running' if st['engine']['running'] else 'DOWN'} on {st['engine']['sip']}")
    click.echo(f"edge:   {st['edge']['sip']}, {st['edge']['bindings']} registered contacts")
    if st.get("web"):
        click.echo(f"panel:  {st['web']}")
    click.echo(f"extensions: {st['extensions']}, timezone {st['timezone']}")
    for sid, sw in (st.get("night") or {}).items():
        click.echo(f"night switch {sid}: {sw['text']}")
    if st.get("leds"):
        click.echo("LEDs: " + ", ".join(f"{name} {led['pattern']}" for name, led in st["leds"].items()))


# -- extensions -------------------------------------------------------------------


@cli.group()
def ext() -> None:
    """Add, list and remove extensions (desk phones)."""


@ext.command("add")
@data_option
@click.argument("number")
@click.option("--name", required=True, help="Who or where the extension is.")
@click.option("--password", help="SIP password (generated when not given).")
def ext_add(data_dir: Path, number: str, name: str, password: str | None) -> None:
    """Add an extension and print its SIP password.

    Example: pbx ext add 104 --name "Warehouse"
    """
    if password is not None and len(password) < 8:
        raise click.BadParameter("at least 8 characters", param_hint="--password")
    with open_store(data_dir) as store:
        try:
            pw = store.add_extension(number, name, password)
        except ConfigError as e:
            raise click.ClickException(str(e)) from None
    click.echo(f"extension {number} ({name}): user {number}, password {pw}")
    tell_running(data_dir)


@ext.command("list")
@data_option
def ext_list(data_dir: Path) -> None:
    """List extensions and how many contacts each has registered.

    Example: pbx ext list
    """
    with open_store(data_dir) as store:
        for e in store.extensions():
            n = len(store.bindings(e["number"]))
            flags = " dnd" if e["dnd"] else ""
            click.echo(f"{e['number']:>6}  {e['name']:<24} {n} registered{flags}")


@ext.command("remove")
@data_option
@click.argument("number")
def ext_remove(data_dir: Path, number: str) -> None:
    """Remove an extension and its registrations.

    Example: pbx ext remove 104
    """
    with open_store(data_dir) as store:
        in_use = _routing_mentions(store, number)
        if in_use:
            raise click.ClickException(f"extension {number} is used by the routing: {in_use}; change the routing first")
        try:
            store.remove_extension(number)
        except ConfigError as e:
            raise click.ClickException(str(e)) from None
    click.echo(f"removed extension {number}")
    tell_running(data_dir)


def _routing_mentions(store, number: str) -> str | None:
    """Whether the saved routing would break without this extension (validated by routing)."""
    doc = store.routing_document()
    if not doc:
        return None
    from appliance.routing.config import parse

    exts = {e["number"]: e["name"] for e in store.extensions() if e["number"] != number}
    try:
        parse(doc, exts)
    except ConfigError as e:
        return str(e)
    return None


@ext.command("passwd")
@data_option
@click.argument("number")
@click.option("--password", help="New SIP password (generated when not given).")
def ext_passwd(data_dir: Path, number: str, password: str | None) -> None:
    """Give an extension a new SIP password and print it.

    Example: pbx ext passwd 101
    """
    if password is not None and len(password) < 8:
        raise click.BadParameter("at least 8 characters", param_hint="--password")
    with open_store(data_dir) as store:
        try:
            pw = store.set_password(number, password)
        except ConfigError as e:
            raise click.ClickException(str(e)) from None
    click.echo(f"extension {number}: user {number}, password {pw}")


# -- configuration file ------------------------------------------------------------


@cli.group()
def config() -> None:
    """Export and import the whole configuration as one YAML file."""


@config.command("export")
@data_option
@click.option("-o", "--output", type=click.File("w", encoding="utf-8"), default="-",
              help="File to write (default: stdout).")
def config_export(data_dir: Path, output) -> None:
    """Write the configuration as YAML.

    Example: pbx config export -o office.yaml
    """
    from appliance.configfile import export_config

    with open_store(data_dir) as store:
        output.write(export_config(store))


@config.command("import")
@data_option
@click.argument("file", type=click.File("rb"))
def config_import(data_dir: Path, file) -> None:
    """Replace the configuration with a YAML file's; nothing changes if it is invalid.

    Example: pbx config import office.yaml
    """
    from appliance.configfile import ConfigFileError, import_config, read_file

    # Bytes, so that the size limit and UTF-8 are checked before anything is decoded.
    try:
        text = read_file(file)
        with open_store(data_dir) as store:
            cfg = import_config(store, text)
    except ConfigFileError as e:
        raise click.ClickException(f"{getattr(file, 'name', '<stdin>')}: {e}; nothing was imported") from None
    click.echo(f"imported {len(cfg.extensions)} extensions, {len(cfg.trunks)} trunks, "
               f"{len(cfg.contacts)} contacts and the routing")
    tell_running(data_dir)


# -- benchmarks ---------------------------------------------------------------------


@cli.group()
def bench() -> None:
    """Benchmarks that print figures (not pass/fail)."""


def _register_parts() -> None:
    """Commands that live with the parts they belong to."""
    from appliance.analogcmd import bench_echo, bench_line, line
    from appliance.edge.bench import edge as bench_edge
    from appliance.edge.commands import guard, phones
    from appliance.engine.callcommand import call
    from appliance.engine.commands import bench_calls, calls
    from appliance.missed.commands import missed
    from appliance.monitorcmd import monitor
    from appliance.night.commands import night
    from appliance.reports.commands import bench_reports, report
    from appliance.store.bench import store as bench_store
    from appliance.tracecmd import bench_routing, duty, trace
    from web.bench import bench_panel

    cli.add_command(trace)
    cli.add_command(duty)
    cli.add_command(phones)
    cli.add_command(guard)
    cli.add_command(calls)
    cli.add_command(night)
    cli.add_command(missed)
    cli.add_command(monitor)
    cli.add_command(call)
    cli.add_command(report)
    cli.add_command(line)
    bench.add_command(bench_routing)
    bench.add_command(bench_edge)
    bench.add_command(bench_calls)
    bench.add_command(bench_store)
    bench.add_command(bench_panel)
    bench.add_command(bench_reports)
    bench.add_command(bench_line)
    bench.add_command(bench_echo)


def main() -> None:
    _register_parts()
    cli()
