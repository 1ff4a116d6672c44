"""Stations, their glove rules and danger zones, versioned in the store.

A station rule says which hands are a violation there: with ``gloves_required`` a bare hand
(or a glove class that is not in ``allowed``) is one; with ``no_gloves`` (rotating spindles,
where a glove can be pulled in) any glove is one. Danger zones are polygons in normalized
image coordinates (0..1), so they survive a change of camera resolution. An offence whose hand
centre lies inside a zone is critical, elsewhere a warning. Every save is a new version; an
episode records the version it was judged by.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass, field, replace
from enum import StrEnum

import cv2
import numpy as np

from core import store as st
from core.compliance import Role
from core.detector import Detection
from core.tiling import TileSpec, TilingError

DEFAULT_STATION = "default"


class Polarity(StrEnum):
    """What counts as the hazard at a station."""

    GLOVES_REQUIRED = "gloves_required"
    NO_GLOVES = "no_gloves"


class Severity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


class RuleError(ValueError):
    """A station rule or zone that cannot be used; the message says why."""


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
                raise RuleError(f"Zone '{self.name}': point ({x}, {y}) is outside 0..1; "
                                "zone points are fractions of the image width and height.")

    def contains(self, x: float, y: float) -> bool:
        """Whether the normalized point lies inside (or on the edge of) the polygon."""
        return point_in_polygon(x, y, self.points)

    def to_text(self) -> str:
        return f"{self.name}: " + " ".join(f"{x:g},{y:g}" for x, y in self.points)


def point_in_polygon(x: float, y: float, points: tuple[tuple[float, float], ...]) -> bool:
    """Even-odd ray casting; points on an edge count as inside."""
    inside = False
    n = len(points)
    for i in range(n):
        x1, y1 = points[i]
        x2, y2 = points[(i + 1) % n]
        # on the segment (collinear and within its bounding box)
        cross = (x2 - x1) * (y - y1) - (y2 - y1) * (x - x1)
        if abs(cross) < 1e-12 and min(x1, x2) <= x <= max(x1, x2) \
                and min(y1, y2) <= y <= max(y1, y2):
            return True
        if (y1 > y) != (y2 > y):
            x_cross = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
            if x < x_cross:
                inside = not inside
    return inside


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
class Offence:
    """Why one detection is a violation at a station."""

    severity: Severity
    zone: str | None
    reason: str


@dataclass(frozen=True)
class StationRule:
    """The glove rule and zones of one station at one version (0: never saved)."""

    station: str
    polarity: Polarity = Polarity.GLOVES_REQUIRED
    allowed: tuple[str, ...] = ()  # protected class names allowed; empty: any glove
    zones: tuple[Zone, ...] = field(default_factory=tuple)
    version: int = 0
    tiles: str = ""  # sliced inference for wide views ('320:0.25', see core.tiling); '' = off

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

    def judge(self, det: Detection, shape: tuple[int, int]) -> Offence | None:
        """The offence ``det`` commits at this station, or None if it is fine."""
        if self.polarity is Polarity.NO_GLOVES:
            if det.role is not Role.PROTECTED:
                return None
            reason = f"glove ({det.class_name}) at a no-gloves station"
        elif det.role is Role.VIOLATION:
            reason = f"bare hand ({det.class_name})"
        elif det.role is Role.PROTECTED and self.allowed and det.class_name not in self.allowed:
            reason = f"glove not allowed here ({det.class_name})"
        else:
            return None
        zone = self.zone_of(det.box, shape)
        return Offence(Severity.CRITICAL if zone else Severity.WARNING, zone, reason)

    def zone_of(self, box: tuple[float, float, float, float],
                shape: tuple[int, int]) -> str | None:
        """Name of the first zone holding the box centre, if any."""
        h, w = shape
        if not self.zones or not w or not h:
            return None
        cx, cy = (box[0] + box[2]) / 2 / w, (box[1] + box[3]) / 2 / h
        return next((z.name for z in self.zones if z.contains(cx, cy)), None)

    def to_json(self) -> str:
        return json.dumps({"polarity": str(self.polarity), "allowed": list(self.allowed),
                           "tiles": self.tiles,
                           "zones": [{"name": z.name, "points": [list(p) for p in z.points]}
                                     for z in self.zones]})

    @classmethod
    def from_json(cls, station: str, version: int, text: str) -> StationRule:
        data = json.loads(text)
        zones = tuple(Zone(z["name"], tuple((float(x), float(y)) for x, y in z["points"]))
                      for z in data.get("zones", []))
        return cls(station=station, polarity=Polarity(data.get("polarity", "gloves_required")),
                   allowed=tuple(data.get("allowed", ())), zones=zones, version=version,
                   tiles=data.get("tiles", ""))


def draw_zones(image: np.ndarray, rule: StationRule) -> np.ndarray:
    """A copy of ``image`` with the rule's danger zones outlined and named."""
    out = image.copy()
    h, w = out.shape[:2]
    for z in rule.zones:
        pts = np.array([[x * w, y * h] for x, y in z.points], dtype=np.int32)
        cv2.polylines(out, [pts], isClosed=True, color=(0, 140, 255), thickness=2)
        x, y = pts.min(axis=0)
        cv2.putText(out, z.name, (int(x) + 3, int(y) + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (0, 140, 255), 1, cv2.LINE_AA)
    return out


def _clean_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise RuleError("A station needs a name.")
    if len(name) > 80:
        raise RuleError("Station names are at most 80 characters.")
    return name


def save_rule(conn: sqlite3.Connection, rule: StationRule,
              author: str | None = None) -> StationRule:
    """Store ``rule`` as the station's next version (creating the station); returns it."""
    name = _clean_name(rule.station)
    with st.transaction(conn):
        conn.execute("INSERT INTO stations (name, created_at) VALUES (?, ?)"
                     " ON CONFLICT(name) DO UPDATE SET deleted_at=NULL", (name, st.now()))
        version = conn.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM station_rules"
                               " WHERE station=?", (name,)).fetchone()[0]
        saved = replace(rule, station=name, version=int(version))
        conn.execute("INSERT INTO station_rules (station, version, rule_json, created_at,"
                     " author) VALUES (?,?,?,?,?)",
                     (name, saved.version, saved.to_json(), st.now(), author))
    return saved


def current_rule(conn: sqlite3.Connection, station: str) -> StationRule:
    """Latest rule of ``station``; the default rule (version 0) if none was saved."""
    row = conn.execute("SELECT version, rule_json FROM station_rules WHERE station=?"
                       " ORDER BY version DESC LIMIT 1", (station,)).fetchone()
    if row is None:
        return StationRule(station=station)
    return StationRule.from_json(station, int(row["version"]), row["rule_json"])


@dataclass(frozen=True)
class RuleVersion:
    """One stored version of a station's rule, for the history table."""

    rule: StationRule
    created_at: str
    author: str | None


def rule_history(conn: sqlite3.Connection, station: str) -> list[RuleVersion]:
    """All versions of a station's rule, newest first."""
    rows = conn.execute("SELECT version, rule_json, created_at, author FROM station_rules"
                        " WHERE station=? ORDER BY version DESC", (station,)).fetchall()
    return [RuleVersion(StationRule.from_json(station, int(r["version"]), r["rule_json"]),
                        r["created_at"], r["author"]) for r in rows]


def list_stations(conn: sqlite3.Connection) -> list[str]:
    """Names of stations not deleted, always including the default station first."""
    names = [r[0] for r in conn.execute(
        "SELECT name FROM stations WHERE deleted_at IS NULL ORDER BY name")]
    return [DEFAULT_STATION] + [n for n in names if n != DEFAULT_STATION]


def delete_station(conn: sqlite3.Connection, station: str) -> None:
    """Hide a station from the lists; its rules and events stay for the audit trail."""
    conn.execute("UPDATE stations SET deleted_at=? WHERE name=?", (st.now(), station))
