"""GloveWatch model variants: custom modules and their registration with Ultralytics.

Call :func:`register` once per process before building or training a model from one of the
YAML files in this folder (``YOLO('models/yolo11n-scconv.yaml')``). Loading a trained ``.pt`` of
a variant needs no registration, only that this package is importable (it is from the project
root), because the checkpoint pickles the module classes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

MODELS_DIR = Path(__file__).resolve().parent

# Variant YAMLs offered for training, with the module swap each one makes.
VARIANTS: dict[str, str] = {
    "yolo11n-scconv.yaml": "C3k2 bottlenecks use SCConv (spatial + channel reconstruction)",
    "yolo11n-dyhead.yaml": "DyHead-style attention (scale, deformable spatial, DyReLU task) "
    "on each level before Detect",
    "yolo11n-p2.yaml": "a fourth detection level at stride 4 (P2) for small hands",
}


def _wrap(parse_model: Callable[..., Any]) -> Callable[..., Any]:
    """``parse_model`` that also understands the names in ``models.modules.SWAPS``.

    Ultralytics decides each layer's channel arguments by identity against its own module sets
    (e.g. C3k2 gets c1, c2, repeats and width scaling; Detect gets the input widths), which a
    new class cannot join. So each custom layer is parsed as the module it stands in for, and
    the built layer is then replaced by the custom one with the same resolved widths.
    """
    from models.modules import SWAPS

    def parse_model_with_variants(d, ch, verbose=True):
        d = copy.deepcopy(d)
        swapped: dict[int, str] = {}
        for i, layer in enumerate(d.get("backbone", []) + d.get("head", [])):
            if layer[2] in SWAPS:
                swapped[i] = layer[2]
                layer[2] = SWAPS[layer[2]][0]
        model, save = parse_model(d, ch, verbose)
        for i, name in swapped.items():
            old = model[i]
            new = SWAPS[name][1](old)  # type: ignore[operator]
            new.i, new.f = old.i, old.f
            new.type = f"models.modules.{name}"
            new.np = sum(p.numel() for p in new.parameters())
            model[i] = new
        return model, save

    parse_model_with_variants.__wrapped__ = parse_model  # type: ignore[attr-defined]
    return parse_model_with_variants


def register() -> None:
    """Make Ultralytics build the variant YAMLs (idempotent; call before ``YOLO(yaml)``)."""
    from ultralytics.nn import tasks

    from models import modules

    if not hasattr(tasks.parse_model, "__wrapped__"):
        tasks.parse_model = _wrap(tasks.parse_model)
    for name in modules.SWAPS:  # also resolvable by name, like built-in layers
        setattr(tasks, name, getattr(modules, name))


def variant_paths() -> list[Path]:
    """The variant YAML files shipped in this folder."""
    return [MODELS_DIR / name for name in VARIANTS]
