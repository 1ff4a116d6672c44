"""One frame's detections held column by column, as roboflow/supervision's ``Detections``.

Every stage after the model (tiling, tracking, rules, episodes, evidence, drawing, scoring)
takes and returns :class:`Detections`: whole-array operations (filtering by a boolean mask,
concatenation, shifting) instead of per-box Python objects, so the live path stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from core.vision.roles import Role

_ROLE_DTYPE = "<U9"  # "protected" is the longest role


def _column(values: object, dtype: object, n: int | None, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=dtype)  # type: ignore[call-overload]
    if arr.ndim != 1 or (n is not None and len(arr) != n):
        raise ValueError(
            f"Detections.{name} must have one value per box ({n}), got shape {arr.shape}."
        )
    return arr


@dataclass(frozen=True, eq=False)
class Detections:
    """N detected objects in pixel coordinates of one image.

    ``xyxy`` (N, 4) boxes; ``confidence``, ``class_id``, ``class_name`` and ``role`` one value
    per box; ``tracker_id`` (or None when untracked, -1 for a box the tracker has not
    confirmed); ``polygons`` the outlines of segmentation masks as (K, 2) arrays (or None).
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    class_name: np.ndarray
    role: np.ndarray
    tracker_id: np.ndarray | None = None
    polygons: np.ndarray | Sequence[np.ndarray | None] | None = None  # (K, 2) outlines

    def __post_init__(self) -> None:
        xyxy = (
            np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
            if np.size(self.xyxy)
            else np.zeros((0, 4), np.float32)
        )
        n = len(xyxy)
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(
            self, "confidence", _column(self.confidence, np.float32, n, "confidence")
        )
        object.__setattr__(self, "class_id", _column(self.class_id, np.int64, n, "class_id"))
        object.__setattr__(self, "class_name", _column(self.class_name, object, n, "class_name"))
        object.__setattr__(self, "role", _column(self.role, _ROLE_DTYPE, n, "role"))
        if self.tracker_id is not None:
            object.__setattr__(
                self, "tracker_id", _column(self.tracker_id, np.int64, n, "tracker_id")
            )
        if self.polygons is not None:
            polys = np.empty(n, dtype=object)
            if len(self.polygons) != n:
                raise ValueError(
                    f"Detections.polygons must have {n} entries, got {len(self.polygons)}."
                )
            polys[:] = list(self.polygons)
            object.__setattr__(self, "polygons", polys)
        bad = (xyxy[:, 2] < xyxy[:, 0]) | (xyxy[:, 3] < xyxy[:, 1])
        if bad.any():
            raise ValueError("Detections.xyxy holds boxes with x2 < x1 or y2 < y1.")

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def empty(cls, tracked: bool = False) -> Detections:
        """No detections (with an empty ``tracker_id`` column when ``tracked``)."""
        return cls(
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32),
            np.zeros(0, np.int64),
            np.zeros(0, object),
            np.zeros(0, _ROLE_DTYPE),
            np.zeros(0, np.int64) if tracked else None,
        )

    @classmethod
    def from_arrays(
        cls,
        xyxy: np.ndarray,
        confidence: np.ndarray,
        class_id: np.ndarray,
        names: Mapping[int, str],
        roles: Mapping[int, Role],
        tracker_id: np.ndarray | None = None,
        polygons: Sequence[np.ndarray] | None = None,
    ) -> Detections:
        """Detections of a model whose classes are ``names`` with ``roles``."""
        class_id = np.asarray(class_id, dtype=np.int64)
        name_of = np.vectorize(lambda c: names.get(int(c), str(c)), otypes=[object])
        role_of = np.vectorize(lambda c: str(roles.get(int(c), Role.CONTEXT)), otypes=[_ROLE_DTYPE])
        return cls(
            xyxy,
            confidence,
            class_id,
            name_of(class_id) if len(class_id) else np.zeros(0, object),
            role_of(class_id) if len(class_id) else np.zeros(0, _ROLE_DTYPE),
            tracker_id,
            None if polygons is None else list(polygons),
        )

    @classmethod
    def merge(cls, parts: Sequence[Detections]) -> Detections:
        """All detections of ``parts`` in one object (columns missing in any part dropped)."""
        parts = [p for p in parts if len(p)] or list(parts[:1])
        if not parts:
            return cls.empty()
        tracked = all(p.tracker_id is not None for p in parts)
        with_polys = all(p.polygons is not None for p in parts)
        return cls(
            np.concatenate([p.xyxy for p in parts]),
            np.concatenate([p.confidence for p in parts]),
            np.concatenate([p.class_id for p in parts]),
            np.concatenate([p.class_name for p in parts]),
            np.concatenate([p.role for p in parts]),
            np.concatenate([p.tracker_id for p in parts if p.tracker_id is not None])
            if tracked
            else None,
            np.concatenate(
                [np.asarray(p.polygons, dtype=object) for p in parts if p.polygons is not None]
            )
            if with_polys
            else None,
        )

    # -- selection ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: np.ndarray | slice | int | Sequence[int]) -> Detections:
        """The detections selected by a boolean mask, index array, slice or single index."""
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return Detections(
            self.xyxy[index],
            self.confidence[index],
            self.class_id[index],
            self.class_name[index],
            self.role[index],
            None if self.tracker_id is None else self.tracker_id[index],
            None if self.polygons is None else np.asarray(self.polygons, dtype=object)[index],
        )

    def with_role(self, role: Role) -> np.ndarray:
        """Boolean mask of the detections with ``role``."""
        return self.role == str(role)

    @property
    def hands(self) -> np.ndarray:
        """Boolean mask of gloved and bare hands (context classes left out)."""
        return (self.role == str(Role.PROTECTED)) | (self.role == str(Role.VIOLATION))

    def count(self, role: Role) -> int:
        return int(np.count_nonzero(self.with_role(role)))

    def by_confidence(self) -> Detections:
        """The same detections, most confident first."""
        return self[np.argsort(-self.confidence, kind="stable")]

    # -- geometry ----------------------------------------------------------------------------
    @property
    def centers(self) -> np.ndarray:
        """(N, 2) box centres."""
        return (self.xyxy[:, :2] + self.xyxy[:, 2:]) / 2

    @property
    def area(self) -> np.ndarray:
        return (self.xyxy[:, 2] - self.xyxy[:, 0]) * (self.xyxy[:, 3] - self.xyxy[:, 1])

    def shifted(self, dx: float, dy: float) -> Detections:
        """The detections moved by (dx, dy) pixels (tile to frame coordinates)."""
        polys = None
        if self.polygons is not None:
            offset = np.array([dx, dy], np.float32)
            polys = [p + offset if p is not None else None for p in self.polygons]
        return replace(
            self, xyxy=self.xyxy + np.array([dx, dy, dx, dy], np.float32), polygons=polys
        )

    def with_tracker_ids(self, tracker_id: np.ndarray | None) -> Detections:
        return replace(self, tracker_id=tracker_id)

    def box(self, i: int) -> tuple[float, float, float, float]:
        """Box ``i`` as a plain tuple (for storage and messages)."""
        x1, y1, x2, y2 = (float(v) for v in self.xyxy[i])
        return x1, y1, x2, y2


@dataclass(frozen=True)
class FrameDetections:
    """The detections of one image or video frame, its size and the inference time."""

    detections: Detections
    shape: tuple[int, int]  # height, width
    inference_ms: float = 0.0

    def __len__(self) -> int:
        return len(self.detections)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix (len(a), len(b)) of two sets of xyxy boxes."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(2)
    area_a = (a[:, 2:] - a[:, :2]).prod(1)
    area_b = (b[:, 2:] - b[:, :2]).prod(1)
    return inter / (area_a[:, None] + area_b[None, :] - inter + 1e-9)
