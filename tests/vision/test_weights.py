"""Weights files cannot run code: malicious pickles are refused before anything unpickles them,
and every real kind of checkpoint the project makes still loads."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from core.errors import ModelError
from core.vision.detector import DETECTORS, inspect_model, load_yolo
from core.vision.weights import ALLOWED_GLOBALS, check_weights, quarantine, referenced_globals
from models import VARIANTS

ROOT = Path(__file__).resolve().parents[2]


class ShellPayload:
    """Unpickling this runs ``touch <marker>`` through os.system."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


class TrojanModule(torch.nn.Module):
    """A model class of this test module whose unpickling touches a marker file."""

    def __init__(self, marker: Path):
        super().__init__()
        self.marker = str(marker)
        self.conv = torch.nn.Conv2d(3, 8, 3)

    def __setstate__(self, state):
        Path(state["marker"]).touch()
        super().__setstate__(state)


def _torch_save_dict(path: Path, marker: Path) -> None:
    torch.save({"model": ShellPayload(marker), "epoch": 1}, path)


def _plain_pickle(path: Path, marker: Path) -> None:
    with open(path, "wb") as fh:
        pickle.dump({"model": ShellPayload(marker)}, fh)


def _whole_object(path: Path, marker: Path) -> None:
    torch.save(TrojanModule(marker), path)


PAYLOADS: dict[str, Callable[[Path, Path], None]] = {
    "torch-save-reduce": _torch_save_dict,
    "plain-pickle": _plain_pickle,
    "whole-object": _whole_object,
}


@pytest.fixture(params=sorted(PAYLOADS))
def payload(request, tmp_path) -> tuple[Path, Path]:
    """(malicious .pt, the marker file its code would create)."""
    marker = tmp_path / "pwned"
    path = tmp_path / "best.pt"
    PAYLOADS[request.param](path, marker)
    assert not marker.exists()
    return path, marker


def test_payloads_are_live(payload):
    """Control: unpickled the unsafe way, each payload does run its code."""
    path, marker = payload
    if path.read_bytes()[:2] == b"PK":
        torch.load(path, weights_only=False)
    else:
        with open(path, "rb") as fh:
            pickle.load(fh)
    assert marker.exists()


@pytest.mark.parametrize(
    "entry", [check_weights, load_yolo, inspect_model], ids=lambda f: f.__name__
)
def test_malicious_weights_are_refused_and_never_run(payload, entry):
    path, marker = payload
    with pytest.raises(ModelError) as err:
        entry(path)
    text = str(err.value)
    assert "best.pt" in text and ("not loaded" in text or "refused" in text)
    assert "\n" not in text
    assert not marker.exists()


def test_refusal_names_what_the_file_references(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "x.pt"
    _torch_save_dict(path, marker)
    assert "posix.system" in referenced_globals(path) or "nt.system" in referenced_globals(path)
    with pytest.raises(ModelError, match=r"system.*could run that code"):
        check_weights(path)
    _whole_object(path, marker)
    with pytest.raises(ModelError, match="TrojanModule"):
        check_weights(path)
    assert not marker.exists()


def test_a_refused_file_is_not_cached_by_the_pool(tmp_path, default_weights):
    """A refused file swapped for a good one at the same path is judged afresh."""
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pt"
    _torch_save_dict(path, marker)
    with pytest.raises(ModelError):
        inspect_model(path)
    shutil.copyfile(default_weights, path)
    os.utime(path, ns=(1, 10**18))
    assert inspect_model(path).names == {0: "glove", 1: "hand"}
    assert not marker.exists()


def test_shipped_models_pass_the_check(default_weights):
    for weights in sorted((ROOT / "weights").glob("*.pt")):
        check_weights(weights)
        assert referenced_globals(weights) <= ALLOWED_GLOBALS
    assert inspect_model(default_weights).task == "detect"


# A process whose entry point forgot apply_offline_environment(): before Ultralytics is
# imported, and after it was imported with the loader off (turning it on then is too late).
_NO_SAFE_LOADER = """
import json, sys
from core.config import apply_offline_environment
from core.errors import ModelError
from core.vision.weights import check_weights
said = []
for step in ("not imported", "imported too early"):
    if step == "imported too early":
        import ultralytics.utils
        apply_offline_environment()
    try:
        check_weights(sys.argv[1])
        said.append("loaded")
    except ModelError as exc:
        said.append(str(exc))
print(json.dumps(said))
"""


def test_no_checkpoint_loads_without_the_safe_loader(default_weights):
    env = {k: v for k, v in os.environ.items() if k != "ULTRALYTICS_SAFE_LOAD"}
    out = subprocess.run(
        [sys.executable, "-c", _NO_SAFE_LOADER, str(default_weights)],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    said = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(said) == 2
    for text in said:
        assert text.startswith(f"{default_weights.name} was not loaded: ")
        assert "safe weights loader" in text and "\n" not in text


def test_save_upload_deletes_a_refused_upload(gw_home, tmp_path):
    from ui.widgets import save_upload

    marker = tmp_path / "pwned"
    (tmp_path / "src").mkdir()
    for name, make in PAYLOADS.items():
        src = tmp_path / "src" / f"{name}.pt"
        make(src, marker)
        with pytest.raises(ModelError):
            save_upload(f"../../{name}.pt", src.read_bytes())
    uploads = gw_home / "uploads"
    assert uploads.is_dir() and list(uploads.iterdir()) == []  # nothing left, not even a part
    assert not marker.exists()
    assert not list(gw_home.parent.glob("*.pt*"))  # the ../ in the name led nowhere


def test_save_upload_keeps_a_good_model_by_content_hash(gw_home, default_weights):
    from core.vision.detector import file_sha256
    from ui.widgets import save_upload

    kept = save_upload("my model.pt", default_weights.read_bytes())
    assert kept.parent == gw_home / "uploads"
    assert kept.name == f"{file_sha256(default_weights)[:16]}-my model.pt"
    assert kept.read_bytes() == default_weights.read_bytes()
    assert [p.name for p in kept.parent.iterdir()] == [kept.name]


def test_quarantine_deletes_only_inside_its_folder(tmp_path):
    folder = tmp_path / "uploads"
    folder.mkdir()
    inside, outside = folder / "a.pt", tmp_path / "b.pt"
    inside.write_bytes(b"x")
    outside.write_bytes(b"x")
    quarantine(outside, folder)
    quarantine(inside, folder)
    assert outside.exists() and not inside.exists()


# ------------------------------------------------------ real checkpoints the project makes


def _polygon_copy(src: Path, dst: Path) -> Path:
    """The fixture set with every box written as a 4-point polygon (a segmentation set)."""
    shutil.copytree(src, dst)
    for label in dst.glob("labels/*/*.txt"):
        lines = []
        for line in label.read_text().splitlines():
            if not line.strip():
                continue
            c, x, y, w, h = line.split()
            x, y, w, h = (float(v) for v in (x, y, w, h))
            pts = [
                x - w / 2,
                y - h / 2,
                x + w / 2,
                y - h / 2,
                x + w / 2,
                y + h / 2,
                x - w / 2,
                y + h / 2,
            ]
            lines.append(" ".join([c, *(f"{p:.6f}" for p in pts)]))
        label.write_text("\n".join(lines) + "\n")
    return dst


class Trainer:
    """One-epoch training runs through the app's own run machinery (worker process), made
    once per test session and per model."""

    def __init__(self, base: Path, mini: Path):
        self.base, self.mini = base, mini
        self.runs: dict[str, object] = {}

    def run(self, model: str, segment: bool = False):
        if model in self.runs:
            return self.runs[model]
        from core.storage import close_store, open_store
        from core.training import options, runs
        from core.vision.yolo_data import read_layout, write_data_yaml

        data = self.base / ("seg-data" if segment else "det-data")
        if not data.exists():
            if segment:
                _polygon_copy(self.mini, data)
            else:
                shutil.copytree(self.mini, data)
        # the run's data.yaml has absolute paths, as an imported data set's does
        data_yaml = write_data_yaml(read_layout(data), data / "abs-data.yaml")
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("GLOVEWATCH_HOME", str(self.base / "home"))
            mp.delenv("GLOVEWATCH_DB_URL", raising=False)
            st = open_store()
            try:
                spec = options.TrainSpec(
                    data=str(data_yaml),
                    model=model,
                    epochs=1,
                    imgsz=64,
                    batch=4,
                    device="cpu",
                    extra={"workers": 0, "plots": False},
                )
                run = runs.wait(st, runs.submit(st, spec).id, timeout=900)
            finally:
                close_store(st)
        self.runs[model] = run
        return run


@pytest.fixture(scope="session")
def trainer(tmp_path_factory, mini) -> Trainer:
    return Trainer(tmp_path_factory.mktemp("weights-runs"), mini)


def _loads(path: Path, task: str) -> None:
    check_weights(path)
    info = inspect_model(path)
    assert info.task == task and info.names == {0: "glove", 1: "hand"}
    import numpy as np

    with DETECTORS.acquire(path, imgsz=64) as det:
        fd = det.detect(np.zeros((64, 64, 3), np.uint8))
    assert fd.shape == (64, 64)


@pytest.mark.slow
def test_detect_run_checkpoints_load(trainer):
    run = trainer.run("yolo11n.yaml")
    assert run.status == "finished", run.message
    for path in (run.best_pt, run.last_pt):
        _loads(path, "detect")


@pytest.mark.slow
def test_segmentation_run_checkpoint_loads(trainer):
    run = trainer.run("yolo11n-seg.yaml", segment=True)
    assert run.status == "finished", run.message
    _loads(run.best_pt, "segment")


@pytest.mark.slow
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_project_variant_runs_finish_and_load(trainer, variant):
    """The models/ variants train to the end (Ultralytics reloads best.pt safely during the
    run) and their checkpoints pass the check."""
    run = trainer.run(variant)
    assert run.status == "finished", run.message
    for path in (run.best_pt, run.last_pt):
        _loads(path, "detect")
