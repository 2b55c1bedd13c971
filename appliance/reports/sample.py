"""Generated call records for the benchmark and the tests: an office's inbound and outbound calls.

Inbound calls arrive in office hours (more on Monday mornings), go through a
menu, a hunt group or a queue; most are answered by one of a few people after
a wait, some callers give up (in the menu, the queue or while it rings),
some leave a message.  Outbound calls are placed by the same people.  Every
record has the shape the engine's recorder writes (`calls`, path included);
lost calls come with missed-call cases, some of them called back.  The
random generator is passed in, so a seed gives the same records.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Iterator

PEOPLE = ("101", "102", "103", "104", "105", "106")
NUMBERS = ("0441234567", "0442345678", "0800300300")
DESTS = (("ring", "group:sales", "Sales"), ("ring", "group:office", "Office"), ("queue", "queue:support", "Support"))
MENU = ("menu", "menu:main", "Main menu")


def _iso(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def _step(t: float, step: tuple[str, str, str]) -> dict:
    return {"t": round(t, 3), "kind": "step", "step": step[0], "dest": step[1], "name": step[2]}


def calls(rng: random.Random, start: datetime, days: int, count: int) -> Iterator[dict]:
    """`count` finished call records, in time order, over `days` days from `start` (office hours 8-19)."""
    per_day = count / days
    n = 0
    for day in range(days):
        base = start + timedelta(days=day)
        todays = int(round(per_day * (day + 1))) - int(round(per_day * day))
        moments = sorted(rng.uniform(8 * 3600, 19 * 3600) if rng.random() > 0.3 else rng.gauss(10.5 * 3600, 3600)
                         for _ in range(todays))
        for s in moments:
            n += 1
            yield call(rng, f"g{n:08d}", base + timedelta(seconds=max(0.0, s)))


def call(rng: random.Random, call_id: str, at: datetime) -> dict:
    caller = f"+38067{rng.randrange(10**7):07d}"
    if rng.random() < 0.2:
        person = rng.choice(PEOPLE)
        answered = rng.random() < 0.7
        talk = round(rng.expovariate(1 / 120), 3) if answered else 0.0
        wait = round(rng.uniform(3, 25), 3)
        answered_at = _iso(at + timedelta(seconds=wait)) if answered else None
        return {"id": call_id, "started_at": _iso(at), "answered_at": answered_at,
                "ended_at": _iso(at + timedelta(seconds=wait + talk)), "direction": "outbound", "caller": person,
                "dialled": caller, "trunk": "provider", "extension": person, "answered_by": caller if answered else "",
                "outcome": "answered" if answered else "failed", "wait_s": wait, "talk_s": talk,
                "path": [{"t": 0.0, "kind": "leg", "target": caller, "code": 200 if answered else 486},
                         {"kind": "end", "reason": "", "rung": []}]}
    path: list[dict] = []
    t = 0.0
    if rng.random() < 0.4:
        path.append(_step(t, MENU))
        t += rng.uniform(2, 12)
        if rng.random() < 0.05:   # hung up in the menu
            return _lost(call_id, at, caller, t, path, "caller gave up")
    dest = rng.choice(DESTS)
    path.append(_step(t, dest))
    if dest[0] == "queue":
        path.append({"t": round(t, 3), "kind": "queue", "queue": dest[1][6:], "position": rng.randint(1, 4),
                     "vip": False})
    wait = t + rng.expovariate(1 / 15)
    r = rng.random()
    if r < 0.08:
        return _lost(call_id, at, caller, wait, path, "caller gave up")
    if r < 0.11:
        return _lost(call_id, at, caller, rng.uniform(0.5, 4.5) if not t else wait, path, "caller gave up")
    if r < 0.14:
        path.append({"t": round(wait, 3), "kind": "outcome", "step": dest[0], "outcome": "no_answer"})
        path.append(_step(wait, ("voicemail", "voicemail:main", "Voicemail")))
        return _lost(call_id, at, caller, wait + 20, path, "message left", outcome="voicemail")
    person = rng.choice(PEOPLE[:4] if at.hour < 12 else PEOPLE)
    talk = round(rng.expovariate(1 / 150), 3)
    path.append({"t": round(wait, 3), "kind": "answered", "by": person})
    path.append({"kind": "end", "reason": "caller hung up", "rung": [person]})
    return {"id": call_id, "started_at": _iso(at), "answered_at": _iso(at + timedelta(seconds=wait)),
            "ended_at": _iso(at + timedelta(seconds=wait + talk)), "direction": "inbound", "caller": caller,
            "dialled": rng.choice(NUMBERS), "trunk": "provider", "extension": None, "answered_by": person,
            "outcome": "answered", "wait_s": round(wait, 3), "talk_s": talk, "path": path}


def _lost(call_id: str, at: datetime, caller: str, wait: float, path: list[dict], reason: str,
          outcome: str = "missed") -> dict:
    path.append({"kind": "end", "reason": reason, "rung": []})
    return {"id": call_id, "started_at": _iso(at), "answered_at": None,
            "ended_at": _iso(at + timedelta(seconds=wait)), "direction": "inbound", "caller": caller,
            "dialled": NUMBERS[len(call_id) % len(NUMBERS)], "trunk": "provider", "extension": None,
            "answered_by": None, "outcome": outcome, "wait_s": round(wait, 3), "talk_s": 0.0, "path": path}


def cases(rng: random.Random, records: list[dict], short_s: float = 5.0) -> tuple[list[dict], list[tuple]]:
    """A missed-call case for each lost call (short abandons closed from the start), half called back."""
    out, links = [], []
    open_callers: set[str] = set()   # at most one open case per number (as the store requires)
    for i, r in enumerate(r for r in records if r["direction"] == "inbound" and not r["answered_by"]):
        short = r["outcome"] == "missed" and r["wait_s"] < short_s
        opened = datetime.fromisoformat(r["ended_at"])
        took = 0.0 if short else round(rng.uniform(60, 4 * 3600), 3)
        how = "short abandon" if short else rng.choice(("called back", "called back", "answered", "done", None))
        if how is None and r["caller"] in open_callers:
            how = "done"
        closed = how is not None
        if not closed:
            open_callers.add(r["caller"])
        out.append({"id": i + 1, "caller": r["caller"], "dialled": r["dialled"],
                    "status": "closed" if closed else "open",
                    "short": int(short), "count": 1, "opened_at": r["ended_at"], "last_at": r["ended_at"],
                    "waited_s": r["wait_s"], "gave_up": "", "assigned_to": "101",
                    "closed_at": _iso(opened + timedelta(seconds=took)) if closed else None, "ended_how": how,
                    "closed_by": "system" if short else ("102" if closed else None),
                    "took_s": took if closed else None})
        links.append((r["id"], i + 1, r["ended_at"], r["wait_s"], int(short)))
    return out, links
