"""ByteTrack on numpy arrays, without torch: the association Ultralytics runs, rewritten small.

Ultralytics' ``BYTETracker`` cannot be imported without importing torch (its package imports
its models), so the OpenVINO runtime path tracks with this one. It follows Ultralytics 8.4's
algorithm and ``bytetrack.yaml`` defaults step by step (Kalman filter on centre, aspect,
height; high-score matching with IoU fused with the score, then low-score matching, then the
unconfirmed tracks; a new track is confirmed by a second frame; lost tracks kept for
``track_buffer`` frames), so identities agree with the Ultralytics path on the same boxes
(measured in ``docs/speed.md``). Assignment is ``lap.lapjv``, as there.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.vision.detections import FrameDetections, box_iou

_W_POS, _W_VEL = 1 / 20, 1 / 160
_F = np.eye(8)
_F[:4, 4:] = np.eye(4)


@dataclass(frozen=True)
class ByteTrackConfig:
    """Ultralytics' ``bytetrack.yaml`` defaults."""

    track_high_thresh: float = 0.25
    track_low_thresh: float = 0.1
    new_track_thresh: float = 0.25
    track_buffer: int = 30
    match_thresh: float = 0.8
    fuse_score: bool = True


def _xyah(xyxy: np.ndarray) -> np.ndarray:
    w, h = xyxy[2] - xyxy[0], xyxy[3] - xyxy[1]
    return np.array([xyxy[0] + w / 2, xyxy[1] + h / 2, w / h, h], np.float64)


class _Track:
    """One tracklet: Kalman state (x, y, aspect, h and their velocities) and bookkeeping."""

    def __init__(self, xyxy: np.ndarray, score: float, cls: int, idx: int):
        self.det_xyxy, self.score, self.cls, self.idx = xyxy, score, cls, idx
        self.mean: np.ndarray | None = None
        self.cov = np.zeros((8, 8))
        self.track_id, self.state, self.activated = 0, "new", False
        self.frame_id = self.start_frame = 0

    @property
    def xyxy(self) -> np.ndarray:
        if self.mean is None:
            return self.det_xyxy
        x, y, a, h = self.mean[:4]
        w = a * h
        return np.array([x - w / 2, y - h / 2, x + w / 2, y + h / 2])

    def activate(self, track_id: int, frame_id: int) -> None:
        m = _xyah(self.det_xyxy)
        h = m[3]
        self.mean = np.r_[m, np.zeros(4)]
        std = np.array([2 * _W_POS * h, 2 * _W_POS * h, 1e-2, 2 * _W_POS * h])
        std = np.r_[std, 10 * _W_VEL * h, 10 * _W_VEL * h, 1e-5, 10 * _W_VEL * h]
        self.cov = np.diag(std**2)
        self.track_id, self.state = track_id, "tracked"
        self.activated = frame_id == 1
        self.frame_id = self.start_frame = frame_id

    def update(self, det: _Track, frame_id: int) -> None:
        assert self.mean is not None
        h = self.mean[3]
        r = np.diag(np.array([_W_POS * h, _W_POS * h, 1e-1, _W_POS * h]) ** 2)
        s = self.cov[:4, :4] + r
        gain = np.linalg.solve(s, self.cov[:4, :]).T  # (8, 4): P H^T S^-1
        self.mean = self.mean + gain @ (_xyah(det.det_xyxy) - self.mean[:4])
        self.cov = self.cov - gain @ s @ gain.T
        self.state, self.activated, self.frame_id = "tracked", True, frame_id
        self.score, self.cls, self.idx = det.score, det.cls, det.idx


def _predict(tracks: list[_Track]) -> None:
    """One Kalman prediction step for all ``tracks`` at once."""
    if not tracks:
        return
    mean = np.array([t.mean for t in tracks])
    cov = np.array([t.cov for t in tracks])
    mean[[t.state != "tracked" for t in tracks], 7] = 0
    h = mean[:, 3]
    std = np.stack(
        [_W_POS * h, _W_POS * h, np.full_like(h, 1e-2), _W_POS * h]
        + [_W_VEL * h, _W_VEL * h, np.full_like(h, 1e-5), _W_VEL * h],
        1,
    )
    mean = mean @ _F.T
    cov = _F @ cov @ _F.T + np.einsum("ni,ij->nij", std**2, np.eye(8))
    for t, m, c in zip(tracks, mean, cov):
        t.mean, t.cov = m, c


def _iou_cost(a: list[_Track], b: list[_Track], fuse: bool = False) -> np.ndarray:
    if not a or not b:
        return np.zeros((len(a), len(b)))
    iou = box_iou(np.array([t.xyxy for t in a]), np.array([t.xyxy for t in b]))
    if fuse:
        iou = iou * np.array([t.score for t in b])[None, :]
    return 1 - iou


def _assign(cost: np.ndarray, thresh: float) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Matches, unmatched rows and unmatched columns with cost below ``thresh`` (lapjv)."""
    import lap

    if cost.size == 0:
        return [], list(range(cost.shape[0])), list(range(cost.shape[1]))
    _, x, y = lap.lapjv(cost, extend_cost=True, cost_limit=thresh)
    matches = [(i, int(j)) for i, j in enumerate(x) if j >= 0]
    return matches, [i for i, j in enumerate(x) if j < 0], [j for j, i in enumerate(y) if i < 0]


class ByteTracker:
    """Track ids for the detections of consecutive frames of one video, stream or camera."""

    def __init__(self, cfg: ByteTrackConfig | None = None, frame_rate: int = 30):
        self.cfg = cfg or ByteTrackConfig()
        self.max_lost = max(1, round(self.cfg.track_buffer * frame_rate / 30))
        self.reset()

    def reset(self) -> None:
        """Forget all tracks and restart ids at 1."""
        self.tracked: list[_Track] = []
        self.lost: list[_Track] = []
        self.frame_id, self._next_id = 0, 0

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def update(self, frame: FrameDetections) -> FrameDetections:
        """``frame`` with track ids; unconfirmed new tracks are left out, as in Ultralytics."""
        c, d = self.cfg, frame.detections
        self.frame_id += 1
        w, h = d.xyxy[:, 2] - d.xyxy[:, 0], d.xyxy[:, 3] - d.xyxy[:, 1]
        valid = (w > 0) & (h > 0)
        dets = [
            _Track(d.xyxy[i].astype(np.float64), float(d.confidence[i]), int(d.class_id[i]), i)
            for i in range(len(d))
        ]
        high = [t for t, ok in zip(dets, valid) if ok and t.score >= c.track_high_thresh]
        low = [
            t
            for t, ok in zip(dets, valid)
            if ok and c.track_low_thresh < t.score < c.track_high_thresh
        ]
        unconfirmed = [t for t in self.tracked if not t.activated]
        pool = [t for t in self.tracked if t.activated]
        pool += [t for t in self.lost if t not in pool]
        _predict(pool)
        activated: list[_Track] = []
        matches, u_track, u_det = _assign(_iou_cost(pool, high, c.fuse_score), c.match_thresh)
        for i, j in matches:
            pool[i].update(high[j], self.frame_id)
            activated.append(pool[i])
        remain = [pool[i] for i in u_track if pool[i].state == "tracked"]
        matches, u_remain, _ = _assign(_iou_cost(remain, low), 0.5)
        for i, j in matches:
            remain[i].update(low[j], self.frame_id)
            activated.append(remain[i])
        newly_lost = [remain[i] for i in u_remain]
        for t in newly_lost:
            t.state = "lost"
        left = [high[j] for j in u_det]
        matches, u_unconf, u_det = _assign(_iou_cost(unconfirmed, left, c.fuse_score), 0.7)
        for i, j in matches:
            unconfirmed[i].update(left[j], self.frame_id)
            activated.append(unconfirmed[i])
        removed = {id(unconfirmed[i]) for i in u_unconf}
        for j in u_det:
            if left[j].score >= c.new_track_thresh:
                left[j].activate(self._new_id(), self.frame_id)
                activated.append(left[j])
        self._merge(activated, newly_lost, removed)
        out = [t for t in self.tracked if t.activated]
        kept = d[np.array([t.idx for t in out], np.int64)]
        ids = np.array([t.track_id for t in out], np.int64)
        return FrameDetections(kept.with_tracker_ids(ids), frame.shape, frame.inference_ms)

    def _merge(self, activated: list[_Track], newly_lost: list[_Track], removed: set[int]) -> None:
        tracked = [t for t in self.tracked if t.state == "tracked" and id(t) not in removed]
        tracked += [t for t in activated if t not in tracked]
        lost = [t for t in self.lost if t not in tracked] + newly_lost
        lost = [t for t in lost if self.frame_id - t.frame_id <= self.max_lost]
        # a lost track and a tracked one on the same spot: keep the longer-lived
        cost = _iou_cost(tracked, lost)
        drop_t, drop_l = set(), set()
        age = [t.frame_id - t.start_frame for t in tracked]
        for p, q in zip(*np.nonzero(cost < 0.15)):
            if age[p] > lost[q].frame_id - lost[q].start_frame:
                drop_l.add(q)
            else:
                drop_t.add(p)
        self.tracked = [t for i, t in enumerate(tracked) if i not in drop_t]
        self.lost = [t for i, t in enumerate(lost) if i not in drop_l]
