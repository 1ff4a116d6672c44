"""Shared fixtures: a private data folder per test, the shipped model, real images.

The suite runs on a fresh clone: images come from ``tests/fixtures/gloves-mini`` (40 images of
the gloves data set, credited in ``tests/fixtures/CREDITS.md``). Tests that need the full data
sets in ``../shared`` are marked ``needs_data`` and skip, with the reason, when it is absent.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.config import apply_offline_environment

# The suite is an entry point too: offline settings and the safe weights loader before any
# test module imports ultralytics (importing core does not set them).
apply_offline_environment()

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
MINI = FIXTURES / "gloves-mini"
SHARED = (ROOT.parent / "shared").resolve()
SHARED_GLOVES = SHARED / "datasets" / "gloves"
DEFAULT_WEIGHTS = ROOT / "weights" / "gloves-yolo11n-wide.pt"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if SHARED_GLOVES.is_dir():
        return
    skip = pytest.mark.skip(
        reason=f"needs the full data sets in {SHARED} (absent here; CI has them)"
    )
    for item in items:
        if "needs_data" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def gw_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh GLOVEWATCH_HOME for one test (the store and every file it writes live here)."""
    home = tmp_path / "gw-home"
    monkeypatch.setenv("GLOVEWATCH_HOME", str(home))
    monkeypatch.delenv("GLOVEWATCH_DB_URL", raising=False)
    yield home
    from core.storage import _STORES, close_store

    for store in [s for url, s in list(_STORES.items()) if str(tmp_path) in url]:
        close_store(store)


@pytest.fixture
def store(gw_home: Path):
    """The real SQLite store of this test's data folder."""
    from core.storage import open_store

    return open_store()


@pytest.fixture(scope="session")
def mini() -> Path:
    """The fixture data set (data.yaml with train 12, val 6, test 22 images)."""
    return MINI


def _single_class(split: str, class_id: int) -> list[Path]:
    out = []
    for lab in sorted((MINI / "labels" / split).glob("*.txt")):
        ids = {line.split()[0] for line in lab.read_text().splitlines() if line.strip()}
        if ids == {str(class_id)}:
            out.append(MINI / "images" / split / f"{lab.stem}.jpg")
    return out


@pytest.fixture(scope="session")
def gloved_images() -> list[Path]:
    """Real images showing only gloved hands (11)."""
    return _single_class("test", 0)


@pytest.fixture(scope="session")
def bare_images() -> list[Path]:
    """Real images showing only bare hands (11)."""
    return _single_class("test", 1)


@pytest.fixture(scope="session")
def default_weights() -> Path:
    return DEFAULT_WEIGHTS


@pytest.fixture(scope="session")
def shared_gloves() -> Path:
    """The full gloves data set (tests using it are marked ``needs_data``)."""
    if not SHARED_GLOVES.is_dir():
        pytest.skip(f"needs {SHARED_GLOVES}")
    return SHARED_GLOVES


@pytest.fixture
def batch_home(
    store, bare_images: list[Path], gloved_images: list[Path], default_weights: Path
) -> Path:
    """This test's data folder after one real batch session (:func:`saw01_batch`)."""
    saw01_batch(store, bare_images, gloved_images, default_weights)
    return Path(os.environ["GLOVEWATCH_HOME"])


def saw01_batch(
    store: Any, bare_images: list[Path], gloved_images: list[Path], weights: Path
) -> None:
    """One real batch session: the shipped model on 3 bare-hand and 2 gloved images at
    station 'Saw 01' (results, detections, episodes with evidence)."""
    from core.pipeline.batch import BatchInput, run_batch
    from core.vision.detector import InferenceParams

    run_batch(
        [BatchInput.from_path(p) for p in [*bare_images[:3], *gloved_images[:2]]],
        weights,
        InferenceParams(),
        station="Saw 01",
        backend="pytorch",
        store=store,
    )


@pytest.fixture
def history_home(
    store, bare_images: list[Path], gloved_images: list[Path], default_weights: Path
) -> Path:
    """A data folder with 8 days of synthetic history (3 stations, ending yesterday) plus one
    real batch session at 'Saw 01' today."""
    from core.analytics.synth import generate

    generate(store, stations=3, days=8, seconds_rows=10_000, seed=1)
    saw01_batch(store, bare_images, gloved_images, default_weights)
    return Path(os.environ["GLOVEWATCH_HOME"])


@pytest.fixture
def tiny_gloves(tmp_path: Path) -> Path:
    """A copy of the fixture data set to train on (12 train, 6 val images)."""
    import shutil

    root = tmp_path / "tiny-gloves"
    shutil.copytree(MINI, root)
    return root


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """A throwaway PostgreSQL server on 127.0.0.1 for the whole test session
    (:class:`tests.postgres.PgServer`: Debian's binaries, a temp folder, gone afterwards).

    Skips, saying why, where PostgreSQL is not installed; with ``GLOVEWATCH_REQUIRE_PG=1`` (CI)
    a missing PostgreSQL fails instead.
    """
    from core.storage.database import forget, open_database
    from tests.postgres import TEMPLATE, PgServer, unavailable

    why = unavailable()
    if why:
        if os.environ.get("GLOVEWATCH_REQUIRE_PG"):
            pytest.fail(f"GLOVEWATCH_REQUIRE_PG is set but {why}")
        pytest.skip(why)
    server = PgServer()
    try:
        server.start()
        # a database at the current schema that each test's database is copied from (fast)
        server.create_database(TEMPLATE)
        open_database(server.url(TEMPLATE))
        forget(server.url(TEMPLATE))
        yield server
    finally:
        server.stop()


def _drop_pg(postgres: Any, name: str) -> None:
    from core.storage import _STORES, close_store
    from core.storage.database import forget

    url = postgres.url(name)
    for store in [s for key, s in list(_STORES.items()) if key == url]:
        close_store(store)
    forget(url)
    postgres.drop_database(name)


@pytest.fixture
def pg_url(postgres: Any) -> str:
    """The URL of a PostgreSQL database at the current schema, emptied for this test (one
    database serves the session; a test that changes the schema takes ``pg_fresh_url``)."""
    from tests.postgres import SHARED, TEMPLATE

    if not getattr(postgres, "shared_ready", False):
        postgres.create_database(SHARED, template=TEMPLATE)
        postgres.shared_ready = True
    postgres.empty(SHARED)
    return str(postgres.url(SHARED))


@pytest.fixture
def pg_fresh_url(postgres: Any) -> Iterator[str]:
    """The URL of a new PostgreSQL database at the current schema, dropped after the test."""
    from tests.postgres import TEMPLATE

    name = postgres.create_database(template=TEMPLATE)
    yield postgres.url(name)
    _drop_pg(postgres, name)


@pytest.fixture
def pg_empty_url(postgres: Any) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database (no tables), dropped after the test."""
    name = postgres.create_database()
    yield postgres.url(name)
    _drop_pg(postgres, name)
