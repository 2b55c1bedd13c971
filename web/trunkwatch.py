"""After a change to a trunk that worked: check that it still works, and undo the change when it does not.

A mistyped provider password must not leave the office without phones.  When
the owner saves a change to a trunk that was up, a background thread asks the
running appliance (`trunks.status` on the control socket) until the trunk is
up again.  If the provider refuses it, or nothing answers within
`WATCH_SECONDS`, the version before the change is restored, the appliance
reads it again, and the setting `panel_trunk_notice` keeps what happened for
the trunks page.  The thread has no Flask request: it opens its own control
client and its own store.

The decision (`verdict`, `watch`) takes the status source, the clock and the
sleep as arguments, so tests drive it without an appliance and without waiting.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable

from appliance.control import ControlClient, ControlError, socket_path
from appliance.store import Store
from appliance.store.panel import PanelTables
from web import office

log = logging.getLogger("web.trunkwatch")

WATCH_SECONDS = 60.0   # how long a changed trunk has to work again
POLL_SECONDS = 2.0     # how often the appliance is asked
NOTICE = "panel_trunk_notice"

StatusSource = Callable[[], "list[dict] | None"]


def verdict(state: dict | None) -> str:
    """"up" (the change is good), "down" (the provider refused or failed: undo now) or "waiting".

    No state yet means the appliance is still making the trunk's account; a
    registering trunk with no reply yet (code None) is waiting too."""
    if state is None:
        return "waiting"
    if state.get("up"):
        return "up"
    return "waiting" if state.get("code") is None else "down"


def find(states: list[dict] | None, name: str) -> dict | None:
    return next((s for s in states or [] if s.get("name") == name), None)


def watch(name: str, status: StatusSource, *, deadline: float | None = None, every: float | None = None,
          clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> dict | None:
    """Ask `status` until trunk `name` is up (returns None) or not (returns its last state).

    A trunk that is still waiting when the deadline passes counts as not
    working: its state then has `timed_out` set."""
    deadline = WATCH_SECONDS if deadline is None else deadline
    every = POLL_SECONDS if every is None else every
    end = clock() + deadline
    last: dict | None = None
    while True:
        state = find(status(), name)
        last = state or last
        seen = verdict(state)
        if seen == "up":
            return None
        if seen == "down":
            return state
        if clock() >= end:
            return {"name": name, "up": False, "code": None, "reason": "", "error": None,
                    **(last or {}), "timed_out": True, "seconds": deadline}
        sleep(every)


def english_reason(state: dict) -> str:
    """Why the trunk does not work, for the version's summary (summaries are written in English)."""
    if state.get("code") is None:
        waited = state.get("seconds")
        return f"no answer from the provider within {waited:g} s" if waited else "no answer from the provider"
    return state.get("error") or f"the provider answered {state['code']} {state.get('reason') or ''}".rstrip()


def undo(store: Store, name: str, before_id: int, changed_id: int, state: dict) -> dict:
    """Restore the version before the change (unless another change came after it) and leave the notice.

    When the owner saved something else meanwhile, restoring would throw that
    away too, so the change stays and the notice only says the trunk fails."""
    notice = {"trunk": name, "code": state.get("code"), "reason": state.get("reason") or "",
              "timed_out": bool(state.get("timed_out")), "seconds": state.get("seconds"), "at": office.now_iso(),
              "undone": False}
    tables = PanelTables(store)
    with store.transaction():
        latest, before = tables.latest_version(), tables.version(before_id)
        if latest is not None and latest["id"] == changed_id and before is not None:
            summary = f"the change to trunk {name} was undone: {english_reason(state)}"
            office.restore_text(store, before["document"], who="appliance", summary=summary,
                                restored_from=before_id)
            notice["undone"] = True
        store.set_setting(NOTICE, notice)
    return notice


def control_status(data_dir: str | Path) -> StatusSource:
    """The running appliance's trunk states; None when it does not answer (then: ask again)."""
    def ask() -> list[dict] | None:
        try:
            with ControlClient(socket_path(data_dir), timeout=5.0) as client:
                return client.request("trunks.status")["trunks"]
        except (ControlError, OSError, ValueError, KeyError, TypeError) as e:
            log.info("trunks.status: %s", e)
            return None
    return ask


def control_reload(data_dir: str | Path) -> Callable[[], None]:
    def tell() -> None:
        try:
            with ControlClient(socket_path(data_dir), timeout=15.0) as client:
                client.request("engine.reload")
        except (ControlError, OSError) as e:
            log.warning("the appliance did not read the restored configuration: %s", e)
    return tell


def run(data_dir: str | Path, name: str, before_id: int, changed_id: int, *, status: StatusSource | None = None,
        tell: Callable[[], None] | None = None, **timing: Any) -> dict | None:
    """Watch the trunk and undo the change when it does not work; returns the notice left, or None."""
    state = watch(name, status or control_status(data_dir), **timing)
    if state is None:
        return None
    with Store(data_dir, migrate=False) as store:
        notice = undo(store, name, before_id, changed_id, state)
    if notice["undone"]:
        (tell or control_reload(data_dir))()
    log.warning("trunk %s does not work after a change (%s); %s", name, english_reason(state),
                "the change was undone" if notice["undone"] else "a later change was kept")
    return notice


def start(data_dir: str | Path, name: str, before_id: int, changed_id: int) -> threading.Thread | None:
    """Watch in the background; nothing to watch when no appliance runs (no control socket)."""
    if not socket_path(data_dir).exists():
        return None
    thread = threading.Thread(target=_run_logged, args=(data_dir, name, before_id, changed_id),
                              name=f"trunkwatch:{name}", daemon=True)
    thread.start()
    return thread


def _run_logged(data_dir: str | Path, name: str, before_id: int, changed_id: int) -> None:
    # The edge of a thread: nobody is there to catch, so say what went wrong and stop.
    try:
        run(data_dir, name, before_id, changed_id)
    except Exception:  # noqa: BLE001
        log.exception("watching trunk %s after a change failed", name)
