import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(args, home, **kw):
    env = dict(os.environ, GLOVEWATCH_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600, **kw)


def test_detect_json_mixed_inputs(tmp_path, bare_images, gloved_images):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "fake.jpg").write_text("text named .jpg")
    (folder / gloved_images[0].name).write_bytes(gloved_images[0].read_bytes())
    save = tmp_path / "out"
    r = _run(["detect", str(bare_images[0]), str(folder), "--json", "--save", str(save),
              "--station", "saw-2"], tmp_path / "home")
    lines = [json.loads(x) for x in r.stdout.splitlines()]  # stdout holds only JSON
    assert r.returncode == 1, r.stderr  # one input failed
    by = {x["source"]: x for x in lines}
    assert by[bare_images[0].name]["verdict"] == "violation"
    assert by[bare_images[0].name]["detections"][0]["role"] == "violation"
    assert by[gloved_images[0].name]["verdict"] == "compliant"
    assert "not an image" in by["fake.jpg"]["error"]
    assert len(list(save.glob("*.jpg"))) == 2
    assert "fake.jpg" in r.stderr


def test_detect_wrong_weights(tmp_path, bare_images):
    w = tmp_path / "w.pt"
    w.write_text("nope")
    r = _run(["detect", str(bare_images[0]), "--weights", str(w)], tmp_path / "home")
    assert r.returncode == 2 and "not a usable YOLO model" in r.stderr


@pytest.mark.slow
def test_evaluate_json_meets_bar(tmp_path, gloves_dir):
    r = _run(["evaluate", "--data", str(gloves_dir / "data.yaml"), "--split", "test",
              "--json"], tmp_path / "home")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["images"] == 268
    assert res["map50"] >= 0.88
    assert set(res["per_class_ap50"]) == {"glove", "hand"}


def test_evaluate_bad_data(tmp_path):
    r = _run(["evaluate", "--data", str(tmp_path / "none.yaml"), "--json"], tmp_path / "home")
    assert r.returncode == 2 and "not found" in r.stderr and r.stdout == ""
