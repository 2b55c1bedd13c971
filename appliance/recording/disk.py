"""The disk guard: recording stops before the SD card fills, and starts again when space is back.

`DiskGuard.check()` reads the free space (a function passed in; `shutil.disk_usage` by default) and
says whether recording may go on.  Recording stops when the free space falls below the larger of
`min_free_mb` and `min_free_percent` of the card, and is allowed again only once the free space is
`RESUME_MARGIN` above that threshold, so a card hovering at the line does not start and stop
recordings every few seconds.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

MB = 1024 * 1024
RESUME_MARGIN = 64 * MB


class Usage(NamedTuple):
    total: int
    used: int
    free: int


@dataclass(frozen=True)
class Reading:
    allowed: bool          # recording may go on
    changed: bool          # allowed is not what the previous check said
    free: int              # bytes
    threshold: int         # bytes: below this, recording stops


def threshold(total: int, min_free_mb: int, min_free_percent: int) -> int:
    return max(min_free_mb * MB, total * min_free_percent // 100)


class DiskGuard:
    def __init__(self, folder: Path, min_free_mb: int, min_free_percent: int,
                 usage: Callable[[Path], Usage] | None = None):
        self.folder = Path(folder)
        self.min_free_mb, self.min_free_percent = min_free_mb, min_free_percent
        self.usage = usage or (lambda p: Usage(*shutil.disk_usage(p)))
        self.allowed = True

    def configure(self, min_free_mb: int, min_free_percent: int) -> None:
        self.min_free_mb, self.min_free_percent = min_free_mb, min_free_percent

    def check(self) -> Reading:
        path = self.folder
        while not path.exists() and path != path.parent:
            path = path.parent  # the folder is made with the first recording
        u = self.usage(path)
        limit = threshold(u.total, self.min_free_mb, self.min_free_percent)
        before = self.allowed
        if self.allowed and u.free < limit:
            self.allowed = False
        elif not self.allowed and u.free >= limit + min(RESUME_MARGIN, limit):
            self.allowed = True
        return Reading(self.allowed, self.allowed != before, u.free, limit)
