"""Trial runs: recorded at the trial station, counted in no plant figure, deleted with their
files (the Batch page's button and ``python -m core trials --delete``)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from core.analytics import history as h
from core.analytics.trials import TrialResults, delete_trial_results, trial_results
from core.config import TRIAL_STATION
from core.errors import RuleError
from core.events.rules import StationRule
from core.events.stations import save_rule
from core.media import read_image
from core.storage.sessions import ResultRow, SessionInfo
from tests.analytics.conftest import SAW_DAY, record_saw
from tests.cli.support import cli
from tests.events.scenes import dets, every, hand, record

ALL = h.HistoryFilter(SAW_DAY, SAW_DAY)


def _trial(store, image_path) -> None:
    """A camera shift recorded as a trial run: coverage, one episode with evidence, a photo."""
    sid = store.sessions.start(
        SessionInfo("batch", "photo.jpg", TRIAL_STATION, "m.pt", "ab" * 32, 0.25, 0.7, 640)
    )
    bare = hand("hand", (60.0, 80.0, 180.0, 200.0), 0.8, 1)
    record(
        store,
        StationRule(TRIAL_STATION),
        every(0.2, 0, 4.0, dets(bare)),
        read_image(image_path),
        datetime(2026, 1, 5, 11, 0, 0),
        session_id=sid,
    )
    store.sessions.add_result(
        sid, ResultRow(source="photo.jpg", violating=1, ts="2026-01-05 11:00:10")
    )


def test_trial_runs_count_in_no_plant_figure(store, bare_images):
    record_saw(store, bare_images[0])
    plant = h.kpis(store, ALL).total
    _trial(store, bare_images[1])
    assert trial_results(store).episodes == 1
    assert h.kpis(store, ALL).total == plant  # Home, History and reports read these
    assert h.count_episodes(store, ALL) == 2  # only the plant's two episodes are listed
    assert TRIAL_STATION not in {s.name for s in h.stations(store)}
    asked = h.kpis(store, h.HistoryFilter(SAW_DAY, SAW_DAY, stations=(TRIAL_STATION,))).total
    assert asked.episodes == 1 and asked.watched_s > 0  # there when asked for by name


def test_no_station_may_take_the_trial_name(store):
    with pytest.raises(RuleError, match="trial runs are kept"):
        save_rule(store, StationRule(TRIAL_STATION), "test")


def test_deleting_trials_removes_their_rows_and_files_only(store, bare_images):
    record_saw(store, bare_images[0])
    plant = h.kpis(store, ALL).total
    _trial(store, bare_images[1])
    [ep] = h.episodes(store, h.HistoryFilter(SAW_DAY, SAW_DAY, stations=(TRIAL_STATION,)))
    files = [Path(p) for p in (ep.evidence_path, ep.crop_path) if p]
    assert files and all(p.exists() for p in files)
    gone = delete_trial_results(store, "ana")
    assert (gone.sessions, gone.results, gone.episodes) == (1, 1, 1) and gone.files == 2
    assert not any(p.exists() for p in files)
    assert not Path(ep.evidence_path).with_suffix(".json").exists()
    assert trial_results(store) == TrialResults(0, 0)
    assert h.kpis(store, ALL).total == plant and h.count_episodes(store, ALL) == 2
    assert store.audit.recent(5)[0].action == "trials.delete"


def test_deleting_trials_never_deletes_a_file_outside_the_evidence_store(store, gw_home):
    """A trial episode row naming a file out of the evidence folder (``..`` or a symlink in
    it pointing out) deletes its row, never that file."""
    from core.config import settings
    from core.storage.events import EventRow

    evidence = settings().evidence_dir
    evidence.mkdir(parents=True, exist_ok=True)
    keep = gw_home / "keep.jpg"
    keep.write_bytes(b"not evidence")
    (evidence / "link.jpg").symlink_to(keep)
    for path in (evidence / ".." / "keep.jpg", evidence / "link.jpg"):
        store.events.insert(EventRow(TRIAL_STATION, "2026-01-05 11:00:00", evidence_path=str(path)))
    gone = delete_trial_results(store, "ana")
    assert gone.episodes == 2 and gone.files == 0
    assert keep.read_bytes() == b"not evidence"


def test_trials_from_the_command_line(gw_home, store, capfd, bare_images):
    _trial(store, bare_images[1])
    r = cli(capfd, "trials", "--json")
    assert r.code == 0 and r.json == {"images": 1, "episodes": 1}
    r = cli(capfd, "trials", "--delete", "--json")
    assert r.code == 0 and r.json["episodes"] == 1 and r.json["sessions"] == 1
    assert "No trial results" in cli(capfd, "trials").out
