"""Who is waiting in which queue, in what order: the engine's queue state.

One small structure for the whole engine: per queue, the callers waiting,
VIP callers (priority 1) ahead of the others, then by the time they joined.
Every change is an event (QueueJoined, QueueLeft, QueuePosition) for the live
monitor, and the waits of callers an agent answered are kept so routing can
estimate the wait of the next ones (`Router.queue_status`).

No pjsua2 here: the engine thread calls it, and tests can drive it alone.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Callable

RECENT = 10            # answer times kept per queue for the estimate


@dataclass
class Waiting:
    call_id: str
    queue: str
    caller: str
    priority: int                  # 1: VIP
    joined: float                  # time.monotonic()
    seq: int
    position: int = 0              # last position told to the monitor
    next_try: float = 0.0          # when this caller may ring agents again


@dataclass
class Queues:
    emit: Callable[..., None] = lambda kind, call_id=None, **data: None
    clock: Callable[[], float] = time.monotonic
    waiting: dict[str, list[Waiting]] = field(default_factory=dict)
    answer_times: dict[str, list[float]] = field(default_factory=dict)
    _seq: Any = field(default_factory=itertools.count)

    def join(self, queue: str, call_id: str, caller: str = "", priority: int = 0) -> Waiting:
        w = Waiting(call_id, queue, caller, priority, self.clock(), next(self._seq))
        line = self.waiting.setdefault(queue, [])
        line.append(w)
        line.sort(key=lambda x: (-x.priority, x.seq))
        w.position = line.index(w) + 1
        self.emit("QueueJoined", call_id, queue=queue, caller=caller, position=w.position, vip=priority > 0,
                  waiting=len(line))
        self._renumber(queue, skip=w)
        return w

    def leave(self, call_id: str, reason: str) -> Waiting | None:
        """Take the call out of its queue; `reason`: answered, hangup, exit, callback, timeout."""
        for queue, line in self.waiting.items():
            for w in line:
                if w.call_id == call_id:
                    line.remove(w)
                    waited = self.clock() - w.joined
                    if reason == "answered":
                        times = self.answer_times.setdefault(queue, [])
                        times.append(waited)
                        del times[:-RECENT]
                    self.emit("QueueLeft", call_id, queue=queue, reason=reason, waited_s=round(waited, 3),
                              waiting=len(line))
                    self._renumber(queue)
                    if not line:
                        del self.waiting[queue]
                    return w
        return None

    def find(self, call_id: str) -> Waiting | None:
        for line in self.waiting.values():
            for w in line:
                if w.call_id == call_id:
                    return w
        return None

    def position(self, call_id: str) -> int:
        """1 for the caller at the head of its queue; 0 when not waiting."""
        w = self.find(call_id)
        return self.waiting[w.queue].index(w) + 1 if w else 0

    def line(self, queue: str) -> list[Waiting]:
        """The callers waiting in `queue`, the next to be served first."""
        return list(self.waiting.get(queue, ()))

    def recent_answer_times(self) -> dict[str, tuple[float, ...]]:
        return {q: tuple(t) for q, t in self.answer_times.items()}

    def snapshot(self) -> dict[str, list[dict]]:
        """For the live monitor: every queue's callers in order, with their waits so far."""
        now = self.clock()
        return {q: [{"call_id": w.call_id, "caller": w.caller, "position": i + 1, "vip": w.priority > 0,
                     "waiting_s": round(now - w.joined, 1)} for i, w in enumerate(line)]
                for q, line in self.waiting.items()}

    def clear(self) -> None:
        self.waiting.clear()

    def _renumber(self, queue: str, skip: Waiting | None = None) -> None:
        for i, w in enumerate(self.waiting.get(queue, ())):
            if w.position != i + 1:
                w.position = i + 1
                if w is not skip:
                    self.emit("QueuePosition", w.call_id, queue=queue, position=w.position)
