"""Reading the store defensively: rows that cannot be read are counted, and report ranges are
clamped to the data held (refused beyond five years).

Rows with a malformed time, number or name are left out of every figure by the store's
queries (:mod:`core.storage.sanity`); :func:`unreadable` says how many, for the page. A History
page, report or export is asked for a date range; every figure over a day range is
built per day (trend, coverage grid, workbook rows), so 2000-01-01 to 2100-01-01 would be
36,525 days of nothing. :func:`clamp_range` narrows a range to the days the store holds
readable data for, and refuses one that still spans more than :data:`MAX_DAYS`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import timedelta

from core.errors import GloveWatchError
from core.storage import Store
from core.storage.filters import HistoryFilter
from core.storage.history import DataSpan

log = logging.getLogger("glovewatch.analytics.reading")

MAX_YEARS = 5
MAX_DAYS = MAX_YEARS * 366


class RangeError(GloveWatchError, ValueError):
    """A date range no report can cover (one sentence)."""


@dataclass(frozen=True)
class Clamped:
    """The range to read, and (when it was narrowed) a sentence saying so."""

    filter: HistoryFilter
    note: str | None = None


def clamp_range(f: HistoryFilter, span: DataSpan) -> Clamped:
    """``f`` narrowed to the days with data (``span``); :class:`RangeError` when what is left
    is longer than :data:`MAX_DAYS`. A range without any data is kept as asked when it is short
    enough (its figures are empty), else narrowed to its last :data:`MAX_DAYS` days."""
    start, end = max(f.start, span.first or f.end), min(f.end, span.last or f.start)
    held = "the part of it that holds data"
    if span.empty or start > end:  # no data in the range: its figures are empty, any length
        start, end = max(f.start, f.end - timedelta(days=MAX_DAYS - 1)), f.end
        held = f"no data in it; its last {MAX_YEARS} years at most"
    if (end - start).days + 1 > MAX_DAYS:
        raise RangeError(
            f"{start} to {end} is more than {MAX_YEARS} years of data; choose a shorter "
            "range (or several reports)."
        )
    if (start, end) == (f.start, f.end):
        return Clamped(f)
    note = f"Shown from {start} to {end} ({f.start} to {f.end} was asked for: {held})."
    return Clamped(replace(f, start=start, end=end), note)


def clamp_for(store: Store, f: HistoryFilter) -> Clamped:
    """:func:`clamp_range` against the store's own data span."""
    return clamp_range(f, store.history.data_span())


@dataclass(frozen=True)
class Unreadable:
    """Rows left out of the figures of a range because they cannot be read, per table."""

    tables: dict[str, int]

    @property
    def count(self) -> int:
        return sum(self.tables.values())

    @property
    def note(self) -> str | None:
        """One sentence for the page (None when every row could be read)."""
        if not self.count:
            return None
        rows = "1 row" if self.count == 1 else f"{self.count:,} rows"
        where = ", ".join(f"{n:,} {_TABLE_WORDS.get(t, t)}" for t, n in sorted(self.tables.items()))
        return (
            f"{rows} could not be read (a malformed time, number or name: {where}) and "
            "are left out of these figures; nothing was deleted."
        )


_TABLE_WORDS = {
    "events": "episodes",
    "coverage_hourly": "coverage hours",
    "results": "image results",
}


def unreadable(store: Store, f: HistoryFilter) -> Unreadable:
    """What the figures of ``f`` leave out because it cannot be read."""
    return Unreadable(store.history.unreadable(f))


def prepare(
    store: Store, f: HistoryFilter, span: DataSpan
) -> tuple[HistoryFilter, tuple[str, ...]]:
    """The range to read for ``f`` (:func:`clamp_range`) and the sentences the page shows
    about it: how it was narrowed, and how many rows in it could not be read (also logged).
    A range beyond :data:`MAX_DAYS` of data is narrowed to its last :data:`MAX_DAYS` days
    (a report refuses it: :func:`clamp_range`)."""
    try:
        clamped = clamp_range(f, span)
    except RangeError as exc:
        end = min(f.end, span.last or f.end)
        start = end - timedelta(days=MAX_DAYS - 1)
        note = f"{exc} Shown from {start} to {end}, the last {MAX_YEARS} years of it."
        clamped = Clamped(replace(f, start=start, end=end), note)
    gone = unreadable(store, clamped.filter)
    if gone.note:
        log.warning("%s (%s)", gone.note, clamped.filter.describe())
    return clamped.filter, tuple(n for n in (clamped.note, gone.note) if n)
