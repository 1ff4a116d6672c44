"""What a History query asks for, and how it becomes SQL conditions (one place for both)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal

from core.config import DEFAULT_SHIFTS, TRIAL_STATION, Shift
from core.storage.sanity import readable_episode

SEVERITIES = ("warning", "critical")
REVIEW_STATES = ("unreviewed", "confirmed", "dismissed")
OFF_SHIFT = "Off shift"
# Characters a file name cannot hold (path separators, Windows' reserved ones, controls).
_NOT_IN_FILE_NAMES = re.compile(r'[\\/:*?"<>|\x00-\x1f]+')


@dataclass(frozen=True)
class HistoryFilter:
    """What the history shows. Empty tuples mean "all".

    Date range and stations apply to every figure; shift to every figure (by the hour or time
    of day); class, severity and review state describe episodes, so they filter episode figures
    only (hand-time has no class or severity). ``plant_shifts`` are the shifts that name a time
    of day: the entry point passes ``Settings.shifts``.
    """

    start: date
    end: date  # inclusive
    stations: tuple[str, ...] = ()
    shifts: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    reviews: tuple[str, ...] = ()
    plant_shifts: tuple[Shift, ...] = DEFAULT_SHIFTS

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"The range ends ({self.end}) before it starts ({self.start}).")

    @property
    def lo(self) -> str:
        return f"{self.start.isoformat()} 00:00:00"

    @property
    def hi(self) -> str:
        """Exclusive upper bound (midnight after the last day)."""
        return f"{(self.end + timedelta(days=1)).isoformat()} 00:00:00"

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def describe(self) -> str:
        """One line for page captions and report headers."""
        parts = [f"{self.start.isoformat()} to {self.end.isoformat()}"]
        for label, vals in (
            ("stations", self.stations),
            ("shifts", self.shifts),
            ("classes", self.classes),
            ("severity", self.severities),
            ("review", self.reviews),
        ):
            parts.append(f"{label}: {', '.join(vals) if vals else 'all'}")
        return "; ".join(parts)

    def slug(self) -> str:
        """The filter as a short file-name part (for exported reports); user text such as a
        station named ``Band saw/3`` cannot make it a path."""
        parts = [f"{self.start.isoformat()}_{self.end.isoformat()}"]
        for vals in (self.stations, self.shifts, self.classes, self.severities, self.reviews):
            if vals:
                parts.append("+".join(_NOT_IN_FILE_NAMES.sub("-", v) for v in vals))
        return "_".join(parts)


def shift_of(col: Any, shifts: tuple[Shift, ...]) -> ColumnElement[Any]:
    """SQL naming the shift of a timestamp column ('YYYY-MM-DD HH:MM:SS').

    A shift whose end is before its start crosses midnight. Hourly roll-ups are assigned by the
    hour's start, so a shift starting at 06:30 gets whole hours from 07:00.
    """
    return shift_of_clock(func.substr(col, 12, 5), shifts)


def whole_hour_shifts(shifts: tuple[Shift, ...]) -> bool:
    """True when every shift starts and ends on the hour (the hour of a time names its
    shift)."""
    return all(s.start.endswith(":00") and s.end.endswith(":00") for s in shifts)


def shift_of_clock(hm: Any, shifts: tuple[Shift, ...]) -> ColumnElement[Any]:
    """SQL naming the shift of a time of day ``'HH:MM'``."""
    if not shifts:
        return literal(OFF_SHIFT)
    whens = []
    for s in shifts:
        cond = (
            and_(hm >= s.start, hm < s.end) if s.start <= s.end else (hm >= s.start) | (hm < s.end)
        )
        whens.append((cond, literal(s.name)))
    return case(*whens, else_=literal(OFF_SHIFT))


def period_conditions(
    f: HistoryFilter, time_col: Any, station_col: Any
) -> list[ColumnElement[bool]]:
    """Date range, stations and shifts as conditions on a time and a station column; trial
    runs count only where their station is asked for by name."""
    conds = [time_col >= f.lo, time_col < f.hi]
    if f.stations:
        conds.append(station_col.in_(f.stations))
    else:
        conds.append(station_col != TRIAL_STATION)
    if f.shifts:
        conds.append(shift_of(time_col, f.plant_shifts).in_(f.shifts))
    return conds


def episode_conditions(f: HistoryFilter, events: Any) -> list[ColumnElement[bool]]:
    """The period plus class, severity and review state, on the events table."""
    conds = period_conditions(f, events.c.started_at, events.c.station)
    conds += readable_episode(events)  # a row no page can show is left out (and counted)
    if f.classes:
        conds.append(events.c.class_name.in_(f.classes))
    if f.severities:
        conds.append(events.c.severity.in_(f.severities))
    if f.reviews:
        conds.append(events.c.review.in_(f.reviews))
    return conds
