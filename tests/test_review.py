"""Episode review on real detections of the shipped model: audit trail, KPIs, YOLO export."""

from __future__ import annotations

import json
from datetime import date

import pytest

from core import history as h
from core import review
from core import store as st


@pytest.fixture
def conn(batch_home):
    c = st.connect()
    yield c
    c.close()


def _today_filter() -> h.HistoryFilter:
    return h.HistoryFilter(date.today(), date.today())


def test_review_trail_and_dismissed_leave_kpis(conn):
    f = _today_filter()
    eps = h.episodes(conn, f)
    assert len(eps) == 3 and all(e.evidence_path for e in eps)
    before = h.kpis(conn, f).total
    assert before.episodes == 3 and before.basis == h.BASIS_DETECTIONS
    review.set_review(conn, eps[0].id, "confirmed", "clear bare hand", "Ana")
    entry = review.set_review(conn, eps[1].id, "dismissed", "glove on zoom", "Ana")
    assert entry.review == "dismissed" and entry.reviewed_by == "Ana"
    after = h.kpis(conn, f).total
    assert after.episodes == 2 and after.dismissed == 1
    assert after.bare_n == before.bare_n - 1  # the dismissed photo's bare hand is gone
    assert after.compliance > before.compliance
    review.set_review(conn, eps[1].id, "unreviewed")
    trail = review.review_history(conn, eps[1].id)
    assert [t.review for t in trail] == ["dismissed", "unreviewed"]
    assert h.get_episode(conn, eps[1].id).reviewed_at is None
    assert h.kpis(conn, f).total.episodes == 3


def test_review_rejects_bad_input(conn):
    with pytest.raises(ValueError, match="one of"):
        review.set_review(conn, 1, "maybe")
    with pytest.raises(ValueError, match="no episode #999"):
        review.set_review(conn, 999, "confirmed")


def test_export_reviewed_as_yolo(conn, tmp_path):
    eps = h.episodes(conn, _today_filter())
    review.set_review(conn, eps[0].id, "confirmed")
    review.set_review(conn, eps[1].id, "dismissed")
    rep = review.export_reviewed(conn, tmp_path / "ds")
    assert rep.images == 2 and rep.boxes >= 2 and rep.skipped == []
    labels = {p.stem: p.read_text().split("\n") for p in (tmp_path / "ds/labels/train").glob("*")}
    confirmed = labels[f"episode-{eps[0].id:07d}"]
    dismissed = labels[f"episode-{eps[1].id:07d}"]
    assert any(line.startswith("1 ") for line in confirmed)
    assert all(line.startswith("0 ") for line in dismissed if line)
    for line in (x for lines in labels.values() for x in lines if x):
        vals = [float(v) for v in line.split()[1:]]
        assert all(0 <= v <= 1 for v in vals)
    assert len(list((tmp_path / "ds/images/train").glob("*.jpg"))) == 2
    assert "names:" in (tmp_path / "ds/data.yaml").read_text()
    bg = review.export_reviewed(conn, tmp_path / "bg", dismissed_as="background")
    text = (tmp_path / "bg/labels/train" / f"episode-{eps[1].id:07d}.txt").read_text()
    assert text == ""  # the false alarm becomes a background image
    assert bg.images == 2


def test_corrupt_and_missing_evidence_are_explained(conn, tmp_path):
    eps = h.episodes(conn, _today_filter())
    ep = eps[0]
    for path in (ep.evidence_path, ep.crop_path):  # the frame and the hand crop
        with open(path, "wb") as fh:
            fh.write(b"\xff\xd8\xff\xe0 this is not a jpeg")
    view = review.load_evidence(h.get_episode(conn, ep.id))
    assert view.image is None and "unreadable" in view.message
    assert review.thumbnail_png(ep) is None
    good = review.load_evidence(eps[1])
    assert good.image is not None and good.image.ndim == 3
    png = review.thumbnail_png(eps[1], 64)
    assert png[:4] == b"\x89PNG"
    import os

    os.unlink(eps[2].evidence_path)
    assert "missing" in review.load_evidence(eps[2]).message
    for e in eps:
        review.set_review(conn, e.id, "confirmed")
    rep = review.export_reviewed(conn, tmp_path / "ds")
    reasons = dict(rep.skipped)
    assert rep.images == 1 and "unreadable" in reasons[ep.id] and eps[2].id in reasons


def test_review_and_export_cli(conn, tmp_path, capfd):
    from core.cli import main

    eid = h.episodes(conn, _today_filter())[0].id
    assert main(["review", str(eid), "dismissed", "--comment", "glove", "--by", "Bo"]) == 0
    assert f"episode {eid}: dismissed by Bo" in capfd.readouterr().out
    assert h.get_episode(conn, eid).review == "dismissed"
    assert main(["review", "4242", "confirmed"]) == 2
    assert main(["export-reviewed", "--out", str(tmp_path / "ds"), "--json"]) == 0
    out = json.loads(capfd.readouterr().out.strip().splitlines()[-1])
    assert out["images"] == 1 and out["skipped"] == []
