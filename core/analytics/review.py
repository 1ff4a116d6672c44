"""Episode review (confirmed / dismissed / unreviewed, with an audit trail), viewing an
episode's evidence, and the export of reviewed evidence as a YOLO data set for retraining.

A dismissed episode is a false alarm: :mod:`core.analytics.history` leaves it out of the
figures. The review decides the label of the exported bare-hand boxes: confirmed -> the
bare-hand class, dismissed -> the gloved-hand class (or no box at all with
``dismissed_as='background'``, for false alarms that were not hands).
"""

from __future__ import annotations

import base64
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from core.errors import MediaError, ReviewError
from core.events.evidence import find_evidence
from core.media import read_image
from core.storage import Store
from core.storage.events import EpisodeRecord, ReviewEntry
from core.storage.filters import REVIEW_STATES, HistoryFilter
from core.vision.roles import Role

log = logging.getLogger(__name__)

EXPORT_NAMES = {0: "glove", 1: "hand"}  # the shipped model's class order


def set_review(
    store: Store, event_id: int, review: str, comment: str = "", reviewed_by: str = ""
) -> ReviewEntry:
    """Mark an episode confirmed, dismissed or unreviewed; every decision is kept.

    Raises :class:`ReviewError` for an unknown state or episode.
    """
    if review not in REVIEW_STATES:
        raise ReviewError(f"Review must be one of {', '.join(REVIEW_STATES)}, not {review!r}.")
    entry = store.events.set_review(
        event_id, review, comment.strip() or None, reviewed_by.strip() or None
    )
    if entry is None:
        raise ReviewError(f"There is no episode #{event_id} (deleted or never stored).")
    store.audit.add(
        entry.reviewed_by or "-",
        "episode.review",
        f"episode {event_id}",
        {"review": review, "comment": entry.comment},
    )
    log.info("episode %s marked %s by %s", event_id, review, entry.reviewed_by or "-")
    return entry


def review_history(store: Store, event_id: int) -> list[ReviewEntry]:
    """All review decisions of an episode, oldest first."""
    return store.events.review_history(event_id)


def review_trail(trail: list[ReviewEntry]) -> str:
    """The review decisions of an episode in one line, oldest first."""
    return "Review history: " + "; ".join(
        f"{r.reviewed_at} {r.review} by {r.reviewed_by or '-'}"
        + (f" ({r.comment})" if r.comment else "")
        for r in trail
    )


def review_note(entry: ReviewEntry) -> str:
    """What a saved review changed, for the page's confirmation."""
    left_out = " (left out of the figures)" if entry.review == "dismissed" else ""
    return f"Episode #{entry.event_id} marked {entry.review}{left_out}."


def episode_label(ep: EpisodeRecord) -> str:
    """An episode in a picker: number, station, start, severity and review state."""
    return f"#{ep.id} {ep.station} {ep.started_at} ({ep.severity}, {ep.review})"


def episode_summary(ep: EpisodeRecord) -> str:
    """One episode in words: where, when, how long, why, and what judged it."""
    rule = f"station rule version {ep.rule_version}" if ep.rule_version else "the default rule"
    return (
        f"#{ep.id} · {ep.station} · {ep.started_at} to {ep.ended_at or 'still open'} · "
        f"{ep.duration_s:.1f} s · {ep.severity} · {ep.reason or ep.class_name} · "
        f"confidence {ep.peak_conf or 0:.2f} · zone {ep.zone or 'none'} · judged by {rule} · "
        f"model {ep.model_name or '-'} ({(ep.model_hash or '-')[:12]})"
    )


@dataclass(frozen=True)
class EvidenceView:
    """An episode's evidence image (BGR) or why there is none; ``message`` is for users."""

    image: np.ndarray | None
    message: str
    path: Path | None = None  # the file read (resolved inside its evidence store)


def load_evidence(ep: EpisodeRecord, crop: bool = False) -> EvidenceView:
    """Read an episode's evidence frame (or hand crop); a missing, removed or corrupt file
    gives ``image=None`` and a message saying which (never a server path)."""
    path = (ep.crop_path or ep.evidence_path) if crop else (ep.evidence_path or ep.crop_path)
    what = "hand crop" if crop else "evidence frame"
    if not path:
        if ep.evidence_removed_at:
            return EvidenceView(None, f"Evidence removed by retention on {ep.evidence_removed_at}.")
        return EvidenceView(None, "No evidence image was stored for this episode.")
    found = find_evidence(path)
    if found is None:
        log.warning("episode %s names evidence outside the evidence store; not read", ep.id)
        return EvidenceView(
            None, f"The {what} of episode #{ep.id} is not in the evidence store; it is not shown."
        )
    if not found.path.exists():
        return EvidenceView(
            None, f"The {what} of episode #{ep.id} is missing (deleted outside GloveWatch)."
        )
    try:
        return EvidenceView(
            read_image(found.path),
            f"Episode #{ep.id}: {what} (redacted: only the offending hand is sharp)",
            found.path,
        )
    except MediaError as exc:
        log.warning("episode %s: %s", ep.id, exc)
        return EvidenceView(None, f"The {what} of episode #{ep.id} is unreadable.")


def thumbnail_png(ep: EpisodeRecord, size: int = 96) -> bytes | None:
    """A small PNG of the episode's hand crop (or frame), None when there is no readable one."""
    view = load_evidence(ep, crop=True)
    if view.image is None:
        return None
    img = view.image
    h, w = img.shape[:2]
    scale = size / max(h, w)
    if scale < 1:
        img = cv2.resize(
            img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
        )
    ok, buf = cv2.imencode(".png", img)
    return buf.tobytes() if ok else None


def thumbnail_uri(ep: EpisodeRecord, size: int = 64) -> str | None:
    """The thumbnail as a ``data:`` URI for a table cell, None without a readable image."""
    png = thumbnail_png(ep, size)
    return "data:image/png;base64," + base64.b64encode(png).decode() if png else None


@dataclass
class ExportReport:
    """What :func:`export_reviewed` wrote and what it had to skip (with the reason)."""

    path: Path
    images: int = 0
    boxes: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)

    def skipped_note(self, shown: int = 3) -> str:
        """How many reviewed episodes were skipped, with the first reasons."""
        return f"{len(self.skipped)} reviewed episodes skipped, e.g. " + "; ".join(
            f"#{i}: {why}" for i, why in self.skipped[:shown]
        )


def _boxes(store: Store, ep: EpisodeRecord) -> list[tuple[str, tuple[float, ...]]]:
    """(role, box) of the detections in an episode's evidence frame."""
    found = find_evidence(ep.evidence_path) if ep.evidence_path else None
    side = found.boxes() if found is not None else None
    if side is not None:
        return [(d["role"], tuple(d["box"])) for d in side.get("detections", [])]
    return [(d.role, d.box) for d in store.events.frame_detections(ep)]


def _reviewed(store: Store, f: HistoryFilter | None, limit: int) -> list[EpisodeRecord]:
    """The confirmed and dismissed episodes of ``f`` (None: all the data the store holds)."""
    if f is None:
        span = store.history.data_span()
        if span.empty or span.first is None or span.last is None:
            return []
        f = HistoryFilter(span.first, span.last)
    return [
        e for e in store.events.matching(f, limit=limit) if e.review in ("confirmed", "dismissed")
    ]


def _yolo_lines(
    dets: list[tuple[str, tuple[float, ...]]], review: str, dismissed_as: str, w: int, h: int
) -> list[str]:
    """YOLO label lines of an episode's boxes: gloved hands class 0, bare hands class 1 when
    the episode was confirmed, 0 when dismissed (none with ``dismissed_as='background'``)."""
    lines = []
    for role, (x1, y1, x2, y2) in dets:
        if role == Role.PROTECTED:
            cls = 0
        elif role == Role.VIOLATION and (review == "confirmed" or dismissed_as == "glove"):
            cls = 1 if review == "confirmed" else 0
        else:
            continue
        lines.append(
            f"{cls} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} "
            f"{(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}"
        )
    return lines


def export_reviewed(
    store: Store,
    out_dir: Path,
    f: HistoryFilter | None = None,
    dismissed_as: str = "glove",
    limit: int = 100_000,
) -> ExportReport:
    """Write reviewed episodes' evidence frames and labels as a YOLO detection data set
    (``images/train``, ``labels/train``, ``data.yaml``) under ``out_dir``.

    Gloved hands stay class 0; bare-hand boxes become class 1 when the episode was confirmed,
    class 0 when dismissed (or are dropped with ``dismissed_as='background'``); context
    classes are left out. Episodes without readable evidence or boxes are skipped with the
    reason.
    """
    if dismissed_as not in ("glove", "background"):
        raise ReviewError("dismissed_as is 'glove' or 'background'")
    out_dir = Path(out_dir)
    img_dir, lab_dir = out_dir / "images" / "train", out_dir / "labels" / "train"
    img_dir.mkdir(parents=True, exist_ok=True)
    lab_dir.mkdir(parents=True, exist_ok=True)
    report = ExportReport(out_dir)
    for ep in _reviewed(store, f, limit):
        view = load_evidence(ep)
        if view.image is None or view.path is None or not ep.evidence_path:
            report.skipped.append(
                (ep.id, view.message if view.image is None else "only a hand crop was stored")
            )
            continue
        dets = _boxes(store, ep)
        if not dets:
            report.skipped.append((ep.id, "no stored detections for its frame"))
            continue
        h, w = view.image.shape[:2]
        lines = _yolo_lines(dets, ep.review, dismissed_as, w, h)
        stem = f"episode-{ep.id:07d}"
        shutil.copyfile(view.path, img_dir / (stem + Path(ep.evidence_path).suffix))
        (lab_dir / (stem + ".txt")).write_text("\n".join(lines) + ("\n" if lines else ""))
        report.images += 1
        report.boxes += len(lines)
    names = "\n".join(f"  {k}: {v}" for k, v in EXPORT_NAMES.items())
    (out_dir / "data.yaml").write_text(
        f"path: {out_dir.resolve()}\ntrain: images/train\nval: images/train\nnames:\n{names}\n"
    )
    return report
