"""Shared fixtures: a private data folder per test, the shipped model, real test images."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GLOVES = (ROOT.parent / "shared" / "datasets" / "gloves").resolve()
DEFAULT_WEIGHTS = ROOT / "weights" / "gloves-yolo11n.pt"


@pytest.fixture
def gw_home(tmp_path, monkeypatch) -> Path:
    """A fresh GLOVEWATCH_HOME for one test (the store and every file it writes live here)."""
    home = tmp_path / "gw-home"
    monkeypatch.setenv("GLOVEWATCH_HOME", str(home))
    return home


@pytest.fixture
def store(gw_home):
    """A real SQLite store in the test's data folder."""
    from core import store as st

    conn = st.connect()
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def gloves_dir() -> Path:
    if not GLOVES.exists():
        pytest.fail(f"data set not found at {GLOVES} (tests read ../shared/datasets/gloves)")
    return GLOVES


def _labelled(gloves: Path, class_id: int, n: int) -> list[Path]:
    """Test-split images whose labels contain only ``class_id`` (sorted, deterministic)."""
    out = []
    for lab in sorted((gloves / "labels" / "test").glob("*.txt")):
        ids = {line.split()[0] for line in lab.read_text().splitlines() if line.strip()}
        if ids == {str(class_id)}:
            img = next((gloves / "images" / "test").glob(lab.stem + ".*"), None)
            if img is not None:
                out.append(img)
        if len(out) >= n:
            break
    return out


@pytest.fixture(scope="session")
def gloved_images(gloves_dir) -> list[Path]:
    """Real test images with gloved hands only."""
    return _labelled(gloves_dir, 0, 8)


@pytest.fixture(scope="session")
def bare_images(gloves_dir) -> list[Path]:
    """Real test images with bare hands only."""
    return _labelled(gloves_dir, 1, 8)


@pytest.fixture(scope="session")
def default_weights() -> Path:
    return DEFAULT_WEIGHTS



@pytest.fixture(scope="session")
def _batch_home_template(tmp_path_factory, bare_images, gloved_images, default_weights) -> Path:
    """A data folder after one real batch session (shipped model on 3 bare-hand and 2 gloved
    test images, station 'Saw 01'), made once per test session."""
    from core.batch import BatchInput, run_batch
    from core.detector import InferenceParams

    home = tmp_path_factory.mktemp("batch-template") / "gw-home"
    old = os.environ.get("GLOVEWATCH_HOME")
    os.environ["GLOVEWATCH_HOME"] = str(home)
    try:
        run_batch([BatchInput.from_path(p) for p in [*bare_images[:3], *gloved_images[:2]]],
                  default_weights, InferenceParams(), station="Saw 01")
    finally:
        if old is None:
            os.environ.pop("GLOVEWATCH_HOME", None)
        else:
            os.environ["GLOVEWATCH_HOME"] = old
    return home


@pytest.fixture
def batch_home(gw_home, _batch_home_template) -> Path:
    """This test's GLOVEWATCH_HOME holding a copy of a real batch session: store rows
    (results, detections, episodes with evidence files) made by the shipped model."""
    import shutil
    import sqlite3

    shutil.copytree(_batch_home_template, gw_home)
    old, new = str(_batch_home_template), str(gw_home)
    conn = sqlite3.connect(gw_home / "glovewatch.sqlite")
    with conn:
        conn.execute("UPDATE events SET evidence_path = replace(evidence_path, ?, ?),"
                     " crop_path = replace(crop_path, ?, ?)", (old, new, old, new))
        conn.execute("UPDATE results SET annotated_path = replace(annotated_path, ?, ?)",
                     (old, new))
    conn.close()
    return gw_home


@pytest.fixture
def tiny_gloves(gloves_dir, tmp_path) -> Path:
    """A tiny real training set: 8 train and 4 val gloves images with labels and a data.yaml."""
    import shutil

    root = tmp_path / "tiny-gloves"
    for split, n in (("train", 8), ("val", 4)):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for lab in sorted((gloves_dir / "labels" / split).glob("*.txt"))[:n]:
            img = next((gloves_dir / "images" / split).glob(lab.stem + ".*"))
            shutil.copy(img, root / "images" / split / img.name)
            shutil.copy(lab, root / "labels" / split / lab.name)
    (root / "data.yaml").write_text(
        "path: .\ntrain: images/train\nval: images/val\nnames:\n  0: glove\n  1: hand\n")
    return root


@pytest.fixture
def history_home(batch_home) -> Path:
    """:func:`batch_home` plus 8 days of synthetic history (3 stations, ending yesterday,
    made by core.synth) merged into its store."""
    from core import store as st
    from core import synth

    side_path = batch_home / "synth.sqlite"
    side = st.connect(side_path)
    synth.generate(side, stations=3, days=8, seconds_rows=10_000, seed=1)
    side.close()
    conn = st.connect()
    conn.execute("ATTACH DATABASE ? AS s", (str(side_path),))
    for table in ("coverage_hourly", "events", "stations"):
        cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})") if r[1] != "id"]
        sel = ["NULL" if c == "session_id" else c for c in cols]  # synth sessions stay behind
        conn.execute(f"INSERT INTO main.{table} ({', '.join(cols)}) SELECT {', '.join(sel)}"
                     f" FROM s.{table} WHERE true ON CONFLICT DO NOTHING")
    conn.execute("DETACH DATABASE s")
    conn.close()
    side_path.unlink()
    return batch_home

os.environ.setdefault("YOLO_OFFLINE", "1")
