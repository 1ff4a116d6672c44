"""Episode review: figures change at once, every decision is kept and audited, evidence is
shown or explained, and reviewed evidence exports as a YOLO data set."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest

from core.analytics import history as h
from core.analytics import review
from core.errors import ReviewError
from core.storage.events import EventRow


def _filter(saw, **kw) -> h.HistoryFilter:
    return h.HistoryFilter(saw.day, saw.day, **kw)


def test_recorded_saw_figures(saw):
    f = _filter(saw)
    k = h.kpis(saw.store, f).total
    assert k.episodes == 2 and k.critical == 1 and k.dismissed == 0
    assert k.compliant_s == pytest.approx(saw.compliant_s)
    assert k.violating_s == pytest.approx(saw.violating_s)
    eps = h.episodes(saw.store, f, order="critical first")
    assert [e.severity for e in eps] == ["critical", "warning"]
    assert all(e.duration_s == pytest.approx(saw.episode_s) for e in eps)
    assert all(Path(e.evidence_path).is_file() for e in eps)


def test_dismissing_changes_the_figures_at_once(saw):
    f = _filter(saw)
    store = saw.store
    warning = next(e for e in h.episodes(store, f) if e.severity == "warning")
    before = h.kpis(store, f).total
    assert before.compliance == pytest.approx(saw.compliant_s / (saw.compliant_s + saw.violating_s))
    entry = review.set_review(store, warning.id, "dismissed", " glove on zoom ", "Ana")
    assert entry.review == "dismissed" and entry.comment == "glove on zoom"
    after = h.kpis(store, f).total  # no cache in core: the very next query sees it
    assert (after.episodes, after.dismissed, after.critical) == (1, 1, 1)
    assert after.dismissed_s == pytest.approx(saw.episode_s)
    assert after.compliance == pytest.approx(
        saw.compliant_s / (saw.compliant_s + saw.violating_s - saw.episode_s)
    )
    assert h.count_episodes(store, f) == 2  # still listed for review, marked
    assert h.count_episodes(store, _filter(saw, reviews=("dismissed",))) == 1
    assert h.count_episodes(store, _filter(saw, reviews=("unreviewed",))) == 1
    listed = {e.id: e for e in h.episodes(store, f)}
    assert listed[warning.id].review == "dismissed"
    assert listed[warning.id].reviewed_by == "Ana" and listed[warning.id].reviewed_at
    (day,) = h.trend(store, f, "day")
    assert day.episodes == 1 and day.dismissed == 1
    assert [s.episodes for s in h.top_stations(store, f)] == [1]
    # taking the decision back restores the figures
    review.set_review(store, warning.id, "unreviewed", reviewed_by="Ana")
    assert h.kpis(store, f).total == before
    assert h.get_episode(store, warning.id).reviewed_at is None


def test_review_history_keeps_every_decision_and_the_audit_names_the_reviewer(saw):
    store = saw.store
    eid = h.episodes(store, _filter(saw))[0].id
    review.set_review(store, eid, "confirmed", "clear bare hand", "Ana")
    review.set_review(store, eid, "dismissed", "=glove after all", "Bo")
    review.set_review(store, eid, "unreviewed", "", "Cy")
    trail = review.review_history(store, eid)
    assert [(t.review, t.comment, t.reviewed_by) for t in trail] == [
        ("confirmed", "clear bare hand", "Ana"),
        ("dismissed", "=glove after all", "Bo"),
        ("unreviewed", None, "Cy"),
    ]
    assert all(t.event_id == eid and t.reviewed_at for t in trail)
    audit = [a for a in store.audit.recent(action="episode.review")]
    assert [(a.actor, a.details["review"], a.details["comment"]) for a in reversed(audit)] == [
        ("Ana", "confirmed", "clear bare hand"),
        ("Bo", "dismissed", "=glove after all"),
        ("Cy", "unreviewed", None),
    ]
    assert all(a.target == f"episode {eid}" for a in audit)
    assert review.review_history(store, 424242) == []


def test_review_rejects_bad_input(saw):
    eid = h.episodes(saw.store, _filter(saw))[0].id
    with pytest.raises(ReviewError, match="one of"):
        review.set_review(saw.store, eid, "maybe")
    with pytest.raises(ReviewError, match="no episode #999"):
        review.set_review(saw.store, 999, "confirmed")
    assert review.review_history(saw.store, eid) == []  # nothing half-recorded


def test_evidence_is_shown_or_explained(saw):
    store = saw.store
    bad, good = h.episodes(store, _filter(saw))
    for path in (bad.evidence_path, bad.crop_path):  # the frame and the hand crop
        Path(path).write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    view = review.load_evidence(h.get_episode(store, bad.id))
    assert view.image is None and "unreadable" in view.message
    assert review.thumbnail_png(bad) is None
    shown = review.load_evidence(good)
    assert shown.image is not None and shown.image.shape == (640, 640, 3)
    assert "redacted" in shown.message
    hand_crop = review.load_evidence(good, crop=True)
    assert hand_crop.image.shape[0] < 200 and hand_crop.image.shape[1] < 200
    png = review.thumbnail_png(good, 64)
    assert png[:4] == b"\x89PNG"
    os.unlink(good.evidence_path)
    view = review.load_evidence(good)
    assert view.image is None and "missing" in view.message
    assert str(Path(good.evidence_path).parent) not in view.message  # no server paths
    none = store.events.insert(EventRow("Saw 01", "2026-01-05 11:00:00"))
    assert "No evidence image" in review.load_evidence(h.get_episode(store, none)).message


def _labels(out: Path) -> dict[str, list[str]]:
    return {
        p.stem: [x for x in p.read_text().split("\n") if x]
        for p in (out / "labels" / "train").glob("*.txt")
    }


def test_export_reviewed_as_yolo(saw, tmp_path):
    store = saw.store
    confirmed, dismissed = h.episodes(store, _filter(saw), order="critical first")
    review.set_review(store, confirmed.id, "confirmed")
    review.set_review(store, dismissed.id, "dismissed")
    store.events.insert(EventRow("Saw 01", "2026-01-05 11:00:00"))  # unreviewed: left out
    rep = review.export_reviewed(store, tmp_path / "ds")
    assert rep.images == 2 and rep.boxes == 4 and rep.skipped == []
    labels = _labels(tmp_path / "ds")
    assert set(labels) == {f"episode-{confirmed.id:07d}", f"episode-{dismissed.id:07d}"}
    assert sorted(x[0] for x in labels[f"episode-{confirmed.id:07d}"]) == ["0", "1"]
    assert [x[0] for x in labels[f"episode-{dismissed.id:07d}"]] == ["0", "0"]  # a glove
    for line in (x for lines in labels.values() for x in lines):
        vals = [float(v) for v in line.split()[1:]]
        assert len(vals) == 4 and all(0 <= v <= 1 for v in vals)
    # the bare hand on the right: centre (480, 140) of a 640 x 640 frame
    bare = next(x for x in labels[f"episode-{confirmed.id:07d}"] if x.startswith("1 "))
    assert [round(float(v), 4) for v in bare.split()[1:]] == [0.75, 0.2188, 0.1875, 0.1875]
    assert len(list((tmp_path / "ds" / "images" / "train").glob("*.jpg"))) == 2
    assert "names:" in (tmp_path / "ds" / "data.yaml").read_text()
    bg = review.export_reviewed(store, tmp_path / "bg", dismissed_as="background")
    assert bg.images == 2 and bg.boxes == 3
    assert [x[0] for x in _labels(tmp_path / "bg")[f"episode-{dismissed.id:07d}"]] == ["0"]
    with pytest.raises(ReviewError):
        review.export_reviewed(store, tmp_path / "x", dismissed_as="hand")


def test_export_skips_episodes_without_evidence(saw, tmp_path):
    store = saw.store
    a, b = h.episodes(store, _filter(saw))
    for e in (a, b):
        review.set_review(store, e.id, "confirmed")
    Path(a.evidence_path).write_bytes(b"not an image")
    os.unlink(b.evidence_path)
    rep = review.export_reviewed(store, tmp_path / "ds", h.HistoryFilter(saw.day, saw.day))
    reasons = dict(rep.skipped)
    assert rep.images == 0 and "unreadable" in reasons[a.id] and "missing" in reasons[b.id]


@pytest.mark.slow
def test_review_of_real_batch_detections(batch_home, store, tmp_path):
    """On the shipped model's own detections of 3 bare-hand and 2 gloved photos."""
    f = h.HistoryFilter(date.today(), date.today())
    eps = h.episodes(store, f)
    assert len(eps) >= 3 and all(e.evidence_path for e in eps)
    before = h.kpis(store, f).total
    assert before.episodes == len(eps) and before.basis == h.BASIS_DETECTIONS
    review.set_review(store, eps[0].id, "confirmed", "clear bare hand", "Ana")
    review.set_review(store, eps[1].id, "dismissed", "glove on zoom", "Ana")
    after = h.kpis(store, f).total
    assert after.episodes == before.episodes - 1 and after.dismissed == 1
    assert after.violating_n < before.violating_n  # the dismissed photo's hands are gone
    assert after.compliance > before.compliance
    rep = review.export_reviewed(store, tmp_path / "ds")
    assert rep.images == 2 and rep.boxes >= 2 and rep.skipped == []
    labels = _labels(tmp_path / "ds")
    assert any(x.startswith("1 ") for x in labels[f"episode-{eps[0].id:07d}"])
    assert all(x.startswith("0 ") for x in labels[f"episode-{eps[1].id:07d}"])


def test_evidence_outside_the_evidence_store_is_never_read(store, tmp_path):
    """A row naming any image on the host (or the store's own folder) shows nothing."""
    import numpy as np

    from core.media import write_image

    outside = write_image(tmp_path / "secret.jpg", np.full((32, 32, 3), 200, np.uint8))
    eid = store.events.insert(EventRow("Saw 01", "2026-01-05 11:00:00", evidence_path=str(outside)))
    view = review.load_evidence(h.get_episode(store, eid))
    assert view.image is None and "not in the evidence store" in view.message
    assert str(tmp_path) not in view.message
