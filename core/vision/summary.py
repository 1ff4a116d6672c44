"""What a weights file is (name, task, classes and their roles), remembered by content hash.

Describing a model means loading it, and loading the first model of a process imports
PyTorch (seconds). The overview page only needs the description, so it is kept as a small JSON
file per model content (and model card) in a folder the caller names: a restarted app shows
it without importing PyTorch at all.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from core.vision.detector import file_sha256, inspect_model
from core.vision.modelcard import card_path
from core.vision.roles import Role

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSummary:
    """A weights file's identity and classes, as the overview shows them."""

    name: str
    task: str
    sha256: str
    classes: tuple[str, ...]  # in class-id order
    roles: tuple[str, ...]  # the role of each class, in the same order

    @property
    def meanings(self) -> tuple[str, ...]:
        """Each class's role in plain words."""
        return tuple(ROLE_WORDS.get(r, r) for r in self.roles)


# The roles in a plant manager's words (the station rule decides what is compliant).
ROLE_WORDS = {
    str(Role.PROTECTED): "a gloved hand",
    str(Role.VIOLATION): "a bare hand",
    str(Role.CONTEXT): "context (heads, people): not judged",
}


def _key(weights: Path) -> str:
    card = card_path(weights)
    card_text = card.read_bytes() if card.exists() else b""
    return f"{file_sha256(weights)}-{hashlib.sha256(card_text).hexdigest()[:12]}"


def model_summary(weights: Path, cache_dir: Path) -> ModelSummary:
    """The summary of ``weights``: from ``cache_dir`` when this content (and card) was
    described before, else by loading the model once (raises :class:`ModelError`)."""
    weights = Path(weights)
    cached = cache_dir / f"{_key(weights)}.summary.json"
    try:
        raw = json.loads(cached.read_text())
        return ModelSummary(
            **{**raw, "classes": tuple(raw["classes"]), "roles": tuple(raw["roles"])}
        )
    except (OSError, ValueError, TypeError, KeyError):
        pass  # not described yet (or an unreadable file): describe it again
    info = inspect_model(weights)
    ids = sorted(info.names)
    out = ModelSummary(
        name=info.name,
        task=info.task,
        sha256=info.sha256,
        classes=tuple(info.names[i] for i in ids),
        roles=tuple(str(info.roles.role_of(i)) for i in ids),
    )
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps(asdict(out)))
    except OSError as exc:  # a read-only folder only costs the next start its speed
        log.warning("model summary not kept: %s", exc)
    return out
