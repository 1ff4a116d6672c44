"""Model cards: the scores and provenance that travel with a weights file.

A card is ``<weights stem>.card.json`` next to the weights (``weights/gloves-yolo11n-wide.pt`` ->
``weights/gloves-yolo11n-wide.card.json``). The shipped model has one; promotion writes one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ModelCard:
    """Scores and provenance of one weights file."""

    title: str
    data: str = ""  # the data set the scores come from
    split: str = "test"
    images: int | None = None  # images in that split
    imgsz: int | None = None  # image size of the scoring
    map50: float | None = None
    map50_95: float | None = None
    per_class_ap50: dict[str, float] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)  # class name -> role override
    notes: str = ""

    def score_source(self) -> str:
        """Where the scores come from, e.g. 'gloves test split (268 images, imgsz 640)'."""
        extra = ", ".join(
            p
            for p in (
                f"{self.images} images" if self.images else "",
                f"imgsz {self.imgsz}" if self.imgsz else "",
            )
            if p
        )
        return f"{self.data or 'unknown data set'} {self.split} split" + (
            f" ({extra})" if extra else ""
        )


def card_path(weights: Path) -> Path:
    return weights.with_name(weights.stem + ".card.json")


def read_card(weights: Path) -> ModelCard | None:
    """The card of ``weights``, or None if it has none (or an unreadable one)."""
    p = card_path(Path(weights))
    try:
        raw = json.loads(p.read_text())
        return ModelCard(**{k: v for k, v in raw.items() if k in ModelCard.__dataclass_fields__})
    except (OSError, ValueError, TypeError):
        return None


def write_card(weights: Path, card: ModelCard) -> Path:
    p = card_path(Path(weights))
    p.write_text(json.dumps(asdict(card), indent=2) + "\n")
    return p
