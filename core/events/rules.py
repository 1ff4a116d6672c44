"""Station rules: which hands are a violation at a machine, and its danger zones.

The rule is the one judge of compliance everywhere: episodes, coverage, batch verdicts, table
roles, box colours and reports all ask :meth:`StationRule.judge`. With ``gloves_required`` a
bare hand (or a glove class that is not in ``allowed``) offends; with ``no_gloves`` (rotating
spindles, where a glove can be pulled in) any glove offends and a bare hand is compliant.
Danger zones are polygons in normalized image coordinates (0..1), so they survive a change
of camera resolution; an offence whose hand centre lies inside a zone is critical.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import cv2
import numpy as np

from core.config import DEFAULT_STATION
from core.errors import RuleError, TilingError
from core.vision.annotate import BoxStatus
from core.vision.detections import Detections, FrameDetections
from core.vision.roles import Role
from core.vision.tiling import TileSpec


class Polarity(StrEnum):
    """What counts as the hazard at a station."""

    GLOVES_REQUIRED = "gloves_required"
    NO_GLOVES = "no_gloves"


class Severity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


class Verdict(StrEnum):
    """A whole image or frame, judged by its station's rule."""

    COMPLIANT = "compliant"
    VIOLATION = "violation"
    NO_HANDS = "no hands seen"


def points_in_polygon(xy: np.ndarray, polygon: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Mask of the points (N, 2) inside the polygon (even-odd rule); edge points are inside."""
    pts = np.asarray(xy, np.float64).reshape(-1, 2)
    poly = np.asarray(polygon, np.float64)
    a, b = poly, np.roll(poly, -1, axis=0)  # edges a -> b
    x, y = pts[:, 0:1], pts[:, 1:2]  # (N, 1) against (M,) edges
    cross = (b[:, 0] - a[:, 0]) * (y - a[:, 1]) - (b[:, 1] - a[:, 1]) * (x - a[:, 0])
    within = (
        (np.minimum(a[:, 0], b[:, 0]) <= x)
        & (x <= np.maximum(a[:, 0], b[:, 0]))
        & (np.minimum(a[:, 1], b[:, 1]) <= y)
        & (y <= np.maximum(a[:, 1], b[:, 1]))
    )
    on_edge = ((np.abs(cross) < 1e-12) & within).any(axis=1)
    straddles = (a[:, 1] > y) != (b[:, 1] > y)
    dy = np.where(b[:, 1] == a[:, 1], 1.0, b[:, 1] - a[:, 1])
    x_cross = a[:, 0] + (y - a[:, 1]) * (b[:, 0] - a[:, 0]) / dy
    inside = (straddles & (x < x_cross)).sum(axis=1) % 2 == 1
    return inside | on_edge


@dataclass(frozen=True)
class Zone:
    """A named danger-zone polygon, points ``(x, y)`` normalized to 0..1."""

    name: str
    points: tuple[tuple[float, float], ...]

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise RuleError("A zone needs a name.")
        if len(self.points) < 3:
            raise RuleError(f"Zone '{self.name}' needs at least 3 points, got {len(self.points)}.")
        for x, y in self.points:
            if not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
                raise RuleError(
                    f"Zone '{self.name}': point ({x}, {y}) is outside 0..1; "
                    "zone points are fractions of the image width and height."
                )

    def contains(self, x: float, y: float) -> bool:
        """Whether the normalized point lies inside (or on the edge of) the polygon."""
        return bool(points_in_polygon(np.array([[x, y]]), self.points)[0])

    def to_text(self) -> str:
        return f"{self.name}: " + " ".join(f"{x:g},{y:g}" for x, y in self.points)


_POINT = re.compile(r"^\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*$")


def parse_zone(line: str) -> Zone:
    """Parse ``"blade: 0.4,0.3 0.6,0.3 0.6,0.7 0.4,0.7"`` into a :class:`Zone`."""
    name, sep, rest = line.partition(":")
    if not sep:
        raise RuleError(f"'{line.strip()}': write a zone as 'name: x,y x,y x,y ...'.")
    points = []
    for token in rest.split():
        m = _POINT.match(token)
        if not m:
            raise RuleError(f"Zone '{name.strip()}': '{token}' is not a point 'x,y'.")
        points.append((float(m.group(1)), float(m.group(2))))
    return Zone(name.strip(), tuple(points))


def parse_zones(text: str) -> tuple[Zone, ...]:
    """One zone per non-empty line (see :func:`parse_zone`); names must be unique."""
    zones = tuple(parse_zone(line) for line in text.splitlines() if line.strip())
    names = [z.name for z in zones]
    if len(set(names)) != len(names):
        raise RuleError("Zone names must be unique at a station.")
    return zones


@dataclass(frozen=True)
class Judgement:
    """A station rule's decision on every detection of one frame (arrays, one per box)."""

    status: np.ndarray  # BoxStatus values
    severity: np.ndarray  # Severity values (meaningful where offending)
    zone: np.ndarray  # zone name or None
    reason: np.ndarray  # why it offends, or None

    @property
    def offending(self) -> np.ndarray:
        return self.status == str(BoxStatus.VIOLATING)

    @property
    def compliant(self) -> int:
        return int(np.count_nonzero(self.status == str(BoxStatus.COMPLIANT)))

    @property
    def violating(self) -> int:
        return int(np.count_nonzero(self.offending))

    @property
    def verdict(self) -> Verdict:
        if self.violating:
            return Verdict.VIOLATION
        return Verdict.COMPLIANT if self.compliant else Verdict.NO_HANDS


@dataclass(frozen=True)
class StationRule:
    """The glove rule and zones of one station at one version (0: never saved)."""

    station: str = DEFAULT_STATION
    polarity: Polarity = Polarity.GLOVES_REQUIRED
    allowed: tuple[str, ...] = ()  # protected class names allowed; empty: any glove
    zones: tuple[Zone, ...] = field(default_factory=tuple)
    version: int = 0
    tiles: str = ""  # sliced inference for wide views ('320:0.25', see core.vision.tiling)

    def __post_init__(self) -> None:
        if self.tiles:
            try:
                TileSpec.parse(self.tiles)
            except TilingError as exc:
                raise RuleError(str(exc)) from exc

    @property
    def tile_spec(self) -> TileSpec | None:
        """The station's tiling, or None for full-frame inference."""
        return TileSpec.parse(self.tiles) if self.tiles else None

    def describe(self) -> str:
        """The rule in a few words, for captions."""
        if self.polarity is Polarity.NO_GLOVES:
            text = "no gloves (any glove is a violation)"
        elif self.allowed:
            text = f"gloves required, only {', '.join(self.allowed)}"
        else:
            text = "gloves required (any glove)"
        zones = f"; danger zones {', '.join(z.name for z in self.zones)}" if self.zones else ""
        return f"rule v{self.version}: {text}{zones}"

    def judge(self, dets: Detections, shape: tuple[int, int]) -> Judgement:
        """Each detection's status, severity, zone and reason at this station."""
        n = len(dets)
        gloved, bare = dets.with_role(Role.PROTECTED), dets.with_role(Role.VIOLATION)
        reason = np.full(n, None, dtype=object)
        if self.polarity is Polarity.NO_GLOVES:
            offending, compliant = gloved, bare
            reason[offending] = [
                f"glove ({c}) at a no-gloves station" for c in dets.class_name[offending]
            ]
        else:
            wrong_glove = (
                gloved & ~np.isin(dets.class_name.astype(str), self.allowed)
                if self.allowed
                else np.zeros(n, bool)
            )
            offending, compliant = bare | wrong_glove, gloved & ~wrong_glove
            reason[bare] = [f"bare hand ({c})" for c in dets.class_name[bare]]
            reason[wrong_glove] = [
                f"glove not allowed here ({c})" for c in dets.class_name[wrong_glove]
            ]
        status = np.full(n, str(BoxStatus.CONTEXT), dtype="<U9")
        status[compliant] = str(BoxStatus.COMPLIANT)
        status[offending] = str(BoxStatus.VIOLATING)
        zone = self.zones_of(dets, shape)
        severity = np.where(
            offending & (zone != None),  # noqa: E711 (element-wise on an object array)
            str(Severity.CRITICAL),
            str(Severity.WARNING),
        )
        return Judgement(status, severity, zone, reason)

    def judge_frame(self, frame: FrameDetections) -> Judgement:
        return self.judge(frame.detections, frame.shape)

    def zones_of(self, dets: Detections, shape: tuple[int, int]) -> np.ndarray:
        """Name of the first zone holding each box centre (None outside every zone)."""
        out = np.full(len(dets), None, dtype=object)
        h, w = shape
        if not self.zones or not w or not h or not len(dets):
            return out
        centres = dets.centers / np.array([w, h], np.float32)
        for z in reversed(self.zones):  # the first matching zone wins
            out[points_in_polygon(centres, z.points)] = z.name
        return out

    def to_json(self) -> str:
        return json.dumps(
            {
                "polarity": str(self.polarity),
                "allowed": list(self.allowed),
                "tiles": self.tiles,
                "zones": [
                    {"name": z.name, "points": [list(p) for p in z.points]} for z in self.zones
                ],
            }
        )

    @classmethod
    def from_json(cls, station: str, version: int, text: str) -> StationRule:
        data: dict[str, Any] = json.loads(text)
        zones = tuple(
            Zone(z["name"], tuple((float(x), float(y)) for x, y in z["points"]))
            for z in data.get("zones", [])
        )
        return cls(
            station=station,
            polarity=Polarity(data.get("polarity", "gloves_required")),
            allowed=tuple(data.get("allowed", ())),
            zones=zones,
            version=version,
            tiles=data.get("tiles", ""),
        )


def draw_zones(image: np.ndarray, rule: StationRule) -> np.ndarray:
    """A copy of ``image`` with the rule's danger zones outlined and named."""
    out = image.copy()
    h, w = out.shape[:2]
    for z in rule.zones:
        pts = np.array([[x * w, y * h] for x, y in z.points], dtype=np.int32)
        cv2.polylines(out, [pts], isClosed=True, color=(0, 140, 255), thickness=2)
        x, y = pts.min(axis=0)
        cv2.putText(
            out,
            z.name,
            (int(x) + 3, int(y) + 16),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            (0, 140, 255),
            1,
            cv2.LINE_AA,
        )
    return out
