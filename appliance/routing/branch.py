"""Other branches' extensions: the ranges a branch trunk reaches, and what a number in them means.

A branch trunk (`kind: branch` in `trunks:`) links this appliance with another
shop's.  Its `extensions` ("200-299", "200-249, 260") say which extension
numbers live there, so a desk phone dials a colleague in the other shop by
extension, and routing may name them (`branch:shop2/201`, a group member
`shop2/201`).  Pure functions: the engine and the configuration loader hand
over the ranges they read.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from ..errors import ConfigError

Ranges = tuple[tuple[int, int], ...]


def parse_ranges(value: object, path: tuple = ()) -> Ranges:
    """ "200-299, 350" (or a list of such) as ((200, 299), (350, 350)); ConfigError when not ranges."""
    items = value if isinstance(value, list) else [value]
    out: list[tuple[int, int]] = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise ConfigError("extensions should be ranges of extension numbers, like \"200-299\"", path)
        for part in str(item).split(","):
            part = part.strip()
            lo, sep, hi = part.partition("-")
            lo, hi = lo.strip(), (hi.strip() if sep else lo.strip())
            if not (lo.isdigit() and hi.isdigit()) or lo[0] == "0" or hi[0] == "0" or len(lo) != len(hi) \
                    or not 2 <= len(lo) <= 6 or int(lo) > int(hi):
                raise ConfigError(f"'{part}' is not a range of extension numbers (like 200-299: "
                                  "2 to 6 digits, the same number of digits at both ends, not starting with 0)", path)
            out.append((int(lo), int(hi)))
    if not out:
        raise ConfigError("a branch needs its extensions, like \"200-299\"", path)
    return tuple(out)


def format_ranges(ranges: Ranges) -> str:
    return ", ".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges)


def in_ranges(number: str, ranges: Ranges) -> bool:
    """Whether the extension number `number` is in one of the ranges (by value and by length)."""
    if not number.isdigit() or number[0] == "0":
        return False
    n = int(number)
    return any(lo <= n <= hi and len(str(lo)) == len(number) for lo, hi in ranges)


def branch_of(number: str, branches: Mapping[str, Ranges]) -> str | None:
    """The branch trunk whose extensions include `number`, or None."""
    for name, ranges in branches.items():
        if in_ranges(number, ranges):
            return name
    return None


def overlaps(a: Ranges, b: Ranges) -> bool:
    return any(lo1 <= hi2 and lo2 <= hi1 and len(str(lo1)) == len(str(lo2)) for lo1, hi1 in a for lo2, hi2 in b)


def own_clash(ranges: Ranges, extensions: Iterable[str]) -> str | None:
    """One of this appliance's own extensions that a branch's ranges claim too, or None."""
    for number in sorted(extensions):
        if in_ranges(number, ranges):
            return number
    return None


def split_target(target: str) -> tuple[str, str]:
    """("shop2", "201") for "shop2/201"; ("shop2", "") for "shop2"."""
    base, _, ext = target.partition("/")
    return base, ext
