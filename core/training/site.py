"""The on-site adaptation loop: a station's own frames, labelled, fine-tuned on, compared,
promoted for that station.

1. **Collect** frames per station: from a live source (the most uncertain frame of every few
   seconds: confidences near the threshold, tracks whose class flips), from batch uploads and
   videos, and from reviewed episodes' evidence. Near-copies are skipped by a 64-bit
   difference hash.
2. **Pre-label** with the station's active model; **correct** on the Label page; every label
   change is kept with who and when.
3. **Hold out honestly**: frames are grouped in time blocks (``BLOCK_MINUTES``); every
   ``HOLDOUT_EVERY``-th block of a station, in the order they appear, is held out, never at
   random (neighbouring frames are near-copies), and the held-out frames are never trained
   on.
4. **Fine-tune** from the station's active model on its labelled train frames plus a replay
   sample of the base data set, with a backbone freeze and CPU-sized defaults; the time is
   estimated before it starts.
5. **Compare and promote** per station: both models on the station's held-out frames and on
   the base test split; a drop of more than ``MAX_BASE_DROP`` mAP50 on the base test split
   needs an explicit confirmation.

Boxes are stored as ``{"class_id", "x1", "y1", "x2", "y2"}`` in 0..1 of the image.
"""

from __future__ import annotations

import logging
import random
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from core.config import ensure_home, settings
from core.errors import DatasetError, MediaError, RegistryError, TrainingError
from core.media import iter_video, open_video, read_image, write_image
from core.storage import Store, now
from core.storage.site import FrameRecord, StationCounts
from core.text import slug
from core.training import registry, runs
from core.vision.detections import Detections, FrameDetections
from core.vision.detector import DETECTORS, InferenceParams
from core.vision.evaluate import EvalResult, evaluate
from core.vision.yolo_data import images_in, label_path, read_labels, read_layout

log = logging.getLogger(__name__)

BLOCK_MINUTES = 30
HOLDOUT_EVERY = 5  # every 5th time block is held out (20 % of a station's time)
MIN_HAMMING = 6  # hashes closer than this are near-copies
CLUSTER_HAMMING = 14  # photos without a capture time this alike share a hold-out block
MAX_BASE_DROP = 0.02  # mAP50 on the base test split a station model may lose unconfirmed
_TS = "%Y-%m-%d %H:%M:%S"

Box = dict[str, float]


# ---------------------------------------------------------------------------- frames


def dhash(image: np.ndarray) -> str:
    """64-bit difference hash of an image (hex): near-copies differ in a few bits."""
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    small = cv2.resize(grey, (9, 8), interpolation=cv2.INTER_AREA)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return f"{int(''.join('1' if b else '0' for b in bits), 2):016x}"


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def block_of(captured_at: str) -> int:
    """The time block of a capture time ('YYYY-MM-DD HH:MM:SS')."""
    t = datetime.strptime(captured_at, _TS)
    return int(t.timestamp() // 60) // BLOCK_MINUTES


def split_for(store: Store, station: str, block: int) -> str:
    """The side of a block: the one it already has, else every ``HOLDOUT_EVERY``-th new block
    of the station (in the order they appear) is held out. Blocks are 30-minute spans of
    capture time, or clusters of look-alike photos that carry no time."""
    known = store.site.block_splits(station)
    if block in known:
        return known[block]
    return "holdout" if (len(known) + 1) % HOLDOUT_EVERY == 0 else "train"


def uncertainty(dets: Detections, conf: float) -> float:
    """How unsure the model is about a frame, 0..1: 1 when a hand's confidence sits right at
    the threshold, 0 when every hand is far above it (or there is none)."""
    hands = dets[dets.hands]
    if not len(hands):
        return 0.0
    margin = np.clip((hands.confidence - conf) / 0.5, 0.0, 1.0)
    return float(1.0 - margin.min())


def boxes_of(dets: Detections, shape: tuple[int, int]) -> list[Box]:
    """Detections as stored boxes (normalized corners)."""
    h, w = shape
    return [
        {
            "class_id": int(c),
            "x1": round(float(x1) / w, 5),
            "y1": round(float(y1) / h, 5),
            "x2": round(float(x2) / w, 5),
            "y2": round(float(y2) / h, 5),
        }
        for c, (x1, y1, x2, y2) in zip(dets.class_id, dets.xyxy)
    ]


def check_boxes(boxes: Iterable[dict[str, Any]], classes: int) -> list[Box]:
    """Validated, clipped boxes (at least 2 px of a 640 image; known classes)."""
    out = []
    for b in boxes:
        try:
            cid = int(b["class_id"])
            x1, x2 = sorted((float(b["x1"]), float(b["x2"])))
            y1, y2 = sorted((float(b["y1"]), float(b["y2"])))
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"Not a box: {b!r}.") from exc
        if not 0 <= cid < classes:
            raise DatasetError(f"Class id {cid} is not one of the {classes} classes.")
        x1, y1, x2, y2 = (min(1.0, max(0.0, v)) for v in (x1, y1, x2, y2))
        if x2 - x1 >= 0.003 and y2 - y1 >= 0.003:
            out.append(
                {
                    "class_id": cid,
                    "x1": round(x1, 5),
                    "y1": round(y1, 5),
                    "x2": round(x2, 5),
                    "y2": round(y2, 5),
                }
            )
    return out


@dataclass(frozen=True)
class SiteFrame:
    """A collected frame with its image path."""

    record: FrameRecord
    path: Path

    @property
    def id(self) -> int:
        return self.record.id


def site_dir(station: str) -> Path:
    return ensure_home().home / "site" / slug(station, 60, "station")


def frame_path(rec: FrameRecord) -> Path:
    return settings().home / rec.file


def _untimed_block(store: Store, station: str, h: str) -> int:
    """A block for a photo without a capture time: its cluster of look-alikes (negative, so
    it never meets a time block). Similar photos share a cluster and so a side of the split."""
    clusters = store.site.untimed_blocks(station)
    for other, block in clusters:
        if hamming(h, other) <= CLUSTER_HAMMING:
            return block
    return -(len({b for _, b in clusters}) + 1)


def collect(
    store: Store,
    station: str,
    image: np.ndarray,
    source: str,
    captured_at: str | None = None,
    dets: Detections | None = None,
    conf: float = 0.25,
    model: str | None = None,
    by: str = "-",
    score: float | None = None,
    split: str | None = None,
) -> int | None:
    """Add a frame to the station's site data set; None when it is a near-copy of one
    already there. With ``dets`` (the model's detections) it arrives pre-labelled. The
    hold-out follows the capture time's block unless ``split`` is given (a source that comes
    with its own split, e.g. an imported data set)."""
    timed = captured_at is not None
    captured_at = captured_at or now()
    h = dhash(image)
    if any(hamming(h, other) < MIN_HAMMING for other in store.site.recent_hashes(station)):
        return None
    folder = site_dir(station) / "images"
    name = f"{captured_at.replace(' ', 'T').replace(':', '')}-{h[:10]}.jpg"
    path = write_image(folder / name, image)
    boxes = boxes_of(dets, image.shape[:2]) if dets is not None else None
    block = block_of(captured_at) if timed else _untimed_block(store, station, h)
    return store.site.add(
        station,
        str(path.relative_to(settings().home)),
        source,
        captured_at,
        h,
        score if score is not None else (uncertainty(dets, conf) if dets is not None else 0.0),
        block,
        split or split_for(store, station, block),
        boxes,
        "prelabelled" if boxes is not None else "new",
        model,
        by,
    )


class LiveCollector:
    """Samples a live source for the site data set: per window of ``every_s`` seconds it keeps
    the most uncertain frame (a track whose class flips counts as very uncertain) and
    collects it when the window ends."""

    def __init__(
        self, store: Store, station: str, every_s: float, conf: float, model: str, by: str = "live"
    ):
        self.store, self.station, self.every_s = store, station, every_s
        self.conf, self.model, self.by = conf, model, by
        self._window_end: float | None = None
        self._best: tuple[float, np.ndarray, Detections] | None = None
        self._classes: dict[int, int] = {}
        self.collected = 0

    def offer(self, t: float, image: np.ndarray, frame: FrameDetections) -> None:
        dets = frame.detections
        score = uncertainty(dets, self.conf)
        if dets.tracker_id is not None:
            for tid, cid in zip(dets.tracker_id.tolist(), dets.class_id.tolist()):
                if tid >= 0 and self._classes.get(tid, cid) != cid:
                    score = max(score, 1.0)  # the tracker saw this hand change class
                self._classes[tid] = cid
        if self._window_end is None:
            self._window_end = t + self.every_s
        if len(dets) and (self._best is None or score > self._best[0]):
            self._best = (score, image.copy(), dets)
        if t >= self._window_end:
            self._flush()
            self._window_end = t + self.every_s

    def _flush(self) -> None:
        if self._best is None:
            return
        score, image, dets = self._best
        self._best = None
        try:
            if (
                collect(
                    self.store,
                    self.station,
                    image,
                    "live",
                    dets=dets,
                    conf=self.conf,
                    model=self.model,
                    by=self.by,
                    score=score,
                )
                is not None
            ):
                self.collected += 1
        except OSError as exc:  # a full disk must not stop watching
            log.warning("site frame not collected: %s", exc)


@dataclass
class CollectReport:
    added: int = 0
    near_copies: int = 0
    errors: list[str] = field(default_factory=list)


def _prelabelled(
    store: Store, station: str, image: np.ndarray, weights: Path, conf: float
) -> tuple[Detections, str]:
    with DETECTORS.acquire(weights) as det:
        fd = det.detect(image, InferenceParams(conf=conf))
        return fd.detections, det.info.name


def collect_images(
    store: Store,
    station: str,
    items: Sequence[tuple[str, bytes | Path]],
    source: str = "batch",
    weights: Path | None = None,
    conf: float = 0.25,
    by: str = "-",
    split: str | None = None,
) -> CollectReport:
    """Add uploaded or local images (pre-labelled by the station's model). ``split`` keeps a
    split the images come with (e.g. a set's own test images: ``holdout``)."""
    weights = weights or registry.active_weights(store, station)
    rep = CollectReport()
    for name, data in items:
        try:
            image = read_image(data, name)
        except MediaError as exc:
            rep.errors.append(str(exc))
            continue
        dets, model = _prelabelled(store, station, image, weights, conf)
        if (
            collect(
                store,
                station,
                image,
                source,
                _photo_time(data),
                dets=dets,
                conf=conf,
                model=model,
                by=by,
                split=split,
            )
            is None
        ):
            rep.near_copies += 1
        else:
            rep.added += 1
    return rep


def _photo_time(data: bytes | Path) -> str | None:
    """When a photo was taken (EXIF), else None (then: when it was collected)."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as im:
            raw = im.getexif().get(36867) or im.getexif().get(306)  # DateTimeOriginal/Time
    except (OSError, ValueError):
        return None
    if not isinstance(raw, str) or len(raw) < 19:
        return None
    return raw[:10].replace(":", "-") + raw[10:19]


def collect_video(
    store: Store,
    station: str,
    path: Path,
    every_s: float = 2.0,
    weights: Path | None = None,
    conf: float = 0.25,
    by: str = "-",
    name: str | None = None,
) -> CollectReport:
    """Add one frame every ``every_s`` seconds of a video (pre-labelled)."""
    weights = weights or registry.active_weights(store, station)
    _, info = open_video(path, name)
    step = max(1, round(info.fps * every_s))
    start = datetime.now() - timedelta(seconds=(info.frames or 0) / info.fps)
    rep = CollectReport()
    for index, image in iter_video(path):
        if index % step:
            continue
        dets, model = _prelabelled(store, station, image, weights, conf)
        # media time: a long recording spans several time blocks
        taken = (start + timedelta(seconds=index / info.fps)).strftime(_TS)
        if (
            collect(store, station, image, "video", taken, dets=dets, conf=conf, model=model, by=by)
            is None
        ):
            rep.near_copies += 1
        else:
            rep.added += 1
    return rep


def collect_reviewed(store: Store, station: str, by: str = "-", limit: int = 500) -> CollectReport:
    """Add the evidence frames of the station's reviewed episodes, their stored detections as
    pre-labels (a confirmed bare hand stays a hand; a dismissed one becomes a glove)."""
    from core.events.evidence import read_boxes
    from core.storage.filters import HistoryFilter

    span = store.history.data_span()
    rep = CollectReport()
    if span.first is None or span.last is None:
        return rep
    f = HistoryFilter(
        span.first, span.last, stations=(station,), reviews=("confirmed", "dismissed")
    )
    for ep in store.events.matching(f, limit=limit):
        if not ep.evidence_path or not Path(ep.evidence_path).exists():
            continue
        try:
            image = read_image(ep.evidence_path)
        except MediaError as exc:
            rep.errors.append(str(exc))
            continue
        side = read_boxes(Path(ep.evidence_path)) or {}
        h, w = image.shape[:2]
        boxes = []
        for d in side.get("detections", []):
            cid = int(d["class_id"])
            if d.get("role") == "violation" and ep.review == "dismissed":
                cid = 0  # a false alarm: that hand was gloved
            x1, y1, x2, y2 = d["box"]
            boxes.append({"class_id": cid, "x1": x1 / w, "y1": y1 / h, "x2": x2 / w, "y2": y2 / h})
        h_ = dhash(image)
        if any(hamming(h_, o) < MIN_HAMMING for o in store.site.recent_hashes(station)):
            rep.near_copies += 1
            continue
        folder = site_dir(station) / "images"
        path = write_image(folder / f"episode-{ep.id:07d}.jpg", image)
        block = block_of(ep.started_at)
        store.site.add(
            station,
            str(path.relative_to(settings().home)),
            "episode",
            ep.started_at,
            h_,
            0.5,
            block,
            split_for(store, station, block),
            boxes,
            "prelabelled",
            ep.model_name,
            by,
        )
        rep.added += 1
    return rep


def frames(
    store: Store, station: str, status: Sequence[str] | None = None, split: str | None = None
) -> list[SiteFrame]:
    return [SiteFrame(r, frame_path(r)) for r in store.site.frames(station, status, split)]


def counts(store: Store) -> list[StationCounts]:
    return store.site.counts()


def prelabel(
    store: Store, station: str, weights: Path | None = None, conf: float = 0.25, by: str = "-"
) -> int:
    """Pre-label the station's unlabelled frames with its active model; returns how many."""
    weights = weights or registry.active_weights(store, station)
    n = 0
    for fr in frames(store, station, status=("new",)):
        image = read_image(fr.path)
        dets, model = _prelabelled(store, station, image, weights, conf)
        store.site.set_labels(
            fr.id, boxes_of(dets, image.shape[:2]), by, "prelabel", "prelabelled", model
        )
        n += 1
    return n


def save_labels(
    store: Store,
    frame_id: int,
    boxes: Iterable[dict[str, Any]],
    by: str,
    done: bool,
    classes: int = 2,
) -> list[Box]:
    """Store corrected boxes of a frame (kept in its history with who and when)."""
    rec = store.site.get(frame_id)
    if rec is None:
        raise DatasetError(f"There is no site frame #{frame_id}.")
    clean = check_boxes(boxes, classes)
    store.site.set_labels(frame_id, clean, by, "done" if done else "edit", "done" if done else None)
    return clean


# ---------------------------------------------------------------------------- YOLO files


def _write_label(fr: SiteFrame) -> Path:
    lab = label_path(fr.path, fr.path.parent)
    lab.parent.mkdir(parents=True, exist_ok=True)
    lab.write_text(
        "".join(
            f"{b['class_id']} {(b['x1'] + b['x2']) / 2:.6f} {(b['y1'] + b['y2']) / 2:.6f} "
            f"{b['x2'] - b['x1']:.6f} {b['y2'] - b['y1']:.6f}\n"
            for b in fr.record.boxes
        )
    )
    return lab


def _names(store: Store, station: str) -> tuple[str, ...]:
    from core.vision.detector import model_names

    return model_names(registry.active_weights(store, station))


def export_yolo(store: Store, station: str, out_dir: Path, only_done: bool = True) -> Path:
    """The station's labelled frames as a YOLO data set: ``train`` the train blocks, ``val``
    the held-out blocks. Returns the data.yaml."""
    import yaml

    out_dir = Path(out_dir)
    status = ("done",) if only_done else ("done", "prelabelled")
    n = 0
    for fr in frames(store, station, status=status):
        split = "train" if fr.record.split == "train" else "val"
        img = out_dir / "images" / split / fr.path.name
        img.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(fr.path, img)
        _write_label(SiteFrame(fr.record, img))
        n += 1
    if not n:
        raise DatasetError(f"{station} has no labelled frames to export yet.")
    for split in ("train", "val"):
        (out_dir / "images" / split).mkdir(parents=True, exist_ok=True)
    doc = {
        "path": str(out_dir.resolve()),
        "train": "images/train",
        "val": "images/val",
        "names": dict(enumerate(_names(store, station))),
    }
    (out_dir / "data.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return out_dir / "data.yaml"


def import_yolo(
    store: Store, station: str, source: Path, by: str = "-", done: bool = True
) -> CollectReport:
    """Import labels (and images not collected yet) from a YOLO folder or data.yaml: a
    frame whose image name matches gets those labels; other images become new frames."""
    layout = read_layout(source)
    known = [(fr.record.phash, fr) for fr in frames(store, station)]
    rep = CollectReport()
    classes = len(layout.names)
    for split_name, folders in layout.splits.items():
        # the source's own split is kept: its val/test images are held out
        split = "train" if split_name == "train" else "holdout"
        for folder in folders:
            for img in images_in(folder):
                boxes = [
                    {
                        "class_id": s.class_id,
                        "x1": float(s.points[:, 0].min()),
                        "y1": float(s.points[:, 1].min()),
                        "x2": float(s.points[:, 0].max()),
                        "y2": float(s.points[:, 1].max()),
                    }
                    for s in read_labels(label_path(img, folder))
                ]
                boxes = check_boxes(boxes, classes)
                try:
                    image = read_image(img)
                except MediaError as exc:
                    rep.errors.append(str(exc))
                    continue
                # the same picture already collected (by content, whatever its file name)
                h = dhash(image)
                fr = next((f for ph, f in known if hamming(h, ph) < MIN_HAMMING), None)
                if fr is not None:
                    store.site.set_labels(
                        fr.id, boxes, by, "import", "done" if done else "prelabelled"
                    )
                    rep.added += 1
                    continue
                fid = collect(store, station, image, "import", by=by, split=split)
                if fid is None:
                    rep.near_copies += 1
                    continue
                store.site.set_labels(fid, boxes, by, "import", "done" if done else "prelabelled")
                rep.added += 1
    return rep


# ---------------------------------------------------------------------------- fine-tune


@dataclass(frozen=True)
class FinetunePlan:
    """What a fine-tune will train on and about how long it will take."""

    station: str
    base_data: Path
    site_images: int
    base_images: int
    val_images: int
    epochs: int
    imgsz: int
    freeze: int
    batch: int
    device: str
    estimate_s: float

    def describe(self) -> str:
        m, s = divmod(int(self.estimate_s), 60)
        return (
            f"{self.site_images} labelled station frames + {self.base_images} base images "
            f"replayed, {self.epochs} epochs at {self.imgsz} px, first {self.freeze} "
            f"layers frozen, on {self.device}: about {m} min {s:02d} s"
        )


# Seconds per image per epoch on this project's reference 2-core CPU at 640 px, both cores
# training (measured with scripts/measure_site_loop.sh: 0.27 s with every layer trained,
# 0.22 s with the backbone frozen).
CPU_S_PER_IMAGE_640 = 0.27
FROZEN_FACTOR = 0.8
GPU_FACTOR = 0.02


def plan_finetune(
    store: Store,
    station: str,
    base_data: Path | str,
    epochs: int = 10,
    imgsz: int = 640,
    freeze: int = 10,
    base_ratio: float = 2.0,
    max_base: int = 300,
    val_images: int = 60,
    batch: int = 16,
    device: str = "",
) -> FinetunePlan:
    """The CPU-feasible default fine-tune of a station, with its time estimate."""
    site = len(frames(store, station, status=("done",), split="train"))
    if not site:
        raise TrainingError(
            f"{station} has no labelled train frames yet: label some first "
            "(held-out frames are never trained on)."
        )
    layout = read_layout(base_data)
    base = min(len(layout.images("train")), max_base, int(site * base_ratio))
    val = min(val_images, len(layout.images("val")) if "val" in layout.splits else 0)
    device = device or runs.default_device()
    per = CPU_S_PER_IMAGE_640 * (imgsz / 640) ** 2 * (FROZEN_FACTOR if freeze >= 10 else 1.0)
    if device != "cpu":
        per *= GPU_FACTOR
    estimate = epochs * ((site + base) * per + val * per * 0.25) + 20  # + start-up
    return FinetunePlan(
        station, layout.yaml_path, site, base, val, epochs, imgsz, freeze, batch, device, estimate
    )


def _list_file(path: Path, images: Iterable[Path]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{p.resolve()}\n" for p in images))
    return path


def build_finetune_data(store: Store, plan: FinetunePlan, seed: int = 0) -> Path:
    """A data.yaml mixing the station's labelled train frames with a replay sample of the
    base train split; validation on a base val sample (the station's held-out frames stay
    out of training entirely)."""
    import yaml

    site = frames(store, plan.station, status=("done",), split="train")
    for fr in site:
        _write_label(fr)
    layout = read_layout(plan.base_data)
    rng = random.Random(seed)
    base = rng.sample(layout.images("train"), plan.base_images)
    val = rng.sample(layout.images("val"), plan.val_images) if plan.val_images else []
    out = site_dir(plan.station) / f"finetune-{datetime.now():%Y%m%d-%H%M%S}"
    doc = {
        "path": str(out),
        "train": str(_list_file(out / "train.txt", [fr.path for fr in site] + base)),
        "val": str(_list_file(out / "val.txt", val or [fr.path for fr in site[:8]])),
        "names": dict(enumerate(layout.names)),
    }
    (out / "data.yaml").write_text(
        f"# Fine-tune of {plan.station}: {plan.describe()}\n" + yaml.safe_dump(doc, sort_keys=False)
    )
    return out / "data.yaml"


# Optimiser settings for a short fine-tune from a trained model. Ultralytics' defaults are
# made for training from scratch: a warm-up of at least 100 iterations (most of a 10-epoch
# run on a few hundred images) in which the bias learning rate starts at 0.1 and disturbs a
# trained head, and gradients accumulated to 64 images, so a run on 300 images makes only
# ~5 steps an epoch. Here: no warm-up, one step per batch, AdamW at a fine-tuning rate.
FINETUNE_OPTIONS: dict[str, Any] = {"optimizer": "AdamW", "lr0": 0.001, "warmup_epochs": 0}


def finetune(store: Store, plan: FinetunePlan, by: str = "-") -> runs.Run:
    """Start the fine-tune from the station's active model (a run in its own process)."""
    data = build_finetune_data(store, plan)
    weights = registry.active_weights(store, plan.station)
    return runs.submit(
        store,
        runs.TrainSpec(
            data=str(data),
            model=str(weights),
            epochs=plan.epochs,
            imgsz=plan.imgsz,
            batch=plan.batch,
            patience=plan.epochs,
            device=plan.device if plan.device != "cpu" else "cpu",
            name=f"site-{slug(plan.station, 40)}-{datetime.now():%m%d-%H%M%S}",
            dataset=f"{plan.station} site frames + base replay",
            extra={
                "freeze": plan.freeze,
                "plots": False,
                "workers": 0,
                "nbs": plan.batch,
                **FINETUNE_OPTIONS,
            },
        ),
        by=by,
    )


# ---------------------------------------------------------------------------- compare


@dataclass(frozen=True)
class StationComparison:
    """A station fine-tune and the station's active model on the station's held-out frames
    and on the base test split."""

    station: str
    holdout: tuple[EvalResult, EvalResult] | None  # (candidate, active); None: no held-out
    base: tuple[EvalResult, EvalResult]
    active_path: Path

    @property
    def base_drop(self) -> float:
        return self.base[1].map50 - self.base[0].map50

    @property
    def needs_confirmation(self) -> bool:
        return self.base_drop > MAX_BASE_DROP


def holdout_data(store: Store, station: str) -> Path | None:
    """The station's labelled held-out frames as a data set to score on (None if none)."""
    import yaml

    held = frames(store, station, status=("done",), split="holdout")
    if not held:
        return None
    for fr in held:
        _write_label(fr)
    out = site_dir(station) / "holdout"
    doc = {
        "path": str(out),
        "train": str(_list_file(out / "holdout.txt", [fr.path for fr in held])),
        "val": str(out / "holdout.txt"),
        "test": str(out / "holdout.txt"),
        "names": dict(enumerate(_names(store, station))),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "data.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return out / "data.yaml"


def compare_station(
    store: Store, station: str, run_ref: int | str, base_data: Path | str, imgsz: int | None = None
) -> StationComparison:
    """Score the run and the station's active model on its held-out frames and the base
    test split."""
    run = runs.get_run(store, run_ref)
    if not run.best_pt.is_file():
        raise RegistryError(f"Run {run.id} has no best.pt yet (status {run.status}).")
    active = registry.active_weights(store, station)
    hold = holdout_data(store, station)
    holdout = None
    if hold is not None:
        holdout = (
            evaluate(run.best_pt, hold, "test", imgsz),
            evaluate(active, hold, "test", imgsz),
        )
    base = (
        evaluate(run.best_pt, base_data, "test", imgsz),
        evaluate(active, base_data, "test", imgsz),
    )
    return StationComparison(station, holdout, base, active)


def promote_station(
    store: Store,
    station: str,
    run_ref: int | str,
    cmp: StationComparison,
    by: str,
    accept_drop: bool = False,
) -> registry.RegistryEntry:
    """Make a run the station's model; refused without ``accept_drop`` when it loses more
    than ``MAX_BASE_DROP`` mAP50 on the base test split."""
    if cmp.needs_confirmation and not accept_drop:
        raise RegistryError(
            f"The fine-tune loses {cmp.base_drop:.3f} mAP50 on the base test split (more than "
            f"{MAX_BASE_DROP}); confirm to promote it for {station} anyway."
        )
    return registry.promote(
        store,
        run_ref,
        promoted_by=by,
        station=station,
        comparison=registry.Comparison(cmp.base[0], cmp.base[1], cmp.active_path),
        accept_lower=True,
    )


# ---------------------------------------------------------------------------- completion


@dataclass
class CompletionReport:
    images: int = 0
    kept: int = 0  # labelled boxes kept as they were
    added: int = 0  # missing-class boxes added from the model


def complete_missing(
    source: Path | str,
    missing: str,
    out_dir: Path,
    weights: Path | None = None,
    conf: float = 0.5,
    max_overlap: float = 0.3,
) -> CompletionReport:
    """Copy a data set whose labels lack class ``missing`` (e.g. industrial photos where only
    gloves are labelled), adding the model's ``missing`` boxes (confidence >= ``conf``) that
    do not overlap a labelled box: the pre-labels a person then checks on the Label page.
    The copy keeps the source's splits; its yaml says what was added."""
    import yaml

    from core.vision.detections import box_iou

    layout = read_layout(source)
    if missing not in layout.names:
        raise DatasetError(f"The data set has no class '{missing}'.")
    cid = layout.names.index(missing)
    weights = weights or settings().default_weights
    rep = CompletionReport()
    out_dir = Path(out_dir)
    with DETECTORS.acquire(weights) as det:
        for split, folders in layout.splits.items():
            for folder in folders:
                for img in images_in(folder):
                    image = read_image(img)
                    h, w = image.shape[:2]
                    shapes = read_labels(label_path(img, folder))
                    truth = np.array([s.to_box().xyxy(w, h) for s in shapes]).reshape(-1, 4)
                    found = det.detect(image, InferenceParams(conf=conf)).detections
                    found = found[found.class_id == cid]
                    if len(found) and len(truth):
                        found = found[box_iou(found.xyxy, truth).max(1) < max_overlap]
                    lines = [
                        f"{s.class_id} {b.cx:.6f} {b.cy:.6f} {b.w:.6f} {b.h:.6f}\n"
                        for s in shapes
                        for b in [s.to_box()]
                    ]
                    lines += [
                        f"{cid} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} "
                        f"{(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}\n"
                        for x1, y1, x2, y2 in found.xyxy.tolist()
                    ]
                    dst = out_dir / "images" / split / img.name
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(img, dst)
                    lab = out_dir / "labels" / split / f"{img.stem}.txt"
                    lab.parent.mkdir(parents=True, exist_ok=True)
                    lab.write_text("".join(lines))
                    rep.images += 1
                    rep.kept += len(shapes)
                    rep.added += len(found)
    doc = {
        "path": str(out_dir.resolve()),
        **{s: f"images/{s}" for s in layout.splits},
        "names": dict(enumerate(layout.names)),
    }
    (out_dir / "data.yaml").write_text(
        f"# {layout.yaml_path} with '{missing}' boxes added from {Path(weights).name} "
        f"(confidence >= {conf}, not overlapping a labelled box): {rep.added} added.\n"
        + yaml.safe_dump(doc, sort_keys=False)
    )
    return rep
