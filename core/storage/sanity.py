"""Which stored rows the figures can read: SQL conditions, one place for every reader.

A store can hold rows no reading should trust: written by an old version, a forged message or
a hand edit (timestamps ``-0001-01-01``, ``9999-12-31`` or ``not a time``, negative, infinite
or NaN durations, a 10 MiB station name). Every History, Home and report query adds these
conditions, so such a row is left out of figures and lists instead of raising, and
:meth:`core.storage.history.HistoryRepo.unreadable` counts them for the page to say so.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_

# Timestamps are text 'YYYY-MM-DD HH:MM:SS' (days 'YYYY-MM-DD'): text order is time order.
TS_MIN = "2000-01-01"
TS_MAX = "2100-01-01"
MAX_NAME = 200  # characters of a station or class name
MAX_SECONDS = 1e9  # about 31 years: more is no duration


def sane_time(col: Any) -> ColumnElement[bool]:
    """``col`` holds a timestamp (or a day) between :data:`TS_MIN` and :data:`TS_MAX` whose
    month and day are in 01-01..12-31 (one comparison: these run on every row a figure
    reads)."""
    return and_(col >= TS_MIN, col < TS_MAX, func.substr(col, 6, 5).between("01-01", "12-31"))


def outside_window(col: Any) -> ColumnElement[bool]:
    """``col`` is before :data:`TS_MIN` or from :data:`TS_MAX` on (an index range: cheap)."""
    return or_(col < TS_MIN, col >= TS_MAX)


def sane_amount(col: Any, top: float = MAX_SECONDS) -> ColumnElement[bool]:
    """``col`` is a finite number from 0 to ``top`` (NaN, infinities and negatives fail:
    PostgreSQL orders NaN above every number)."""
    return and_(col >= 0, col < top)


def sane_name(col: Any) -> ColumnElement[bool]:
    return func.length(col) <= MAX_NAME


def readable_episode(e: Any) -> list[ColumnElement[bool]]:
    """Conditions on the ``events`` table for an episode the pages can show (only columns of
    its ``events_history`` index: History's queries stay index-only)."""
    return [
        sane_time(e.c.started_at),
        sane_amount(e.c.duration_s),
        sane_name(e.c.station),
        or_(e.c.class_name.is_(None), sane_name(e.c.class_name)),
    ]


def readable_amounts(*cols: Any) -> list[ColumnElement[bool]]:
    return [sane_amount(c) for c in cols]
