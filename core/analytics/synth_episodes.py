"""The episodes of the synthetic year (:mod:`core.analytics.synth`): about one per 10 violating
hand-minutes of each station, the older ones partly reviewed, the newest with drawn evidence.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from core.analytics.scenes import save_scene
from core.config import DEFAULT_WEIGHTS
from core.events.evidence import EvidenceWriter

# (name, content hash) of the model before and after the mid-year switch
MODELS = (
    (DEFAULT_WEIGHTS.name, "5f" * 32),
    ("gloves-v2.pt", "a7" * 32),
)
EVENT_COLUMNS = (
    "session_id",
    "station",
    "source",
    "started_at",
    "ended_at",
    "duration_s",
    "class_name",
    "peak_conf",
    "severity",
    "model_hash",
    "model_name",
    "rule_version",
    "zone",
    "thresholds_json",
    "review",
    "review_comment",
    "reviewed_by",
    "reviewed_at",
    "reason",
    "evidence_path",
    "crop_path",
)


def with_evidence(
    rows: list[tuple[Any, ...]], folder: Path, count: int, seed: int
) -> list[tuple[Any, ...]]:
    """The episode rows, the newest ``count`` with drawn evidence (frame and hand crop)."""
    rng = np.random.default_rng(seed + 1)
    writer = EvidenceWriter(folder)
    start = EVENT_COLUMNS.index("started_at")
    newest = (
        set(sorted(range(len(rows)), key=lambda i: rows[i][start])[-count:]) if count else set()
    )
    out = []
    for i, row in enumerate(rows):
        files = None
        if i in newest:
            stem = f"demo-{i:06d}-{row[start][11:].replace(':', '')}"
            files = save_scene(writer, rng, row[1], stem, row[start][:10])
        out.append(row[:-2] + ((files.frame, files.crop) if files else (None, None)))
    return out


def _episode_row(
    name: str,
    t0: datetime,
    d: float,
    critical: bool,
    conf: float,
    r: float,
    day: int,
    ctx: dict[str, Any],
) -> tuple[Any, ...]:
    """One episode as an ``events`` row (:data:`EVENT_COLUMNS`); some older ones reviewed."""
    t1 = t0 + timedelta(seconds=d)
    model = MODELS[1 if day >= ctx["switch_day"] else 0]
    old = day < ctx["days"] - 14  # the last two weeks are not reviewed yet
    review, comment, who, when = "unreviewed", None, None, None
    if old and r < 0.25:
        review = "dismissed" if r < 0.05 else "confirmed"
        comment = "glove seen on zoom" if review == "dismissed" else None
        who, when = "shift lead", (t1 + timedelta(hours=2)).strftime("%Y-%m-%d %H:%M:%S")
    return (
        ctx["session_of"].get((name, day)),
        name,
        "live",
        t0.strftime("%Y-%m-%d %H:%M:%S"),
        t1.strftime("%Y-%m-%d %H:%M:%S"),
        d,
        "hand",
        conf,
        "critical" if critical else "warning",
        model[1],
        model[0],
        2 if day >= ctx["switch_day"] else 1,
        "blade" if critical else None,
        ctx["thresholds"],
        review,
        comment,
        who,
        when,
        "bare hand (hand)",
        None,  # evidence: see with_evidence
        None,
    )


def episode_rows(
    rng: np.random.Generator,
    hourly: dict[str, dict[str, np.ndarray]],
    prefixes: list[str],
    session_of: dict[tuple[str, int], int],
    switch_day: int,
    days: int,
) -> list[tuple[Any, ...]]:
    """Violation episodes, about one per 10 violating hand-minutes, some reviewed."""
    rows: list[tuple[Any, ...]] = []
    ctx = {
        "thresholds": json.dumps({"min_duration_s": 1.0, "grace_s": 2.0}),
        "session_of": session_of,
        "switch_day": switch_day,
        "days": days,
    }
    for name, hh in hourly.items():
        counts = rng.poisson(hh["bad"] / 600.0)
        hours = np.repeat(np.arange(len(counts)), counts)
        n = len(hours)
        offs = rng.integers(0, 3540, n)
        dur = np.round(rng.lognormal(1.8, 0.7, n), 1)
        critical = (dur > 15) | (rng.random(n) < 0.08)
        conf = np.round(rng.uniform(0.4, 0.95, n), 3)
        reviewed = rng.random(n)
        for h, o, d, c, pc, r in zip(
            hours.tolist(),
            offs.tolist(),
            dur.tolist(),
            critical.tolist(),
            conf.tolist(),
            reviewed.tolist(),
        ):
            t0 = datetime.strptime(prefixes[h], "%Y-%m-%d %H") + timedelta(seconds=o)
            rows.append(_episode_row(name, t0, d, c, pc, r, h // 24, ctx))
    return rows
