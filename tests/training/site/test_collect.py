"""Collecting a station's frames: near-copies, pre-labels, the live sampler."""

from __future__ import annotations

import pytest

from core.media import read_image
from core.training import site
from core.vision.detections import FrameDetections
from tests.training.site.dets import dets


def test_collect_skips_near_copies_and_records_prelabels(store, gloved_images):
    image = read_image(gloved_images[0])
    first = site.collect(
        store,
        "Saw 2",
        image,
        "batch",
        "2026-11-01 10:00:00",
        dets=dets([0.6], [0]),
        model="m.pt",
        by="ana",
    )
    assert first is not None
    assert site.collect(store, "Saw 2", image.copy(), "batch", "2026-11-01 10:05:00") is None
    fr = site.frames(store, "Saw 2")[0]
    assert fr.path.is_file() and fr.record.status == "prelabelled"
    assert fr.record.boxes[0]["class_id"] == 0 and 0 < fr.record.boxes[0]["x2"] <= 1
    hist = store.site.history(fr.id)
    assert [(h.by, h.action) for h in hist] == [("ana", "prelabel")]


def test_live_collector_keeps_the_most_uncertain_frame_of_each_window(
    store, gloved_images, bare_images
):
    c = site.LiveCollector(store, "Saw 3", every_s=2.0, conf=0.25, model="m.pt")
    sure, unsure = read_image(gloved_images[1]), read_image(bare_images[1])
    c.offer(0.0, sure, FrameDetections(dets([0.95], [0]), sure.shape[:2]))
    c.offer(0.5, unsure, FrameDetections(dets([0.3], [1]), unsure.shape[:2]))
    c.offer(1.0, sure, FrameDetections(dets([0.9], [0]), sure.shape[:2]))
    c.offer(2.1, sure, FrameDetections(dets([0.9], [0]), sure.shape[:2]))  # window ends
    frames = site.frames(store, "Saw 3")
    assert c.collected == 1 and len(frames) == 1
    assert site.hamming(frames[0].record.phash, site.dhash(unsure)) < site.MIN_HAMMING


def test_a_track_that_flips_class_is_collected(store, gloved_images):
    c = site.LiveCollector(store, "Saw 4", every_s=1.0, conf=0.25, model="m.pt")
    img = read_image(gloved_images[2])
    c.offer(0.0, img, FrameDetections(dets([0.95], [0], [7]), img.shape[:2]))
    c.offer(0.5, img, FrameDetections(dets([0.95], [1], [7]), img.shape[:2]))
    c.offer(1.2, img, FrameDetections(dets([0.95], [1], [7]), img.shape[:2]))
    assert site.frames(store, "Saw 4")[0].record.uncertainty == 1.0


@pytest.mark.slow
def test_a_live_session_samples_the_station_through_its_frame_tap(
    store, default_weights, bare_images
):
    """The Live page's choice: a SiteTap on a live session collects frames, pre-labelled by
    the session's model, without the pipeline importing the training package."""
    from core.pipeline.live import FrameProcessor, LiveConfig
    from core.vision.detector import InferenceParams

    tap = site.SiteTap("Saw 9", every_s=0.001, conf=0.25, by="ana")
    assert tap == site.SiteTap("Saw 9", 0.001, 0.25, "ana")  # a page's unchanged choice
    proc = FrameProcessor(
        LiveConfig(
            weights=default_weights,
            backend="pytorch",
            params=InferenceParams(imgsz=320),
            station="Saw 9",
            kind="file",
            source="clip.mp4",
            tap=tap,
        )
    )
    assert proc.start()
    try:
        for i, p in enumerate(bare_images[:4]):
            proc.process(read_image(p), t=float(i))
    finally:
        proc.finish()
    frames = site.frames(store, "Saw 9")
    assert frames and all(f.record.source == "live" for f in frames)
    assert all(f.record.status == "prelabelled" and f.record.updated_by == "ana" for f in frames)
    assert frames[0].record.prelabel_model == default_weights.name


def test_a_report_counts_another_collections_frames_and_errors():
    """How the CLI and the uploads add up their collections (errors included)."""
    total = site.CollectReport(1, 2, ["a.jpg cannot be read."])
    total.add(site.CollectReport(3, 0, ["b.mp4 cannot be read."]))
    assert (total.added, total.near_copies) == (4, 2)
    assert total.errors == ["a.jpg cannot be read.", "b.mp4 cannot be read."]


@pytest.mark.slow
def test_uploads_collect_photos_and_videos_and_say_what_could_not_be_read(
    store, gw_home, bare_images, gloved_images, tmp_path, default_weights
):
    """The Label page's uploads: a photo, a video (one frame every 2 s, through a temporary
    copy that is removed), and a file that is not a picture (one error, the rest goes on)."""
    from tests.helpers import make_video

    clip = make_video(tmp_path / "saw.mp4", [gloved_images[1], bare_images[2]], repeat=10, fps=5)
    uploads = [
        (bare_images[0].name, bare_images[0].read_bytes()),
        ("notes.jpg", b"plain text, not a picture"),
        ("saw.mp4", clip.read_bytes()),
    ]
    tmp = tmp_path / "uploads"
    tmp.mkdir()
    rep = site.collect_uploads(store, "Saw 10", uploads, 2.0, tmp, by="ana")
    assert len(rep.errors) == 1 and rep.errors[0].startswith("notes.jpg"), rep.errors
    sources = sorted(f.record.source for f in site.frames(store, "Saw 10"))
    assert rep.added == len(sources) and sources == ["batch", "video", "video"]
    assert not list(tmp.iterdir())  # the video's temporary copy is gone


def test_reviewed_evidence_is_read_only_inside_the_evidence_store(store, gloved_images):
    """An episode row whose evidence path leaves the evidence folder (``..``, or a symlink
    inside it pointing out) is refused with a sentence, and that image is not collected; the
    episode whose frame lies inside is collected with its saved detections as pre-labels."""
    import json

    from core.config import settings
    from core.storage.events import EventRow
    from core.training.site.frames import dhash

    evidence = settings().evidence_dir / "2026-11-02"
    evidence.mkdir(parents=True)
    inside = evidence / "inside.jpg"
    inside.write_bytes(gloved_images[0].read_bytes())
    box = {"class_id": 0, "role": "protected", "box": [10, 10, 60, 60]}
    inside.with_suffix(".json").write_text(json.dumps({"detections": [box]}))
    secret = settings().home / "secret.jpg"  # beside the evidence folder, in the data folder
    secret.write_bytes(gloved_images[1].read_bytes())
    linked = evidence / "linked.jpg"
    linked.symlink_to(gloved_images[2])  # inside by name, outside once resolved
    paths = {
        "inside": inside,
        "dotdot": settings().evidence_dir / ".." / "secret.jpg",
        "symlink": linked,
    }
    ids = {}
    for minute, (what, path) in enumerate(paths.items()):
        row = EventRow("Saw 3", f"2026-11-02 10:0{minute}:00", evidence_path=str(path))
        ids[what] = store.events.insert(row)
        store.events.set_review(ids[what], "confirmed", None, "ana")
    rep = site.collect_reviewed(store, "Saw 3", by="ana")
    assert rep.added == 1 and rep.near_copies == 0
    assert sorted(rep.errors) == sorted(
        f"Episode #{ids[what]}: its evidence frame is not in the evidence store, "
        "so it was not collected."
        for what in ("dotdot", "symlink")
    )
    assert all(str(settings().home) not in e for e in rep.errors)  # no server paths
    (fr,) = site.frames(store, "Saw 3")
    assert fr.record.source == "episode" and fr.record.boxes[0]["class_id"] == 0
    assert fr.record.phash == dhash(read_image(inside))  # the frame inside, no other
