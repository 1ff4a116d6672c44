"""The History page's episode table: its columns and rows (a view of episode records)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.storage.events import EpisodeRecord

EPISODE_COLUMNS = (
    "id",
    "started",
    "station",
    "duration s",
    "why",
    "severity",
    "review",
    "comment",
)


def episode_rows(
    eps: list[EpisodeRecord], thumbnails: Sequence[str | None] = ()
) -> list[dict[str, Any]]:
    """The episode table's rows (a thumbnail, then :data:`EPISODE_COLUMNS`); an empty cell is
    "" (the grid would show None as "None"). ``thumbnails`` are for the first rows."""
    thumbs = list(thumbnails) + [None] * (len(eps) - len(thumbnails))
    return [
        {
            "thumbnail": thumb or "",
            "id": e.id,
            "started": e.started_at,
            "station": e.station,
            "duration s": round(e.duration_s, 1),
            "why": e.reason or "",
            "severity": e.severity,
            "review": e.review,
            "comment": e.review_comment or "",
        }
        for e, thumb in zip(eps, thumbs)
    ]
