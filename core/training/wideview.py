"""Wide-view composites: close-up images shrunk into large CCTV-like canvases, boxes carried over.

The gloves data set is mostly close-ups, while a plant camera sees a whole machine where a hand
is 20-60 px in a 1080p frame (GUIDE section 8). This module builds that situation from labelled
images: each canvas is a background made from a grid of other images of the same split (their
labelled hands painted out, stretched and blurred) with several images of the split pasted
onto it at 1/3 to 1/6 of their size, their YOLO boxes scaled and moved along.

- :func:`build_wideview` makes the evaluation set from the TEST split only (never train images),
  deterministically for a given seed.
- :func:`build_composites` is the shared engine; the 'wide' training recipe
  (:mod:`core.training.recipes`) calls it on the TRAIN split.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.errors import DatasetError
from core.vision.yolo_data import LabelledImage, YoloBox, read_layout, read_split


@dataclass(frozen=True)
class CompositeSpec:
    """Canvas size, how many images go on one canvas and the range of their scale factors."""

    width: int = 1920
    height: int = 1080
    per_canvas: int = 6
    min_scale: float = 1 / 6
    max_scale: float = 1 / 3
    jpeg_quality: int = 90
    background_grid: tuple[int, int] = (3, 2)  # columns, rows of background tiles
    max_background_box_area: float = 0.3  # images mostly covered by hands make poor backgrounds


@dataclass(frozen=True)
class CompositeSet:
    """What :func:`build_composites` wrote."""

    images_dir: Path
    labels_dir: Path
    images: int
    boxes: int
    sources: tuple[Path, ...]  # every image that was pasted or used as a background


@dataclass(frozen=True)
class WideViewSet:
    """A generated wide-view evaluation set and its Ultralytics data.yaml (absolute path)."""

    data_yaml: Path
    composites: CompositeSet


def _read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DatasetError(f"{path}: not a readable image.")
    return image


def make_background(
    image: np.ndarray, boxes: Sequence[YoloBox], width: int, height: int
) -> np.ndarray:
    """A ``width`` x ``height`` tile from ``image`` with its labelled hands painted out.

    Unlabelled hands on a background would count as false positives, so every box is inpainted
    (on a small copy: it is fast and the result is stretched and blurred anyway).
    """
    small_w = 160
    small_h = max(1, round(image.shape[0] * small_w / image.shape[1]))
    small = cv2.resize(image, (small_w, small_h), interpolation=cv2.INTER_AREA)
    mask = np.zeros((small_h, small_w), np.uint8)
    for b in boxes:
        x1, y1 = int((b.cx - b.w / 2) * small_w) - 2, int((b.cy - b.h / 2) * small_h) - 2
        x2 = int(math.ceil((b.cx + b.w / 2) * small_w)) + 2
        y2 = int(math.ceil((b.cy + b.h / 2) * small_h)) + 2
        cv2.rectangle(
            mask, (max(x1, 0), max(y1, 0)), (min(x2, small_w - 1), min(y2, small_h - 1)), 255, -1
        )
    if mask.any():
        small = cv2.inpaint(small, mask, 5, cv2.INPAINT_TELEA)
    # Cover the tile (crop the longer side) so the background is not distorted.
    scale = max(width / small_w, height / small_h)
    big = cv2.resize(
        small,
        (math.ceil(small_w * scale), math.ceil(small_h * scale)),
        interpolation=cv2.INTER_LINEAR,
    )
    y0, x0 = (big.shape[0] - height) // 2, (big.shape[1] - width) // 2
    return cv2.GaussianBlur(big[y0 : y0 + height, x0 : x0 + width], (0, 0), 3)


def _box_area(item: LabelledImage) -> float:
    return sum(b.w * b.h for b in item.boxes)


def tiled_background(items: Sequence[LabelledImage], spec: CompositeSpec) -> np.ndarray:
    """A canvas covered by a grid of background tiles, one per item (row-major)."""
    canvas = np.zeros((spec.height, spec.width, 3), np.uint8)
    cols, rows = spec.background_grid
    for k, item in enumerate(items[: cols * rows]):
        r, c = divmod(k, cols)
        x0, x1 = c * spec.width // cols, (c + 1) * spec.width // cols
        y0, y1 = r * spec.height // rows, (r + 1) * spec.height // rows
        canvas[y0:y1, x0:x1] = make_background(_read(item.image), item.boxes, x1 - x0, y1 - y0)
    return canvas


def _place(
    rng: random.Random,
    size: tuple[int, int],
    taken: list[tuple[int, int, int, int]],
    spec: CompositeSpec,
) -> tuple[int, int] | None:
    """Top-left corner for a ``size`` (w, h) patch not overlapping ``taken`` (None: no room)."""
    w, h = size
    for _ in range(200):
        x, y = rng.randint(0, spec.width - w), rng.randint(0, spec.height - h)
        if all(
            x + w + 8 <= tx or tx + tw + 8 <= x or y + h + 8 <= ty or ty + th + 8 <= y
            for tx, ty, tw, th in taken
        ):
            return x, y
    return None


def compose(
    background: np.ndarray,
    patches: Sequence[tuple[np.ndarray, Sequence[YoloBox]]],
    rng: random.Random,
    spec: CompositeSpec,
) -> tuple[np.ndarray, list[YoloBox]]:
    """Paste each (image, boxes) patch shrunk by a random factor in the spec's scale range.

    Returns the canvas and the pasted boxes normalised to the canvas. A patch that finds no
    free room is left out with its boxes (never happens with the default spec).
    """
    canvas = background.copy()
    taken: list[tuple[int, int, int, int]] = []
    out: list[YoloBox] = []
    for image, boxes in patches:
        s = rng.uniform(spec.min_scale, spec.max_scale)
        w, h = max(1, round(image.shape[1] * s)), max(1, round(image.shape[0] * s))
        spot = _place(rng, (w, h), taken, spec)
        if spot is None:
            continue
        x, y = spot
        taken.append((x, y, w, h))
        canvas[y : y + h, x : x + w] = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        for b in boxes:
            out.append(
                YoloBox(
                    b.class_id,
                    (x + b.cx * w) / spec.width,
                    (y + b.cy * h) / spec.height,
                    b.w * w / spec.width,
                    b.h * h / spec.height,
                )
            )
    return canvas, out


def build_composites(
    items: Sequence[LabelledImage],
    out_images: Path,
    out_labels: Path,
    n: int | None = None,
    seed: int = 0,
    spec: CompositeSpec = CompositeSpec(),
    prefix: str = "wide",
) -> CompositeSet:
    """Write ``n`` composite canvases (JPEG + YOLO label) made only from ``items``.

    Images are shuffled with ``seed`` and pasted ``spec.per_canvas`` at a time, so by default
    (``n`` None) every image appears exactly once. Each canvas's background is a grid of
    other images of ``items`` (not pasted on it) with their hands painted out. Same items,
    seed and spec give byte-identical output.
    """
    if len(items) < 2:
        raise DatasetError("Composites need at least two images (one for the background).")
    rng = random.Random(seed)
    per = min(spec.per_canvas, len(items) - 1)
    n = math.ceil(len(items) / per) if n is None else n
    out_images.mkdir(parents=True, exist_ok=True)
    out_labels.mkdir(parents=True, exist_ok=True)
    order: list[int] = []
    backgrounds = [i for i, it in enumerate(items) if _box_area(it) <= spec.max_background_box_area]
    used: set[Path] = set()
    total_boxes = 0
    for k in range(n):
        while len(order) < per:
            fresh = list(range(len(items)))
            rng.shuffle(fresh)
            order.extend(fresh)
        group, order = order[:per], order[per:]
        tiles = spec.background_grid[0] * spec.background_grid[1]
        pool = [i for i in backgrounds if i not in group]
        if len(pool) < tiles:
            pool = [i for i in range(len(items)) if i not in group]
        bg_idx = rng.sample(pool, min(tiles, len(pool)))
        background = tiled_background([items[i] for i in bg_idx], spec)
        patches = [(_read(items[i].image), items[i].boxes) for i in group]
        canvas, boxes = compose(background, patches, rng, spec)
        name = f"{prefix}_{seed}_{k:05d}"
        cv2.imwrite(
            str(out_images / f"{name}.jpg"), canvas, [cv2.IMWRITE_JPEG_QUALITY, spec.jpeg_quality]
        )
        (out_labels / f"{name}.txt").write_text(
            "".join(f"{b.class_id} {b.cx:.6f} {b.cy:.6f} {b.w:.6f} {b.h:.6f}\n" for b in boxes)
        )
        total_boxes += len(boxes)
        used.update(items[i].image for i in (*group, *bg_idx))
    return CompositeSet(out_images, out_labels, n, total_boxes, tuple(sorted(used)))


def build_wideview(
    dataset_dir: Path,
    out_dir: Path,
    n: int | None = None,
    seed: int = 0,
    spec: CompositeSpec = CompositeSpec(),
) -> WideViewSet:
    """Generate the wide-view evaluation set from the TEST split of ``dataset_dir`` only.

    Writes ``out_dir/images/test``, ``out_dir/labels/test`` and ``out_dir/data.yaml`` (absolute
    ``path``; ``train`` and ``val`` also point at the composites because Ultralytics requires
    the keys: the set is for evaluation, never for training).
    """
    import yaml

    dataset_dir, out_dir = Path(dataset_dir).resolve(), Path(out_dir).resolve()
    names = dict(enumerate(read_layout(dataset_dir).names))
    items = read_split(dataset_dir, "test")
    comp = build_composites(
        items, out_dir / "images" / "test", out_dir / "labels" / "test", n=n, seed=seed, spec=spec
    )
    data = {
        "path": str(out_dir),
        "train": "images/test",
        "val": "images/test",
        "test": "images/test",
        "names": names,
    }
    data_yaml = out_dir / "data.yaml"
    data_yaml.write_text(
        f"# Wide-view evaluation set generated by `python -m core wideview` from the test split\n"
        f"# of {dataset_dir} (seed {seed}, {comp.images} canvases {spec.width}x{spec.height}).\n"
        "# Evaluation only: train/val point at the same images because Ultralytics needs them.\n"
        + yaml.safe_dump(data, sort_keys=False)
    )
    return WideViewSet(data_yaml, comp)
