"""Training recipes: named sets of Ultralytics hyper-parameters plus optional data preparation.

The training worker (:mod:`core.train_worker`) looks a run's recipe up in :data:`RECIPES`,
calls ``prepare(data_yaml, out_dir)`` to get the data.yaml to train on and merges
``train_overrides`` into the Ultralytics arguments (options the user set explicitly win).

- ``default``: Ultralytics' own augmentation on the data set as it is.
- ``wide``: for wide camera views where hands are small. Adds zoomed-out composites of the
  TRAIN split (train images shrunk to 1/6..1/2 and pasted onto backgrounds made of other
  train images, the copy-paste of hands onto varied backgrounds; see :mod:`core.wideview`)
  and widens the scale augmentation so mosaics also show small hands. Validation and test
  splits are left untouched, so scores stay comparable with the default recipe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from core.wideview import CompositeSpec, build_composites, read_images_dir


class RecipeError(ValueError):
    """A data set the recipe cannot prepare (layout it does not understand)."""


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
WIDE_TRAIN_SPEC = CompositeSpec(width=1280, height=720, per_canvas=4, min_scale=1 / 6,
                                max_scale=1 / 2)
WIDE_SEED = 0


def _load_data(data_yaml: Path) -> tuple[dict, Path]:
    try:
        cfg = yaml.safe_load(data_yaml.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise RecipeError(f"{data_yaml}: cannot read the data set file ({exc}).") from exc
    if not isinstance(cfg, dict) or "names" not in cfg or "train" not in cfg:
        raise RecipeError(f"{data_yaml}: not a YOLO data set file (needs 'train' and 'names').")
    root = Path(cfg.get("path") or ".")
    return cfg, root if root.is_absolute() else (data_yaml.parent / root).resolve()


def _abs_entries(entry, root: Path) -> list[str]:
    entries = entry if isinstance(entry, list) else [entry]
    return [str(Path(e) if Path(e).is_absolute() else (root / e).resolve()) for e in entries]


def prepare_wide(data_yaml: Path, out_dir: Path, spec: CompositeSpec = WIDE_TRAIN_SPEC,
                 seed: int = WIDE_SEED) -> Path:
    """Write zoomed-out composites of the train split and a data.yaml that adds them to train.

    One composite per ``spec.per_canvas`` train images (every train image pasted once), made
    only from train images. Returns ``out_dir/data.yaml`` with absolute paths.
    """
    data_yaml = Path(data_yaml).resolve()
    cfg, root = _load_data(data_yaml)
    train_dirs = [Path(p) for p in _abs_entries(cfg["train"], root)]
    items = []
    for d in train_dirs:
        if not d.is_dir():
            raise RecipeError(f"The 'wide' recipe needs train image folders; {d} is not one.")
        items += read_images_dir(d)
    out_dir = Path(out_dir).resolve()
    comp = build_composites(items, out_dir / "images" / "train",
                            out_dir / "labels" / "train", seed=seed, spec=spec,
                            prefix="widetrain")
    new = dict(cfg)
    new["path"] = str(root)
    new["train"] = [str(d) for d in train_dirs] + [str(comp.images_dir)]
    for split in ("val", "test"):
        if cfg.get(split):
            entries = _abs_entries(cfg[split], root)
            new[split] = entries if len(entries) > 1 else entries[0]
    out = out_dir / "data.yaml"
    out.write_text(f"# {data_yaml} plus {comp.images} zoomed-out composites of its train split "
                   f"(recipe 'wide', seed {seed}).\n" + yaml.safe_dump(new, sort_keys=False))
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
            "images), scale augmentation 0.1-1.9x with mosaic on all but the last 10 epochs."),
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
}
