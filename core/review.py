"""Episode review (confirmed / dismissed / unreviewed, with an audit trail), viewing an
episode's evidence, and the export of reviewed evidence as a YOLO data set for retraining.

A dismissed episode is a false alarm: :mod:`core.history` leaves it out of the figures. The
review decides the label of the exported violation boxes: confirmed -> the bare-hand class,
dismissed -> the gloved-hand class (or no box at all with ``dismissed_as='background'``, for
false alarms that were not hands).
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from core import store as st
from core.history import REVIEW_STATES, Episode, HistoryFilter, data_span, episodes
from core.media import MediaError, read_image

log = logging.getLogger(__name__)

EXPORT_NAMES = {0: "glove", 1: "hand"}  # the shipped model's class order


@dataclass(frozen=True)
class ReviewEntry:
    """One review decision in an episode's audit trail."""

    event_id: int
    review: str
    comment: str | None
    reviewed_by: str | None
    reviewed_at: str


def set_review(conn: sqlite3.Connection, event_id: int, review: str, comment: str = "",
               reviewed_by: str = "") -> ReviewEntry:
    """Mark an episode confirmed, dismissed or unreviewed; every decision is kept in
    ``event_reviews``. Raises ``ValueError`` for an unknown state or episode."""
    if review not in REVIEW_STATES:
        raise ValueError(f"Review must be one of {', '.join(REVIEW_STATES)}, not {review!r}.")
    entry = ReviewEntry(event_id, review, comment.strip() or None, reviewed_by.strip() or None,
                        st.now())
    with st.transaction(conn):
        cur = conn.execute(
            "UPDATE events SET review=?, review_comment=?, reviewed_by=?, reviewed_at=?"
            " WHERE id=?", (review, entry.comment, entry.reviewed_by,
                            entry.reviewed_at if review != "unreviewed" else None, event_id))
        if cur.rowcount == 0:
            raise ValueError(f"There is no episode #{event_id} (deleted or never stored).")
        conn.execute("INSERT INTO event_reviews (event_id, review, comment, reviewed_by,"
                     " reviewed_at) VALUES (?,?,?,?,?)",
                     (event_id, review, entry.comment, entry.reviewed_by, entry.reviewed_at))
    log.info("episode %s marked %s by %s", event_id, review, entry.reviewed_by or "-")
    return entry


def review_history(conn: sqlite3.Connection, event_id: int) -> list[ReviewEntry]:
    """All review decisions of an episode, oldest first."""
    return [ReviewEntry(*r) for r in conn.execute(
        "SELECT event_id, review, comment, reviewed_by, reviewed_at FROM event_reviews"
        " WHERE event_id=? ORDER BY id", (event_id,))]


@dataclass
class ExportReport:
    """What :func:`export_reviewed` wrote and what it had to skip (with the reason)."""

    path: Path
    images: int = 0
    boxes: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)


def _detections_of(conn: sqlite3.Connection, session_id: int | None, source: str | None,
                   frame: int | None) -> list[sqlite3.Row]:
    return conn.execute(
        "SELECT d.role, d.x1, d.y1, d.x2, d.y2 FROM detections d"
        " JOIN results r ON r.id = d.result_id"
        " WHERE r.session_id = ? AND r.source IS ? AND r.frame = ?",
        (session_id, source, frame or 0)).fetchall()


def export_reviewed(conn: sqlite3.Connection, out_dir: Path, f: HistoryFilter | None = None,
                    dismissed_as: str = "glove", limit: int = 100_000) -> ExportReport:
    """Write reviewed episodes' evidence frames and labels as a YOLO detection data set
    (``images/train``, ``labels/train``, ``data.yaml``) under ``out_dir``.

    Boxes come from the stored detections of the episode's frame: gloved hands stay class 0,
    violation boxes become class 1 when the episode was confirmed, class 0 when dismissed (or
    are dropped with ``dismissed_as='background'``); context classes are left out. Episodes
    without readable evidence or stored detections are skipped with the reason.
    """
    if dismissed_as not in ("glove", "background"):
        raise ValueError("dismissed_as is 'glove' or 'background'")
    out_dir = Path(out_dir)
    img_dir, lab_dir = out_dir / "images" / "train", out_dir / "labels" / "train"
    img_dir.mkdir(parents=True, exist_ok=True)
    lab_dir.mkdir(parents=True, exist_ok=True)
    report = ExportReport(out_dir)
    if f is None:
        span = data_span(conn)
        f = HistoryFilter(span.first, span.last) if not span.empty else None
    eps = [e for e in (episodes(conn, f, limit=limit) if f else [])
           if e.review in ("confirmed", "dismissed")]
    for ep in eps:
        view = load_evidence(ep)
        if view.image is None or not ep.evidence_path:
            report.skipped.append((ep.id, view.message if view.image is None
                                   else "only a hand crop was stored"))
            continue
        dets = _detections_of(conn, ep.session_id, ep.source, ep.frame)
        if not dets:
            report.skipped.append((ep.id, "no stored detections for its frame"))
            continue
        h, w = view.image.shape[:2]
        lines = []
        for d in dets:
            if d["role"] == "protected":
                cls = 0
            elif d["role"] == "violation":
                if ep.review == "confirmed":
                    cls = 1
                elif dismissed_as == "glove":
                    cls = 0
                else:
                    continue
            else:
                continue
            cx, cy = (d["x1"] + d["x2"]) / 2 / w, (d["y1"] + d["y2"]) / 2 / h
            bw, bh = (d["x2"] - d["x1"]) / w, (d["y2"] - d["y1"]) / h
            lines.append(f"{cls} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}")
        stem = f"episode-{ep.id:07d}"
        shutil.copyfile(ep.evidence_path, img_dir / (stem + Path(ep.evidence_path).suffix))
        (lab_dir / (stem + ".txt")).write_text("\n".join(lines) + ("\n" if lines else ""))
        report.images += 1
        report.boxes += len(lines)
    names = "\n".join(f"  {k}: {v}" for k, v in EXPORT_NAMES.items())
    (out_dir / "data.yaml").write_text(
        f"path: {out_dir.resolve()}\ntrain: images/train\nval: images/train\nnames:\n{names}\n")
    return report



@dataclass(frozen=True)
class EvidenceView:
    """An episode's evidence frame (BGR) or why there is none."""

    image: object | None  # numpy BGR array
    message: str


def load_evidence(ep: Episode, crop: bool = False) -> EvidenceView:
    """Read an episode's evidence frame (or hand crop); a missing, removed or corrupt file
    gives ``image=None`` and a message saying which."""
    path = (ep.crop_path or ep.evidence_path) if crop else (ep.evidence_path or ep.crop_path)
    if not path:
        if ep.evidence_removed_at:
            return EvidenceView(None, f"Evidence removed by retention on {ep.evidence_removed_at}.")
        return EvidenceView(None, "No evidence image was stored for this episode.")
    if not Path(path).exists():
        return EvidenceView(None, f"Evidence file {path} is missing (deleted outside GloveWatch).")
    try:
        return EvidenceView(read_image(path), path)
    except MediaError as exc:
        log.warning("episode %s: %s", ep.id, exc)
        return EvidenceView(None, f"Evidence file is unreadable: {exc}")


def thumbnail_png(ep: Episode, size: int = 96) -> bytes | None:
    """A small PNG of the episode's hand crop (or frame), None when there is no readable one."""
    view = load_evidence(ep, crop=True)
    if view.image is None:
        return None
    img = view.image
    h, w = img.shape[:2]
    scale = size / max(h, w)
    if scale < 1:
        img = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))),
                         interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".png", img)
    return buf.tobytes() if ok else None
