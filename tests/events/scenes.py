"""Scripted recordings for events and analytics tests: real class names, real images, the real
recorder and store.

A *script* is a list of ``(t, Detections)``: what a tracked detector would have reported at
time ``t`` (seconds since the start of the recording). :func:`record` feeds it through
:class:`EpisodeRecorder` and :class:`StoreSink` into the store, with evidence written to the
data folder, exactly as live monitoring does.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np

from core.config import settings
from core.events.episodes import EpisodeConfig
from core.events.evidence import EvidenceWriter
from core.events.recorder import EpisodeRecorder, RecordingContext
from core.events.rules import StationRule
from core.events.sinks import StoreSink
from core.media import read_image
from core.storage import Store
from core.vision.detections import Detections, FrameDetections
from core.vision.roles import ClassRoles

# The shipped model's classes (glove, hand) plus classes other plant models have.
NAMES = {0: "glove", 1: "hand", 2: "glove_steel", 3: "head"}
ROLES = ClassRoles.from_names(NAMES)
ID_OF = {n: i for i, n in NAMES.items()}

Box = tuple[float, float, float, float]
Hand = tuple[str, Box, float, int]  # class name, box, confidence, tracker id


def dets(*hands: Hand, tracked: bool = True) -> Detections:
    """Detections of real class names with their model roles."""
    if not hands:
        return Detections.empty(tracked=tracked)
    return Detections.from_arrays(
        np.array([h[1] for h in hands], np.float32),
        np.array([h[2] for h in hands]),
        np.array([ID_OF[h[0]] for h in hands]),
        ROLES.names,
        ROLES.roles,
        tracker_id=np.array([h[3] for h in hands]) if tracked else None,
    )


def hand(name: str, box: Box, conf: float = 0.8, track: int = 1) -> Hand:
    return (name, box, conf, track)


def every(step: float, start: float, stop: float, d: Detections) -> list[tuple[float, Detections]]:
    """The same detections every ``step`` seconds from ``start`` to ``stop`` inclusive."""
    n = int(round((stop - start) / step))
    return [(round(start + i * step, 6), d) for i in range(n + 1)]


def load(path: Path) -> np.ndarray:
    return read_image(path)


def record(
    store: Store,
    rule: StationRule,
    script: Iterable[tuple[float, Detections]],
    image: np.ndarray,
    started: datetime,
    session_id: int | None = None,
    source: str = "camera 1",
    evidence: bool = True,
    coverage: bool = True,
    config: EpisodeConfig | None = None,
    model_hash: str | None = "ab" * 32,
    model_name: str | None = "gloves-yolo11n-wide.pt",
) -> EpisodeRecorder:
    """Feed ``script`` (frames showing ``image``) through a recorder into ``store``."""
    ctx = RecordingContext(
        rule.station,
        session_id=session_id,
        source=source,
        model_hash=model_hash,
        model_name=model_name,
        thresholds={"conf": 0.25},
        started=started,
    )
    writer = EvidenceWriter(settings().evidence_dir) if evidence else None
    rec = EpisodeRecorder(ctx, rule, StoreSink(store), config, writer, coverage=coverage)
    shape = image.shape[:2]
    for i, (t, d) in enumerate(script):
        rec.process(t, FrameDetections(d, shape, 1.0), image, i)
    rec.finish()
    return rec


def boxes_of(d: Detections) -> Sequence[Box]:
    return [d.box(i) for i in range(len(d))]
