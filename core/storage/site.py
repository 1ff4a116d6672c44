"""Frames collected at each station for the on-site adaptation loop, and their label history."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, insert, select, update

from core.storage import schema as t
from core.storage.database import Database, new_id, now


@dataclass(frozen=True)
class FrameRecord:
    id: int
    station: str
    file: str  # relative to the data folder
    source: str
    captured_at: str
    phash: str
    uncertainty: float
    block: int
    split: str  # train | holdout
    status: str  # new | prelabelled | done
    boxes: list[dict[str, Any]]  # [{"class_id", "x1", "y1", "x2", "y2"} in 0..1]
    prelabel_model: str | None
    updated_at: str | None
    updated_by: str | None


@dataclass(frozen=True)
class LabelChange:
    frame_id: int
    at: str
    by: str
    action: str
    boxes: list[dict[str, Any]]


@dataclass(frozen=True)
class StationCounts:
    station: str
    total: int
    new: int
    prelabelled: int
    done: int
    holdout: int
    holdout_done: int


def _frame(row: Any) -> FrameRecord:
    m = dict(row._mapping)
    m["boxes"] = json.loads(m.pop("boxes_json") or "[]")
    return FrameRecord(**m)


class SiteRepo:
    def __init__(self, db: Database):
        self.db = db

    def add(
        self,
        station: str,
        file: str,
        source: str,
        captured_at: str,
        phash: str,
        uncertainty: float,
        block: int,
        split: str,
        boxes: list[dict[str, Any]] | None = None,
        status: str = "new",
        model: str | None = None,
        by: str = "-",
    ) -> int:
        with self.db.write() as c:
            fid = new_id(
                c.execute(
                    insert(t.site_frames).values(
                        station=station,
                        file=file,
                        source=source,
                        captured_at=captured_at,
                        phash=phash,
                        uncertainty=uncertainty,
                        block=block,
                        split=split,
                        status=status,
                        boxes_json=json.dumps(boxes or []),
                        prelabel_model=model,
                        updated_at=now(),
                        updated_by=by,
                    )
                )
            )
            if boxes is not None:
                c.execute(
                    insert(t.label_changes).values(
                        frame_id=fid,
                        at=now(),
                        by=by,
                        action="prelabel" if model else "import",
                        boxes_json=json.dumps(boxes),
                    )
                )
        return fid

    def recent_hashes(self, station: str, limit: int = 500) -> list[str]:
        f = t.site_frames
        with self.db.read() as c:
            return [
                r[0]
                for r in c.execute(
                    select(f.c.phash)
                    .where(f.c.station == station)
                    .order_by(f.c.id.desc())
                    .limit(limit)
                )
            ]

    def block_splits(self, station: str) -> dict[int, str]:
        """The side (train / holdout) each of the station's blocks is on."""
        f = t.site_frames
        with self.db.read() as c:
            return {
                int(r[0]): r[1]
                for r in c.execute(
                    select(f.c.block, f.c.split).where(f.c.station == station).distinct()
                )
            }

    def untimed_blocks(self, station: str) -> list[tuple[str, int]]:
        """(hash, block) of the station's frames that carry no capture time (block < 0)."""
        f = t.site_frames
        with self.db.read() as c:
            return [
                (r[0], int(r[1]))
                for r in c.execute(
                    select(f.c.phash, f.c.block).where(f.c.station == station, f.c.block < 0)
                )
            ]

    def get(self, frame_id: int) -> FrameRecord | None:
        with self.db.read() as c:
            row = c.execute(select(t.site_frames).where(t.site_frames.c.id == frame_id)).first()
        return _frame(row) if row else None

    def frames(
        self, station: str, status: Sequence[str] | None = None, split: str | None = None
    ) -> list[FrameRecord]:
        """Frames of a station, most uncertain first within capture order of status."""
        f = t.site_frames
        q = select(f).where(f.c.station == station)
        if status:
            q = q.where(f.c.status.in_(status))
        if split:
            q = q.where(f.c.split == split)
        q = q.order_by(f.c.captured_at, f.c.id)
        with self.db.read() as c:
            return [_frame(r) for r in c.execute(q)]

    def set_labels(
        self,
        frame_id: int,
        boxes: list[dict[str, Any]],
        by: str,
        action: str,
        status: str | None = None,
        model: str | None = None,
    ) -> None:
        """New boxes for a frame, kept in the label history with who and when."""
        values: dict[str, Any] = {
            "boxes_json": json.dumps(boxes),
            "updated_at": now(),
            "updated_by": by,
        }
        if status:
            values["status"] = status
        if model:
            values["prelabel_model"] = model
        with self.db.write() as c:
            c.execute(update(t.site_frames).where(t.site_frames.c.id == frame_id).values(**values))
            c.execute(
                insert(t.label_changes).values(
                    frame_id=frame_id, at=now(), by=by, action=action, boxes_json=json.dumps(boxes)
                )
            )

    def history(self, frame_id: int) -> list[LabelChange]:
        lc = t.label_changes
        with self.db.read() as c:
            return [
                LabelChange(r.frame_id, r.at, r.by, r.action, json.loads(r.boxes_json))
                for r in c.execute(select(lc).where(lc.c.frame_id == frame_id).order_by(lc.c.id))
            ]

    def counts(self) -> list[StationCounts]:
        """Frames per station by status and split."""
        f = t.site_frames
        q = (
            select(
                f.c.station,
                func.count(),
                func.sum(case((f.c.status == "new", 1), else_=0)),
                func.sum(case((f.c.status == "prelabelled", 1), else_=0)),
                func.sum(case((f.c.status == "done", 1), else_=0)),
                func.sum(case((f.c.split == "holdout", 1), else_=0)),
                func.sum(case(((f.c.split == "holdout") & (f.c.status == "done"), 1), else_=0)),
            )
            .group_by(f.c.station)
            .order_by(f.c.station)
        )
        with self.db.read() as c:
            return [StationCounts(r[0], *(int(v or 0) for v in r[1:])) for r in c.execute(q)]
