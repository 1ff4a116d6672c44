"""The demo year: a synthetic store beside the plant's own, to try History and reports.

``python -m core synth --demo`` (or the History page's "Demo data" switch) fills
``<GLOVEWATCH_HOME>/demo/glovewatch.sqlite`` once; the page then reads it instead of the
plant's store, without a restart and without mixing demo figures into real ones. Its newest
episodes carry drawn evidence images (:mod:`core.analytics.scenes`), so review can be tried.
"""

from __future__ import annotations

from pathlib import Path

from core.analytics.synth import SynthReport, generate
from core.config import ensure_home
from core.storage import Store, open_store

DEMO_STATIONS = 20
DEMO_DAYS = 365
DEMO_SECONDS_ROWS = 200_000
DEMO_EVIDENCE = 150  # the newest episodes with drawn evidence


def demo_path() -> Path:
    return ensure_home().home / "demo" / "glovewatch.sqlite"


def demo_store() -> tuple[Store, SynthReport | None]:
    """The demo store, generated on first use; with the generation report if it was."""
    path = demo_path()
    store = open_store(str(path))
    report = None
    if store.bulk.is_empty():
        report = generate(
            store,
            stations=DEMO_STATIONS,
            days=DEMO_DAYS,
            seconds_rows=DEMO_SECONDS_ROWS,
            seed=0,
            evidence_dir=path.parent / "evidence",
            evidence_count=DEMO_EVIDENCE,
        )
    return store, report
