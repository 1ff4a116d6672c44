"""Trial runs: photos and videos tried out on the Batch page (or ``python -m core detect``)
without a station. They are recorded at :data:`~core.config.TRIAL_STATION`, which every plant
figure leaves out (:func:`core.storage.filters.period_conditions`), and can be deleted at any
time (``python -m core trials --delete``); a run assigned to a station on purpose counts there.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

from core.analytics import history as h
from core.config import TRIAL_STATION, settings
from core.events.evidence import EvidenceStore
from core.storage import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrialResults:
    """What trial runs have left in the store."""

    images: int  # photos and video frames checked
    episodes: int  # dismissed ones included

    @property
    def empty(self) -> bool:
        return not (self.images or self.episodes)

    def describe(self) -> str:
        if self.empty:
            return "No trial results are kept."
        return (
            f"Trial results kept: {self.images:,} images or frames checked, {self.episodes:,} "
            "episodes. They are not counted in Home, History or reports."
        )


def trial_results(store: Store) -> TrialResults:
    """How much trial runs have recorded (all dates)."""
    f = h.HistoryFilter(date(2000, 1, 1), h.today_filter().end, stations=(TRIAL_STATION,))
    k = h.kpis(store, f)
    return TrialResults(k.total.frames, h.count_episodes(store, f))


@dataclass(frozen=True)
class TrialsDeleted:
    """What :func:`delete_trial_results` removed."""

    sessions: int
    results: int
    episodes: int
    files: int

    def summary(self) -> str:
        return (
            f"Deleted {_n(self.sessions, 'trial run')}: {_n(self.results, 'result')}, "
            f"{_n(self.episodes, 'episode')} and {_n(self.files, 'file')}."
        )


def _n(count: int, word: str) -> str:
    """``1 episode``, ``3 episodes``."""
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def delete_trial_results(store: Store, by: str | None = None) -> TrialsDeleted:
    """Delete every trial run with its results, episodes, evidence and annotated files."""
    erased = store.stations.erase_recordings(TRIAL_STATION)
    s = settings()
    # only inside the evidence store and the batch outputs, as retention: a row never gets
    # the store file or anything else deleted (an evidence frame's detections go with it)
    folders = [EvidenceStore(s.evidence_dir), EvidenceStore(s.batch_dir)]
    files = 0
    for name in erased.files:
        held = next((f for f in folders if f.path(name) is not None), None)
        if held is None:
            log.warning(
                "trial file %s is outside the evidence store; left in place", Path(name).name
            )
            continue
        try:
            files += held.remove(name) is not None
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("trial file %s not deleted: %s", Path(name).name, exc)
    out = TrialsDeleted(erased.sessions, erased.results, erased.episodes, files)
    store.audit.add(by or "-", "trials.delete", TRIAL_STATION, asdict(out))
    log.info("%s (by %s)", out.summary(), by or "-")
    return out
