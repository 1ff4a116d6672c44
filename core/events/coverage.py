"""Coverage: how long a station was watched and how much judged hand-time it held.

Each frame accounts for the time since the previous one (capped, so a stalled stream is not
counted as watched), split into per-wall-clock-second rows: seconds watched, seconds with
hands, and compliant and violating hand-seconds as the station's rule judged them. These are
the denominator of every compliance rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from core.config import DEFAULTS
from core.events.rules import Judgement
from core.storage.coverage import CoverageRow


@dataclass(frozen=True)
class CoverageTotals:
    watched_s: float
    hand_s: float
    compliant_s: float
    violating_s: float

    @property
    def compliance(self) -> float | None:
        """Compliant share of judged hand-seconds, or None when no hand was seen."""
        total = self.compliant_s + self.violating_s
        return self.compliant_s / total if total else None


class CoverageAccumulator:
    """Per-second coverage from frames (see module docstring)."""

    def __init__(self, started: datetime, max_gap_s: float = DEFAULTS.max_frame_gap_s):
        self.started = started
        self.max_gap_s = max_gap_s
        self._prev_t: float | None = None
        self._seconds: dict[str, CoverageRow] = {}
        self._totals = [0.0, 0.0, 0.0, 0.0]

    def add(self, t: float, judged: Judgement) -> None:
        dt = 0.0 if self._prev_t is None else min(max(t - self._prev_t, 0.0), self.max_gap_s)
        self._prev_t = t
        ts = (self.started + timedelta(seconds=t)).strftime("%Y-%m-%d %H:%M:%S")
        sec = self._seconds.setdefault(ts, CoverageRow(ts))
        ok, bad = judged.compliant, judged.violating
        sec.hands = max(sec.hands, ok + bad)
        hand_dt = dt if ok + bad else 0.0
        add = (dt, hand_dt, dt * ok, dt * bad)
        for i, v in enumerate(add):
            self._totals[i] += v
        sec.watched_s += add[0]
        sec.hand_s += add[1]
        sec.compliant_s += add[2]
        sec.violating_s += add[3]

    def drain(self, final: bool = False) -> list[CoverageRow]:
        """Completed seconds (all of them with ``final``), removed from the accumulator."""
        keys = sorted(self._seconds)
        if not final:
            keys = keys[:-1]  # the newest second may still get frames
        return [self._seconds.pop(k) for k in keys]

    @property
    def totals(self) -> CoverageTotals:
        return CoverageTotals(*self._totals)
