"""The demo year: a synthetic store beside the plant's own, to try History and reports.

``python -m core synth --demo`` (or the History page's "Demo data" switch) fills
``<GLOVEWATCH_HOME>/demo/glovewatch.sqlite`` once; the page then reads it instead of the
plant's store, without a restart and without mixing demo figures into real ones.
"""

from __future__ import annotations

from pathlib import Path

from core.analytics.synth import SynthReport, generate
from core.config import ensure_home
from core.storage import Store, open_store

DEMO_STATIONS = 20
DEMO_DAYS = 365
DEMO_SECONDS_ROWS = 200_000


def demo_path() -> Path:
    return ensure_home().home / "demo" / "glovewatch.sqlite"


def demo_store() -> tuple[Store, SynthReport | None]:
    """The demo store, generated on first use; with the generation report if it was."""
    store = open_store(str(demo_path()))
    report = None
    if store.bulk.is_empty():
        report = generate(
            store, stations=DEMO_STATIONS, days=DEMO_DAYS, seconds_rows=DEMO_SECONDS_ROWS, seed=0
        )
    return store, report
