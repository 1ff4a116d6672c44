"""Training recipes: named sets of Ultralytics hyper-parameters plus optional data preparation.

The training worker (:mod:`core.training.worker`) looks a run's recipe up in :data:`RECIPES`,
calls ``prepare(data_yaml, out_dir)`` to get the data.yaml to train on and merges
``train_overrides`` into the Ultralytics arguments (options the user set explicitly win).

- ``default``: Ultralytics' own augmentation on the data set as it is.
- ``wide``: for wide camera views where hands are small. Adds zoomed-out composites of the
  TRAIN split (train images shrunk to 1/6..1/2 and pasted onto backgrounds made of other
  train images, the copy-paste of hands onto varied backgrounds; see
  :mod:`core.training.wideview`) and widens the scale augmentation so mosaics also show small
  hands.
- ``camera``: one camera-degraded copy of every train image (grayscale, blur, JPEG, low
  resolution, lighting, noise, any rotation; :mod:`core.training.camera`).
- ``wide-camera``: both.

Validation and test splits are always left untouched, so scores stay comparable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import yaml

from core.training.camera import build_degraded
from core.training.wideview import CompositeSpec, build_composites
from core.vision.yolo_data import read_images_dir, read_layout


@dataclass(frozen=True)
class Recipe:
    """A named training recipe."""

    name: str
    description: str
    train_overrides: dict = field(default_factory=dict)
    preparer: Callable[[Path, Path], Path] | None = None

    def prepare(self, data_yaml: Path, out_dir: Path) -> Path:
        """The data.yaml to train on (``data_yaml`` itself when the recipe adds no data)."""
        if self.preparer is None:
            return Path(data_yaml)
        return self.preparer(Path(data_yaml), Path(out_dir))


# Composites for training: smaller canvases and a wider scale range than the wide-view test
# set, so that after the letterbox to the training size hands span ~15-60 px, between the
# close-ups of the data set and the 1080p wide views.
WIDE_TRAIN_SPEC = CompositeSpec(
    width=1280, height=720, per_canvas=4, min_scale=1 / 6, max_scale=1 / 2
)
WIDE_SEED = 0


def prepare_wide(
    data_yaml: Path,
    out_dir: Path,
    spec: CompositeSpec = WIDE_TRAIN_SPEC,
    seed: int = WIDE_SEED,
    camera: bool = False,
    composites: bool = True,
) -> Path:
    """Write zoomed-out composites of the train split and a data.yaml that adds them to train.

    One composite per ``spec.per_canvas`` train images (every train image pasted once), made
    only from train images. Returns ``out_dir/data.yaml`` with absolute paths.
    """
    data_yaml = Path(data_yaml).resolve()
    layout = read_layout(data_yaml)
    train_dirs = layout.folders("train")
    items = [item for d in train_dirs for item in read_images_dir(d)]
    out_dir = Path(out_dir).resolve()
    added: list[str] = []
    if composites:
        comp = build_composites(
            items,
            out_dir / "images" / "train",
            out_dir / "labels" / "train",
            seed=seed,
            spec=spec,
            prefix="widetrain",
        )
        added.append(f"{comp.images} zoomed-out composites")
    if camera:
        n = build_degraded(
            items, out_dir / "images" / "train", out_dir / "labels" / "train", seed=seed
        )
        added.append(f"{n} camera-degraded copies")
    new: dict[str, object] = {
        "path": str(layout.root),
        "train": [str(d) for d in train_dirs] + [str(out_dir / "images" / "train")],
    }
    for split in ("val", "test"):
        if split in layout.splits:
            folders = [str(d) for d in layout.splits[split]]
            new[split] = folders if len(folders) > 1 else folders[0]
    new["names"] = dict(enumerate(layout.names))
    out = out_dir / "data.yaml"
    out.write_text(
        f"# {data_yaml} plus {' and '.join(added)} of its train split "
        f"(seed {seed}).\n" + yaml.safe_dump(new, sort_keys=False)
    )
    return out


RECIPES: dict[str, Recipe] = {
    "default": Recipe(
        name="default",
        description="Ultralytics' default augmentation on the data set as it is.",
    ),
    "wide": Recipe(
        name="wide",
        description=(
            "For wide camera views (hands 20-60 px in 1080p): adds zoomed-out composites of "
            "the train split (hands pasted at 1/6-1/2 size onto backgrounds of other train "
            "images), scale augmentation 0.1-1.9x with mosaic on all but the last 10 epochs."
        ),
        train_overrides={
            "scale": 0.9,  # zoom range 1 +/- 0.9: mosaics show hands far smaller than close-ups
            "mosaic": 1.0,
            "close_mosaic": 10,
            "translate": 0.2,
            "copy_paste": 0.0,  # Ultralytics' copy-paste needs polygons; composites do it here
            "imgsz": 640,  # the deployment size (CPU latency target); tiles cover 1080p views
        },
        preparer=prepare_wide,
    ),
    "camera": Recipe(
        name="camera",
        description=(
            "For cameras unlike the close-up photos: adds one camera-degraded copy of every "
            "train image (grayscale, blur, JPEG 15-50, low resolution, lighting, noise, any "
            "rotation), labels moved along."
        ),
        train_overrides={"degrees": 0.0},
        preparer=partial(prepare_wide, camera=True, composites=False),
    ),
}
RECIPES["wide-camera"] = Recipe(
    name="wide-camera",
    description="Both 'wide' and 'camera': zoomed-out composites and camera-degraded copies.",
    train_overrides=RECIPES["wide"].train_overrides,
    preparer=partial(prepare_wide, camera=True),
)
