"""Drawn workshop scenes: evidence images for the demo year, so that review can be tried.

Each scene is drawn with OpenCV shapes (a machine table, a blade, a gloved hand and a bare
one), never a photo of a person, and saved through the same :class:`EvidenceWriter` the live
pipeline uses: a redacted frame, the hand crop and the boxes beside them.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from core.events.evidence import EvidenceWriter
from core.vision.annotate import BoxStatus
from core.vision.detections import Detections
from core.vision.roles import Role

WIDTH, HEIGHT = 640, 400
SKIN = ((140, 170, 225), (110, 145, 200), (90, 120, 170), (70, 95, 140))  # BGR tones
GLOVES = ((200, 120, 40), (40, 160, 230), (60, 60, 60), (30, 140, 60))


@dataclass(frozen=True)
class SceneFiles:
    """Where one drawn episode's evidence went."""

    frame: str
    crop: str


def _hand(
    img: np.ndarray, cx: int, cy: int, size: int, colour: tuple[int, ...]
) -> tuple[int, int, int, int]:
    """A cartoon hand (palm and four fingers, a thumb) centred at (cx, cy); returns its box."""
    palm = (cx - size // 2, cy - size // 3, cx + size // 2, cy + size // 2)
    cv2.rectangle(img, palm[:2], palm[2:], colour, -1)
    finger = max(4, size // 6)
    for i in range(4):
        x = palm[0] + i * (size // 4) + finger // 3
        cv2.rectangle(img, (x, palm[1] - size // 2), (x + finger, palm[1]), colour, -1)
    cv2.ellipse(img, (palm[0], cy), (size // 3, finger // 2 + 2), 30, 0, 360, colour, -1)
    edge = tuple(int(c * 0.7) for c in colour)  # a darker outline
    cv2.rectangle(img, palm[:2], palm[2:], edge, 1)
    return (palm[0] - size // 3, palm[1] - size // 2, palm[2], palm[3])


def draw_scene(rng: np.random.Generator) -> tuple[np.ndarray, Detections, np.ndarray]:
    """A machine table with a blade, one bare hand near it and (often) a gloved one."""
    img = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    img[:] = np.linspace(90, 150, HEIGHT, dtype=np.uint8)[:, None, None]  # wall to floor
    cv2.rectangle(img, (40, 230), (600, 380), (70, 80, 90), -1)  # the table
    blade = (int(rng.integers(220, 420)), 250)
    cv2.circle(img, blade, 70, (180, 180, 190), -1)
    cv2.circle(img, blade, 70, (90, 90, 100), 3)
    cv2.circle(img, blade, 10, (60, 60, 60), -1)
    boxes, names, roles, conf = [], [], [], []
    size = int(rng.integers(60, 95))
    bare = (blade[0] + int(rng.integers(-120, 120)), int(rng.integers(150, 300)))
    boxes.append(_hand(img, *bare, size, SKIN[int(rng.integers(len(SKIN)))]))
    names.append("hand")
    roles.append(Role.VIOLATION)
    conf.append(float(rng.uniform(0.5, 0.95)))
    if rng.random() < 0.7:
        other = (int(rng.integers(60, 580)), int(rng.integers(120, 320)))
        boxes.append(_hand(img, *other, size, GLOVES[int(rng.integers(len(GLOVES)))]))
        names.append("glove")
        roles.append(Role.PROTECTED)
        conf.append(float(rng.uniform(0.5, 0.95)))
    xyxy = np.clip(np.array(boxes, np.float32), 0, [WIDTH - 1, HEIGHT - 1, WIDTH - 1, HEIGHT - 1])
    dets = Detections(
        xyxy,
        np.array(conf, np.float32),
        np.array([1 if n == "hand" else 0 for n in names]),
        np.array(names, object),
        np.array([str(r) for r in roles]),
    )
    status = np.array(
        [str(BoxStatus.VIOLATING if n == "hand" else BoxStatus.COMPLIANT) for n in names]
    )
    return img, dets, status


def save_scene(
    writer: EvidenceWriter, rng: np.random.Generator, station: str, stem: str, day: str
) -> SceneFiles | None:
    """Draw one scene and save it as an episode's evidence, as the recorder does: the frame
    redacted but for the offending hand, its crop, the boxes beside them (None: not saved)."""
    img, dets, status = draw_scene(rng)
    x1, y1, x2, y2 = (float(v) for v in dets.xyxy[0])
    saved = writer.save(img, dets, status, (x1, y1, x2, y2), station, stem, day)
    if saved is None:
        return None
    return SceneFiles(str(saved.frame_path), str(saved.crop_path))
