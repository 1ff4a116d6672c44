from pathlib import Path

import openpyxl

from core import store as st
from core.batch import BatchInput, run_batch
from core.compliance import Verdict
from core.detector import InferenceParams
from tests.helpers import make_video


def test_batch_images_bad_files_and_video(gw_home, default_weights, gloved_images, bare_images,
                                          tmp_path):
    # 1.6 s of one bare hand (an episode needs 1 s), then 0.8 s of gloved hands
    clip = make_video(tmp_path / "clip.mp4", bare_images[:1] * 4 + gloved_images[:2])
    good = gloved_images[0].read_bytes()
    inputs = [
        BatchInput.from_path(bare_images[0]),
        BatchInput(gloved_images[0].name, data=good),
        BatchInput("notes.jpg", data=b"just text"),
        BatchInput("cut.jpg", data=good[: len(good) // 2]),
        BatchInput("empty.png", data=b""),
        BatchInput("broken.mp4", data=b"\x00" * 64),
        BatchInput("readme.txt", data=b"hello"),
        BatchInput.from_path(clip),
    ]
    seen = []
    report = run_batch(inputs, default_weights, InferenceParams(),
                       station="saw-1", progress=lambda f, t: seen.append(f))
    by = {f.name: f for f in report.files}
    assert by[bare_images[0].name].verdict.verdict is Verdict.VIOLATION
    assert by[gloved_images[0].name].verdict.verdict is Verdict.COMPLIANT
    assert "not an image" in by["notes.jpg"].error
    assert "truncated" in by["cut.jpg"].error
    assert "empty" in by["empty.png"].error
    assert by["broken.mp4"].error and by["readme.txt"].error
    video = by["clip.mp4"]
    assert video.ok and video.frames == 12 and video.verdict.verdict is Verdict.VIOLATION
    assert video.events == 1 and video.violation_frames >= 6
    assert video.annotated_path.suffix == ".mp4" and video.annotated_path.stat().st_size > 0
    assert report.failed == 5 and seen[-1] == 1.0

    conn = st.connect()
    assert conn.execute("SELECT status, station FROM sessions").fetchone()[:] == (
        "finished", "saw-1")
    stored = conn.execute("SELECT COUNT(*) FROM results WHERE session_id=?",
                          (report.session_id,)).fetchone()[0]
    assert stored == 2 + 5 + 12  # two images, five errors, twelve video frames
    events = conn.execute("SELECT source, evidence_path, crop_path, state, duration_s"
                          " FROM events ORDER BY id").fetchall()
    assert [e["source"] for e in events] == [bare_images[0].name, "clip.mp4"]
    assert all(e["state"] == "closed" for e in events)
    assert 1.0 <= events[1]["duration_s"] <= 2.0  # one episode, not a row per frame
    for e in events:  # privacy-safe evidence frame and the offending hand's crop
        assert (gw_home / "evidence").as_posix() in e["evidence_path"]
        assert Path(e["evidence_path"]).exists() and Path(e["crop_path"]).exists()
    watched = conn.execute("SELECT SUM(watched_s) FROM coverage_hourly").fetchone()[0]
    assert 2.0 <= watched <= 3.0  # the video's 2.4 s were watched; photos add no coverage
    assert "broken.mp4: cannot be opened" in by["broken.mp4"].error
    assert all((gw_home / "batch").glob("*/*.jpg"))

    wb = openpyxl.load_workbook(report.table_xlsx)
    ws = wb.active
    header = [c.value for c in ws[3]]
    assert header[:4] == ["file", "frame", "class", "role"]
    assert ws.max_row - 3 == len(report.rows) > 0
    assert report.table_csv.read_text().count("\n") == len(report.rows) + 1


def test_second_batch_keeps_first(gw_home, default_weights, bare_images):
    run_batch([BatchInput.from_path(bare_images[0])], default_weights, InferenceParams())
    run_batch([BatchInput("bad.jpg", data=b"x")], default_weights, InferenceParams())
    conn = st.connect()
    assert conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 2
    assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 1


def test_each_photo_keeps_its_own_evidence(gw_home, default_weights, bare_images):
    run_batch([BatchInput.from_path(p) for p in bare_images[:3]], default_weights,
              InferenceParams())
    conn = st.connect()
    rows = conn.execute("SELECT evidence_path, crop_path FROM events").fetchall()
    assert len(rows) == 3
    assert len({r["evidence_path"] for r in rows}) == 3
    assert len({r["crop_path"] for r in rows}) == 3
