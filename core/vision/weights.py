"""Weights files that cannot run code: an explicit allow-list checked before unpickling.

A ``.pt`` file is a pickle, and unpickling a pickle can call any function (``os.system``
included). Ultralytics unpickles with ``weights_only=False`` unless its safe loader is on, so
GloveWatch turns that loader on for the whole process (``ULTRALYTICS_SAFE_LOAD=1``, set by
each entry point through :func:`core.config.apply_offline_environment`: PyTorch's
``weights_only=True``; :func:`check_weights` refuses to go on without it) and, before any load,
reads the list of
classes a checkpoint references without running it
(``torch.serialization.get_unsafe_globals_in_checkpoint``). Anything outside
:data:`ALLOWED_GLOBALS` is refused with one sentence, so the file is never loaded at all.

The allow-list was derived from real checkpoints: the shipped model, the wide-view model, runs
trained by ``python -m core train`` (``best.pt`` and ``last.pt``, from scratch and
fine-tuned), a YOLO11 segmentation run, and runs of the ``models/`` variants (SCConv,
DyHead). YOLO11 sizes n to x share these classes.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
import zipfile
from pathlib import Path
from typing import Any

from core.errors import ModelError

log = logging.getLogger(__name__)

ALLOWED_GLOBALS: frozenset[str] = frozenset(
    {
        # PyTorch layers
        "torch.nn.modules.activation.Hardsigmoid",
        "torch.nn.modules.activation.ReLU",
        "torch.nn.modules.activation.SiLU",
        "torch.nn.modules.batchnorm.BatchNorm2d",
        "torch.nn.modules.container.ModuleList",
        "torch.nn.modules.container.Sequential",
        "torch.nn.modules.conv.Conv2d",
        "torch.nn.modules.conv.ConvTranspose2d",
        "torch.nn.modules.linear.Identity",
        "torch.nn.modules.linear.Linear",
        "torch.nn.modules.normalization.GroupNorm",
        "torch.nn.modules.pooling.AdaptiveAvgPool2d",
        "torch.nn.modules.pooling.MaxPool2d",
        "torch.nn.modules.upsampling.Upsample",
        "torchvision.ops.deform_conv.DeformConv2d",
        # Ultralytics YOLO11 detect / segment
        "ultralytics.nn.modules.block.Attention",
        "ultralytics.nn.modules.block.Bottleneck",
        "ultralytics.nn.modules.block.C2PSA",
        "ultralytics.nn.modules.block.C3k",
        "ultralytics.nn.modules.block.C3k2",
        "ultralytics.nn.modules.block.DFL",
        "ultralytics.nn.modules.block.PSABlock",
        "ultralytics.nn.modules.block.Proto",
        "ultralytics.nn.modules.block.SPPF",
        "ultralytics.nn.modules.conv.Concat",
        "ultralytics.nn.modules.conv.Conv",
        "ultralytics.nn.modules.conv.DWConv",
        "ultralytics.nn.modules.head.Detect",
        "ultralytics.nn.modules.head.Segment",
        "ultralytics.nn.tasks.DetectionModel",
        "ultralytics.nn.tasks.SegmentationModel",
        # the project's variants (models/modules.py)
        "models.modules.BottleneckSCConv",
        "models.modules.C3k2_SCConv",
        "models.modules.C3kSCConv",
        "models.modules.CRU",
        "models.modules.DyDetect",
        "models.modules.DyHeadBlock",
        "models.modules.DyReLU",
        "models.modules.SCConv",
        "models.modules.SRU",
        # plain data some checkpoints keep in their training metrics
        "numpy.dtype",
        "numpy.core.multiarray.scalar",
        "numpy._core.multiarray.scalar",
        "numpy.dtypes.Float64DType",
        "numpy.dtypes.Float32DType",
    }
)

_LIBRARY_LAYERS = ("ultralytics.nn.modules.", "ultralytics.nn.tasks.", "torch.nn.modules.")
_SELF_REGISTERED = ("models.modules.", "torchvision.ops.")


def _resolve(name: str) -> Any:
    module, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(module), attr)


def referenced_globals(path: Path) -> set[str]:
    """The classes and functions a checkpoint's pickle refers to, read without unpickling.

    Raises :class:`ModelError` for a file that is not a PyTorch zip checkpoint (a legacy or
    plain pickle can only be inspected by running it, so it is refused).
    """
    import torch

    if not zipfile.is_zipfile(path):
        raise ModelError(
            f"{path.name} is not a PyTorch checkpoint archive (a plain pickle "
            "or another file type); it was not loaded."
        )
    try:
        return set(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except Exception as exc:  # a damaged archive
        raise ModelError(
            f"{path.name} is a damaged checkpoint archive; it was not loaded."
        ) from exc


def safe_loader_on() -> bool:
    """Whether Ultralytics unpickles with ``weights_only=True`` in this process: its flag as it
    read it when imported, or (not imported yet) what it will read."""
    utils = sys.modules.get("ultralytics.utils")
    if utils is not None:
        return bool(getattr(utils, "SAFE_LOAD", False))
    flag = os.environ.get("ULTRALYTICS_SAFE_LOAD", "").strip().lower()
    return flag in ("1", "true", "yes", "on", "y", "t")  # Ultralytics' env_bool


def check_weights(path: Path | str) -> None:
    """Refuse a ``.pt`` file that references anything a real YOLO checkpoint does not, and any
    load in a process whose entry point did not turn the safe loader on.

    Allowed project classes are registered with PyTorch's safe unpickler, so the following
    ``weights_only=True`` load can rebuild them.
    """
    import torch

    path = Path(path)
    if not safe_loader_on():
        # fail closed: an entry point that forgot apply_offline_environment() would otherwise
        # let Ultralytics unpickle with weights_only=False
        raise ModelError(
            f"{path.name} was not loaded: this process did not turn on the safe weights loader "
            "(core.config.apply_offline_environment)."
        )
    found = referenced_globals(path)
    unknown = sorted(found - ALLOWED_GLOBALS)
    if unknown and all(name.startswith(_LIBRARY_LAYERS) for name in unknown):
        # layers of Ultralytics or PyTorch that detect/segment models do not use: a model of
        # another kind (classification, pose, oriented boxes ...), not a payload
        log.warning("refused %s: layers %s", path.name, ", ".join(unknown[:5]))
        raise ModelError(
            f"{path.name} is a model of a kind GloveWatch does not use (it needs "
            "a YOLO detection or segmentation model of gloved and bare hands)."
        )
    if unknown:
        log.warning("refused %s: it references %s", path.name, ", ".join(unknown[:5]))
        raise ModelError(
            f"{path.name} was refused: it contains code or object types that YOLO weights "
            f"never hold ({unknown[0]}{' and more' if len(unknown) > 1 else ''}), and loading "
            "it could run that code."
        )
    # Ultralytics' safe loader registers its own and torch.nn classes; the project's layers
    # and torchvision's deformable convolution (DyHead) are registered here.
    extra = [name for name in found if name.startswith(_SELF_REGISTERED)]
    if extra:
        torch.serialization.add_safe_globals([_resolve(name) for name in extra])


def allow_project_layers() -> None:
    """Register the project's own layers with PyTorch's safe unpickler for the whole process.

    :func:`check_weights` does this for a file it has checked; a training run needs it up
    front, because Ultralytics itself reloads the run's ``best.pt`` (final validation) and
    ``last.pt`` (resume) with the safe loader, which does not know ``models.modules``.
    """
    import torch

    torch.serialization.add_safe_globals(
        [_resolve(name) for name in sorted(ALLOWED_GLOBALS) if name.startswith(_SELF_REGISTERED)]
    )


def quarantine(path: Path, folder: Path) -> None:
    """Delete a refused upload, but only inside ``folder`` (the uploads folder)."""
    try:
        if path.resolve().is_relative_to(folder.resolve()):
            path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not delete refused upload %s: %s", path.name, exc)
