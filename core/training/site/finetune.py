"""Fine-tuning a station's model: from its active model, on its labelled train frames plus a
replay sample of the base data set, with a backbone freeze, CPU-sized defaults and a time
estimate before it starts. Held-out frames are never trained on."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from core.errors import TrainingError
from core.storage import Store
from core.text import slug
from core.training import options, registry, runs
from core.training.site.frames import frames, list_file, site_dir, write_label
from core.vision.yolo_data import read_layout


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
        """One sentence: the images, the settings and the time estimate."""
        m, s = divmod(int(self.estimate_s), 60)
        took = f"{m} min {s:02d} s" if m else f"{s} s"
        return (
            f"{self.site_images} labelled station frames + {self.base_images} base images "
            f"replayed, {self.epochs} epochs at {self.imgsz} px, first {self.freeze} "
            f"layers frozen, on {self.device}: about {took}"
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
    device = device or options.default_device()
    per = CPU_S_PER_IMAGE_640 * (imgsz / 640) ** 2 * (FROZEN_FACTOR if freeze >= 10 else 1.0)
    if device != "cpu":
        per *= GPU_FACTOR
    estimate = epochs * ((site + base) * per + val * per * 0.25) + 20  # + start-up
    return FinetunePlan(
        station, layout.yaml_path, site, base, val, epochs, imgsz, freeze, batch, device, estimate
    )


def build_finetune_data(store: Store, plan: FinetunePlan, seed: int = 0) -> Path:
    """A data.yaml mixing the station's labelled train frames with a replay sample of the
    base train split; validation on a base val sample (the station's held-out frames stay
    out of training entirely)."""
    import yaml

    site = frames(store, plan.station, status=("done",), split="train")
    for fr in site:
        write_label(fr)
    layout = read_layout(plan.base_data)
    rng = random.Random(seed)
    base = rng.sample(layout.images("train"), plan.base_images)
    val = rng.sample(layout.images("val"), plan.val_images) if plan.val_images else []
    out = site_dir(plan.station) / f"finetune-{datetime.now():%Y%m%d-%H%M%S}"
    doc = {
        "path": str(out),
        "train": str(list_file(out / "train.txt", [fr.path for fr in site] + base)),
        "val": str(list_file(out / "val.txt", val or [fr.path for fr in site[:8]])),
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
        options.TrainSpec(
            data=str(data),
            model=str(weights),
            epochs=plan.epochs,
            imgsz=plan.imgsz,
            batch=plan.batch,
            patience=plan.epochs,
            device=plan.device if plan.device != "cpu" else "cpu",
            name=f"{run_prefix(plan.station)}{datetime.now():%m%d-%H%M%S}",
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


def run_prefix(station: str) -> str:
    """How the names of a station's fine-tune runs begin."""
    return f"site-{slug(station, 40)}-"


def station_runs(store: Store, station: str) -> list[runs.Run]:
    """The station's fine-tunes that ended with weights (the ones to compare), newest first."""
    prefix = run_prefix(station)
    return [
        r
        for r in runs.list_runs(store, reconcile_first=False)
        if r.name.startswith(prefix) and r.has_weights
    ]
