"""The store's sums per office hour added up into tallies: by hour of the day, weekday, day, person, number.

A row of sums is one office hour (or one person's or number's hour) with the
measures of `appliance.store.reports.SUM_MEASURES` and the answered calls'
waits as a histogram of whole seconds.  Adding up a year (8,760 hours, or
tens of thousands of a person's hours) one Tally at a time in Python takes
longer than the report may, so the rows are added up with numpy: each
measure by `bincount` over the rows' keys, the histograms as one array of
(row, seconds, calls) entries.  The service level's N and the short abandons
are applied here, at reading time, so any value of either can be asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Hashable, Sequence

import numpy as np

from appliance.reports.figures import Tally

EPOCH_DAY = date(1970, 1, 1)
THURSDAY = 3           # 1 January 1970 (weekday 0 is Monday)
DENSE_CELLS = 4_000_000   # keys x seconds above which the histograms are added up sparsely
MEASURES = 11             # appliance.store.reports.SUM_MEASURES: records, calls in, ... outbound talk


@dataclass
class Rows:
    """Rows of sums: `measures` (rows x SUM_MEASURES), `short` abandons per row, and the waits'
    histogram entries (`entry_row`, `entry_seconds`, `entry_calls`)."""

    measures: np.ndarray
    short: np.ndarray
    entry_row: np.ndarray
    entry_seconds: np.ndarray
    entry_calls: np.ndarray

    @classmethod
    def of(cls, measures: Sequence[Sequence[float]], waits: Sequence[bytes | None], short: Sequence[int] | None = None,
           n_measures: int = MEASURES) -> "Rows":
        m = np.array(measures, dtype=np.float64).reshape(len(measures), n_measures)
        lengths = np.fromiter((len(b) // 8 if b else 0 for b in waits), dtype=np.int64, count=len(waits))
        flat = np.frombuffer(b"".join(b for b in waits if b), dtype="<i4").reshape(-1, 2).astype(np.int64)
        s = np.zeros(len(measures), dtype=np.int64) if short is None else np.asarray(short, dtype=np.int64)
        return cls(m, s, np.repeat(np.arange(len(waits)), lengths), flat[:, 0], flat[:, 1])

    def __len__(self) -> int:
        return len(self.measures)


def add_up(rows: Rows, codes: np.ndarray, labels: Sequence[Hashable], within_s: int,
           waits: bool = True) -> dict[Any, Tally]:
    """A Tally per label: the rows whose code (an index into `labels`) is that label's, added up; only
    labels some row has.  `waits` False leaves the histograms out (the staffing advice reads none)."""
    k = len(labels)
    codes = np.asarray(codes, dtype=np.int64)
    sums = np.stack([np.bincount(codes, weights=rows.measures[:, j], minlength=k)
                     for j in range(rows.measures.shape[1])], axis=1) if len(rows) else np.zeros((k, MEASURES))
    present = np.bincount(codes, weights=rows.measures[:, 0], minlength=k) != 0 if len(rows) else np.zeros(k, bool)
    short = np.bincount(codes, weights=rows.short, minlength=k) if len(rows) else np.zeros(k)
    hist = _histograms(rows, codes, k) if waits else {}
    out: dict[Any, Tally] = {}
    for i in np.nonzero(present)[0]:
        (_, calls_in, calls_out, answered, wait_sum, talk_sum, lost, abandoned, voicemail, out_answered,
         out_talk_sum) = sums[i]
        entries = hist.get(int(i), ())
        within = sum(n for s, n in entries if s <= within_s)
        out[labels[i]] = Tally(int(calls_in), int(calls_out), int(answered), float(wait_sum), float(talk_sum), within,
                               int(lost), int(abandoned), int(short[i]), int(voicemail), int(out_answered),
                               float(out_talk_sum), waits=entries)
    return out


def _histograms(rows: Rows, codes: np.ndarray, k: int) -> dict[int, tuple[tuple[int, int], ...]]:
    """Each code's histogram as ((seconds, calls), ...) ascending, from the rows' entries."""
    if not len(rows.entry_row):
        return {}
    key = codes[rows.entry_row]
    lo, hi = int(rows.entry_seconds.min()), int(rows.entry_seconds.max())
    span = hi - lo + 1
    if k * span <= DENSE_CELLS:
        dense = np.bincount(key * span + (rows.entry_seconds - lo), weights=rows.entry_calls,
                            minlength=k * span).reshape(k, span)
        cells, seconds = np.nonzero(dense)
        calls = dense[cells, seconds]
        seconds = seconds + lo
    else:
        cell, inverse = np.unique(key * span + (rows.entry_seconds - lo), return_inverse=True)
        calls = np.bincount(inverse, weights=rows.entry_calls)
        keep = calls != 0
        cell, calls = cell[keep], calls[keep]
        cells, seconds = cell // span, cell % span + lo
    out: dict[int, list] = {}
    for c, s, n in zip(cells.tolist(), seconds.tolist(), calls.tolist()):
        out.setdefault(c, []).append((s, int(n)))
    return {c: tuple(v) for c, v in out.items()}


def local_seconds(at: np.ndarray, offsets: Sequence[tuple[int | None, int]]) -> np.ndarray:
    """The office's local time (seconds from 1970 on the local clock) of each hour's UTC start."""
    shift = np.full(len(at), offsets[-1][1], dtype=np.int64)
    for until, seconds in reversed(offsets[:-1]):
        shift[at < until] = seconds
    return at + shift


def day_label(day: int) -> str:
    return (EPOCH_DAY + timedelta(days=day)).isoformat()


def codes_of(values: np.ndarray) -> tuple[np.ndarray, list]:
    """Each value's index into the sorted distinct values, and those values."""
    distinct, codes = np.unique(values, return_inverse=True)
    return codes.reshape(-1), distinct.tolist()
