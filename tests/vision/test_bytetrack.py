"""The numpy ByteTrack gives the identities Ultralytics' BYTETracker gives on the same boxes."""

from __future__ import annotations

import numpy as np

from core.vision.bytetrack import ByteTracker
from core.vision.detections import Detections, FrameDetections
from core.vision.roles import Role

NAMES = {0: "glove", 1: "hand"}
ROLES: dict[int, Role] = {}


def _scene(seed: int, frames: int = 120) -> list[np.ndarray]:
    """Rows (x1, y1, x2, y2, conf, cls) per frame: hands moving, crossing, fading, vanishing."""
    rng = np.random.default_rng(seed)
    n = 5
    pos = rng.uniform(50, 500, (n, 2))
    vel = rng.uniform(-6, 6, (n, 2))
    size = rng.uniform(40, 120, (n, 2))
    cls = rng.integers(0, 2, n)
    out = []
    for _ in range(frames):
        pos += vel + rng.normal(0, 1.5, (n, 2))
        conf = np.clip(rng.normal(0.55, 0.25, n), 0.05, 0.99)
        seen = rng.random(n) > 0.15  # dropped detections: lost tracks, re-found later
        xy = np.c_[pos, pos + size * rng.uniform(0.9, 1.1, (n, 2))]
        rows = np.c_[xy, conf, cls][seen]
        out.append(rows[rng.permutation(len(rows))].astype(np.float32))
    return out


def _ultralytics(rows_per_frame: list[np.ndarray]) -> list[list[tuple[int, int]]]:
    from ultralytics.engine.results import Boxes
    from ultralytics.trackers.byte_tracker import BYTETracker
    from ultralytics.utils import YAML, IterableSimpleNamespace
    from ultralytics.utils.checks import check_yaml

    tracker = BYTETracker(IterableSimpleNamespace(**YAML.load(check_yaml("bytetrack.yaml"))))
    seq = []
    for rows in rows_per_frame:
        tracks = np.asarray(tracker.update(Boxes(rows.reshape(-1, 6), (720, 1280)), None))
        seq.append(sorted((int(t[-1]), int(t[4])) for t in tracks) if len(tracks) else [])
    return seq


def _ours(rows_per_frame: list[np.ndarray]) -> list[list[tuple[int, int]]]:
    tracker = ByteTracker()
    seq = []
    for rows in rows_per_frame:
        d = Detections.from_arrays(rows[:, :4], rows[:, 4], rows[:, 5], NAMES, ROLES)
        fd = tracker.update(FrameDetections(d, (720, 1280)))
        det_index = [int(np.flatnonzero((rows[:, :4] == b).all(1))[0]) for b in fd.detections.xyxy]
        assert fd.detections.tracker_id is not None
        seq.append(sorted(zip(det_index, (int(i) for i in fd.detections.tracker_id))))
    return seq


def test_same_identities_as_ultralytics_bytetrack():
    for seed in range(4):
        scene = _scene(seed)
        assert _ours(scene) == _ultralytics(scene), f"seed {seed}"


def test_reset_restarts_ids_and_empty_frames_are_fine():
    scene = _scene(7, frames=10)
    tracker = ByteTracker()
    for rows in scene:
        d = Detections.from_arrays(rows[:, :4], rows[:, 4], rows[:, 5], NAMES, ROLES)
        tracker.update(FrameDetections(d, (720, 1280)))
    empty = tracker.update(FrameDetections(Detections.empty(), (720, 1280))).detections
    assert len(empty) == 0 and empty.tracker_id is not None
    tracker.reset()
    rows = scene[0]
    d = Detections.from_arrays(rows[:, :4], rows[:, 4], rows[:, 5], NAMES, ROLES)
    ids = tracker.update(FrameDetections(d, (720, 1280))).detections.tracker_id
    assert ids is not None and sorted(ids) == list(range(1, len(ids) + 1))
