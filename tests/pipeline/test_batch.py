"""Batch detection with the shipped model on real images and videos, judged by station rules,
written to a real store, annotated files and a results workbook."""

from __future__ import annotations

import random
import zipfile
from pathlib import Path

import cv2
import numpy as np
import openpyxl
import pytest

from core.config import DEFAULTS
from core.events.rules import Polarity, StationRule, Verdict
from core.events.stations import save_rule
from core.media import iter_video, read_image, write_image
from core.pipeline.batch import BatchInput, BatchProgress, run_batch
from core.vision.detector import InferenceParams
from tests.helpers import make_video
from tests.pipeline.support import (
    coverage_totals,
    events,
    png_bomb,
    png_bytes,
    result_rows,
    session_params,
    session_row,
)


def _run(store, weights, inputs, params, **kw):
    kw.setdefault("backend", "pytorch")
    return run_batch(inputs, weights, params, store=store, **kw)


def test_no_gloves_station_judges_a_glove_as_the_violation(
    store, default_weights, clean_gloved, bare_images, fast_params
):
    """At a 'no gloves' station (rotating spindle) a gloved hand is the violation and a bare
    hand is compliant; the same photos at a gloves-required station judge the other way."""
    save_rule(store, StationRule("Lathe 2", Polarity.NO_GLOVES))
    photos = [BatchInput.from_path(clean_gloved[0]), BatchInput.from_path(bare_images[0])]
    lathe = _run(store, default_weights, photos, fast_params, station="Lathe 2")
    by = {f.name: f for f in lathe.files}
    gloved, bare = by[clean_gloved[0].name], by[bare_images[0].name]
    assert gloved.verdict is Verdict.VIOLATION and gloved.violating >= 1
    assert bare.verdict is Verdict.COMPLIANT and bare.compliant == 1 and bare.violating == 0
    assert {r.status for r in gloved.rows} == {"violating"}
    assert {r.status for r in bare.rows} == {"compliant"}
    assert "no gloves" in lathe.rule
    (episode,) = [e for e in events(store) if e.session_id == lathe.session_id]
    assert episode.source == clean_gloved[0].name and "no-gloves station" in episode.reason
    assert episode.rule_version == 1

    saw = _run(store, default_weights, photos, fast_params, station="Saw 1")
    by = {f.name: f for f in saw.files}
    assert by[clean_gloved[0].name].verdict is Verdict.COMPLIANT
    assert by[bare_images[0].name].verdict is Verdict.VIOLATION


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_bad_files_get_error_rows_and_the_rest_go_on(
    store, gw_home, default_weights, bare_images, fast_params
):
    """Every unusable file becomes an error row with a clear reason; the good photo after
    them is still judged; progress comes with an estimate of the time left."""
    good = bare_images[0].read_bytes()
    inputs = [
        BatchInput("dot.png", data=png_bytes(1, 1)),
        BatchInput("bomb.png", data=png_bomb()),
        BatchInput("notes.jpg", data=b"just some text, not a picture\n"),
        BatchInput("cut.jpg", data=good[: len(good) // 2]),
        BatchInput("empty.png", data=b""),
        BatchInput("readme.txt", data=b"hello"),
        BatchInput("broken.mp4", data=b"\x00" * 64),
        BatchInput.from_path(bare_images[0]),
    ]
    seen: list[BatchProgress] = []
    report = _run(store, default_weights, inputs, fast_params, progress=seen.append)
    by = {f.name: f for f in report.files}
    assert "too small" in by["dot.png"].error
    assert "too large" in by["bomb.png"].error or "too many pixels" in by["bomb.png"].error
    assert "not an image" in by["notes.jpg"].error
    assert "truncated" in by["cut.jpg"].error
    assert "empty" in by["empty.png"].error
    assert "unsupported file type" in by["readme.txt"].error
    assert "broken.mp4: cannot be opened" in by["broken.mp4"].error
    assert report.failed == 7
    photo = by[bare_images[0].name]
    assert photo.ok and photo.verdict is Verdict.VIOLATION

    stored = result_rows(store, report.session_id)
    assert len(stored) == 8
    errors = {r.source: r.error for r in stored if r.error}
    assert set(errors) == set(by) - {bare_images[0].name}
    assert session_row(store, report.session_id).status == "finished"
    assert not list((gw_home / "batch").rglob("bomb*.jpg"))  # nothing was drawn for it

    assert all(isinstance(p, BatchProgress) for p in seen)
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert seen[-1].remaining_s == 0.0
    estimates = [p for p in seen[1:-1] if p.remaining_s is not None]
    assert estimates, "no progress update carried a remaining-time estimate"
    assert all(p.remaining_s >= 0 for p in estimates)
    assert "left" in estimates[0].text and "of 8" in estimates[0].message


def test_same_stem_uploads_get_their_own_annotated_files(
    store, default_weights, bare_images, clean_gloved, fast_params
):
    """``ok.jpg`` and ``ok.png`` in one batch: two annotated files, each result row and each
    file result pointing at its own picture."""
    png = cv2.imencode(".png", read_image(clean_gloved[0]))[1].tobytes()
    inputs = [
        BatchInput("ok.jpg", data=bare_images[0].read_bytes()),
        BatchInput("ok.png", data=png),
    ]
    report = _run(store, default_weights, inputs, fast_params)
    jpg, pngres = report.files
    assert jpg.annotated_path != pngres.annotated_path
    assert jpg.annotated_path.is_file() and pngres.annotated_path.is_file()
    stored = {r.source: r.annotated_path for r in result_rows(store, report.session_id)}
    assert stored == {"ok.jpg": str(jpg.annotated_path), "ok.png": str(pngres.annotated_path)}

    def distance(annotated: Path, source: Path) -> float:
        a = read_image(annotated).astype(np.float32)
        b = cv2.resize(read_image(source), (a.shape[1], a.shape[0])).astype(np.float32)
        return float(np.abs(a - b).mean())

    # each annotated file shows its own photo (boxes drawn over it), not the other one
    assert distance(jpg.annotated_path, bare_images[0]) < distance(
        jpg.annotated_path, clean_gloved[0]
    )
    assert distance(pngres.annotated_path, clean_gloved[0]) < distance(
        pngres.annotated_path, bare_images[0]
    )


def test_results_workbook_sheets_and_formula_like_names_stay_text(
    store, default_weights, bare_images, fast_params
):
    """results.xlsx holds Summary, Verdicts and Detections; a file name starting with '=' is
    stored as text, never as a formula (in the workbook and the CSV)."""
    evil = '=HYPERLINK("http://evil.example","x").jpg'
    report = _run(
        store,
        default_weights,
        [BatchInput(evil, data=bare_images[0].read_bytes())],
        fast_params,
        station="Saw 01",
    )
    wb = openpyxl.load_workbook(report.table_xlsx)
    assert wb.sheetnames == ["Summary", "Verdicts", "Detections"]
    summary = {r[0]: r[1] for r in wb["Summary"].iter_rows(min_row=4, values_only=True)}
    assert summary["Station"] == "Saw 01" and summary["Files"] == 1
    assert summary["Files with a violation"] == 1
    verdicts = wb["Verdicts"]
    header = [c.value for c in verdicts[3]]
    assert header[:3] == ["file", "kind", "verdict"] and header[-1] == "what was counted"
    row = verdicts[4]
    assert row[0].value == evil and row[0].data_type == "s"
    assert row[2].value == "violation" and "violating hand" in row[-1].value
    det = wb["Detections"]
    assert det.max_row - 3 == len(report.rows) >= 1
    assert all(det.cell(row=r, column=1).data_type == "s" for r in range(4, det.max_row + 1))
    with zipfile.ZipFile(report.table_xlsx) as zf:
        sheets = [n for n in zf.namelist() if n.startswith("xl/worksheets/sheet")]
        assert sheets and not any("<f>" in zf.read(n).decode() for n in sheets)
    csv_text = report.table_csv.read_text()
    assert "'=HYPERLINK" in csv_text and "\n=HYPERLINK" not in csv_text


def test_second_batch_keeps_the_first_and_each_photo_keeps_its_evidence(
    store, gw_home, default_weights, bare_images, fast_params
):
    first = _run(
        store, default_weights, [BatchInput.from_path(p) for p in bare_images[:3]], fast_params
    )
    second = _run(store, default_weights, [BatchInput("bad.jpg", data=b"x")], fast_params)
    assert second.session_id != first.session_id and second.failed == 1
    stored = events(store)
    assert len(stored) == 3 and {e.session_id for e in stored} == {first.session_id}
    assert len({e.evidence_path for e in stored}) == 3
    assert len({e.crop_path for e in stored}) == 3
    for e in stored:  # privacy-safe evidence frame and the offending hand's crop, kept
        assert Path(e.evidence_path).is_file() and Path(e.crop_path).is_file()
        assert Path(e.evidence_path).is_relative_to(gw_home / "evidence")
        assert e.state == "closed"
    assert session_row(store, first.session_id).status == "finished"


@pytest.mark.slow
def test_default_backend_is_openvino_for_photos_and_videos(
    store, default_weights, bare_images, fast_params, openvino_ready, tmp_path
):
    """Without a backend argument a batch runs on OpenVINO, videos included; a chosen
    backend is what the session records."""
    clip = make_video(tmp_path / "short.mp4", bare_images[:2], repeat=2, size=(320, 240))
    inputs = [BatchInput.from_path(bare_images[0]), BatchInput.from_path(clip)]
    report = run_batch(inputs, default_weights, fast_params, store=store)
    assert DEFAULTS.backend == "openvino"
    assert session_params(store, report.session_id)["backend"] == "openvino"
    photo, video = report.files
    assert photo.ok and photo.verdict is Verdict.VIOLATION
    assert video.ok and video.frames == 4 and video.kind == "video"
    torch_run = run_batch(
        [BatchInput.from_path(clip)], default_weights, fast_params, backend="pytorch", store=store
    )
    assert session_params(store, torch_run.session_id)["backend"] == "pytorch"
    assert torch_run.files[0].ok and torch_run.files[0].frames == 4


@pytest.mark.slow
def test_images_bad_files_and_a_video_in_one_session(
    store, gw_home, default_weights, bare_images, clean_gloved, tmp_path
):
    """The whole batch story: photos, broken files and a video; episodes with evidence,
    coverage for the video only, a verdict per file that says what it counted."""
    params = InferenceParams(imgsz=320)
    # 1.6 s of one bare hand (an episode needs 1 s), then 0.8 s of gloved hands
    clip = make_video(tmp_path / "clip.mp4", bare_images[:1] * 4 + clean_gloved[:2])
    inputs = [
        BatchInput.from_path(bare_images[0]),
        BatchInput(clean_gloved[0].name, data=clean_gloved[0].read_bytes()),
        BatchInput("notes.jpg", data=b"just text"),
        BatchInput.from_path(clip),
    ]
    report = _run(store, default_weights, inputs, params, station="saw-1")
    by = {f.name: f for f in report.files}
    assert by[bare_images[0].name].verdict is Verdict.VIOLATION
    assert by[clean_gloved[0].name].verdict is Verdict.COMPLIANT
    video = by["clip.mp4"]
    assert video.ok and video.frames == 12 and video.verdict is Verdict.VIOLATION
    assert video.episodes == 1 and 6 <= video.violation_frames <= 9
    text = video.describe()
    assert "1 violation episode" in text and f"{video.violation_frames} of 12 frames" in text
    assert video.annotated_path.suffix == ".mp4"
    assert sum(1 for _ in iter_video(video.annotated_path)) == 12  # playable, every frame

    stored = result_rows(store, report.session_id)
    assert len(stored) == 2 + 1 + 12  # two photos, one error, twelve video frames
    episodes = [e for e in events(store) if e.session_id == report.session_id]
    assert [e.source for e in episodes] == [bare_images[0].name, "clip.mp4"]
    assert all(e.state == "closed" and e.station == "saw-1" for e in episodes)
    assert 1.0 <= episodes[1].duration_s <= 2.0  # one episode, not a row per frame
    for e in episodes:
        assert Path(e.evidence_path).is_relative_to(gw_home / "evidence")
        assert Path(e.evidence_path).is_file() and Path(e.crop_path).is_file()
    watched, _, violating = coverage_totals(store, "saw-1")
    assert 2.0 <= watched <= 3.0 and violating > 0  # the video's 2.4 s; photos add none

    wb = openpyxl.load_workbook(report.table_xlsx)
    rows = {r[0]: r for r in wb["Verdicts"].iter_rows(min_row=4, values_only=True)}
    counted = rows["clip.mp4"][-1]
    assert "episode" in counted and "frames" in counted and counted == text
    assert rows["notes.jpg"][2] == "error" and "not an image" in rows["notes.jpg"][-1]
    assert report.table_csv.read_text().count("\n") == len(report.rows) + 1


@pytest.fixture(scope="module")
def wide_photo(tmp_path_factory, bare_images) -> Path:
    """One bare-hand close-up shrunk to 1/7 in a grey 1920x1080 frame (hand ~50 px): too
    small for a full-frame pass at 640, found by 640 px tiles."""
    from core.training.wideview import CompositeSpec, compose
    from core.vision.yolo_data import read_split
    from tests.conftest import MINI

    item = next(it for it in read_split(MINI, "test") if it.image == bare_images[5])
    canvas, _ = compose(
        np.full((1080, 1920, 3), 110, np.uint8),
        [(read_image(item.image), item.boxes)],
        random.Random(1),
        CompositeSpec(min_scale=0.14, max_scale=0.14),
    )
    return write_image(tmp_path_factory.mktemp("wide") / "wide.jpg", canvas)


@pytest.mark.slow
def test_station_tiles_reach_batch_detection(store, default_weights, wide_photo):
    """A station set to tiled inference finds the small bare hand in a wide photo; the
    default station (full frame) does not."""
    save_rule(store, StationRule("Wide cam", tiles="640:0.25"))
    params = InferenceParams()
    plain = _run(store, default_weights, [BatchInput.from_path(wide_photo)], params)
    tiled = _run(
        store, default_weights, [BatchInput.from_path(wide_photo)], params, station="Wide cam"
    )
    assert plain.files[0].violating == 0
    assert tiled.files[0].verdict is Verdict.VIOLATION and tiled.files[0].violating >= 1
    assert session_params(store, tiled.session_id)["tiles"] == "640:0.25:nms:full"
    assert session_params(store, plain.session_id)["tiles"] is None
