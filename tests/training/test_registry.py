"""The model registry: compare, promote (with the 'worse' guard), model cards, rollback.

The runs here are finished runs whose ``best.pt`` is one of the two real shipped checkpoints
(no training needed): on the fixture set's val split at 320 px ``gloves-yolo11n.pt`` scores
lower than the shipped default ``gloves-yolo11n-wide.pt``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.config import settings
from core.errors import RegistryError
from core.training import registry
from core.training.runs import get_run
from core.vision.detector import Detector, file_sha256
from core.vision.modelcard import read_card
from core.vision.weights import check_weights
from tests.conftest import MINI, ROOT

OLDER = ROOT / "weights" / "gloves-yolo11n.pt"  # weaker than the default on this val split


def finished_run(
    store,
    weights: Path,
    name: str,
    data: Path = MINI / "data.yaml",
    imgsz: int = 320,
    status: str = "finished",
):
    """A run in the store, as the worker leaves it, with ``weights`` as its best.pt."""
    run_id = store.runs.create(
        name,
        "gloves-mini",
        "yolo11n.yaml",
        "cpu",
        None,
        lambda i: str(settings().runs_dir / f"{i:04d}-{name}"),
        lambda folder: {
            "data": str(data),
            "imgsz": imgsz,
            "epochs": 3,
            "project": folder,
            "name": "train",
        },
    )
    store.runs.set(
        run_id,
        status=status,
        started_at="2026-01-05 08:00:00",
        ended_at="2026-01-05 08:10:00",
        best={"epoch": 3.0, "metrics/mAP50(B)": 0.8, "metrics/mAP50-95(B)": 0.5},
    )
    run = get_run(store, run_id)
    run.best_pt.parent.mkdir(parents=True)
    shutil.copy(weights, run.best_pt)
    return run


def test_splits_of_lists_only_existing_splits(store, tmp_path):
    full = finished_run(store, OLDER, "full")
    assert registry.splits_of(store, full.id) == ["val", "test", "train"]
    root = tmp_path / "two-splits"
    for split in ("train", "val"):
        shutil.copytree(MINI / "images" / split, root / "images" / split)
        shutil.copytree(MINI / "labels" / split, root / "labels" / split)
    (root / "data.yaml").write_text(
        "path: .\ntrain: images/train\nval: images/val\ntest: images/test\nnames: [glove, hand]\n"
    )
    two = finished_run(store, OLDER, "two", data=root / "data.yaml")
    assert registry.splits_of(store, two.id) == ["val", "train"]  # 'test' is named, absent


def test_promote_records_provenance_and_rollback_restores(store, gw_home, default_weights):
    """Promotion copies best.pt into <home>/models with a card naming the data set, split,
    images and size; rollback re-activates the previous entry, then the shipped default."""
    first = finished_run(store, OLDER, "first")
    second = finished_run(store, default_weights, "second", imgsz=640)
    assert registry.active_model(store).entry is None
    assert registry.active_model(store).label == f"shipped default {default_weights.name}"

    a = registry.promote(store, first.id, promoted_by="tess")
    assert a.active and a.run_id == first.id and a.promoted_by == "tess"
    assert a.path.parent == gw_home / "models" and a.path.is_file()
    assert a.sha256 == file_sha256(first.best_pt) == file_sha256(a.path)
    assert a.roles == {"glove": "protected", "hand": "violation"}
    assert a.scores["dataset"] == "gloves-mini" and a.scores["split"] == "val"
    assert a.scores["images"] == 6 and a.scores["imgsz"] == 320
    assert a.scores["mAP50"] == 0.8 and a.scores["mAP50-95"] == 0.5
    card = read_card(a.path)
    assert card is not None and card.data == "gloves-mini" and card.split == "val"
    assert card.images == 6 and card.imgsz == 320 and card.map50 == 0.8
    assert "gloves-mini val split (6 images, imgsz 320)" in a.score_source()
    active = registry.active_model(store)
    assert active.path == a.path and active.entry.id == a.id
    assert a.path.name in active.label and f"run {first.id}" in active.label

    b = registry.promote(store, second.id, promoted_by="tess")
    assert registry.active_weights(store) == b.path
    assert [e.id for e in registry.history(store)] == [b.id, a.id]
    assert [e.active for e in registry.history(store)] == [True, False]

    back = registry.rollback(store, by="tess")
    assert back is not None and back.id == a.id
    assert registry.active_model(store).label.startswith(a.path.name)
    assert registry.rollback(store, by="tess") is None  # nothing before: the shipped default
    assert registry.active_weights(store) == default_weights
    assert registry.active_model(store).label == f"shipped default {default_weights.name}"
    assert registry.rollback(store, to_id=b.id).id == b.id
    actions = [r.action for r in store.audit.recent()]
    assert actions.count("model.promote") == 2 and actions.count("model.rollback") == 3


def test_promoted_weights_load_through_the_safe_loader(store, default_weights):
    entry = registry.promote(
        store, finished_run(store, default_weights, "safe").id, promoted_by="tess"
    )
    check_weights(entry.path)  # only allow-listed classes in the pickle
    det = Detector(entry.path, imgsz=320)
    assert det.info.names == {0: "glove", 1: "hand"}
    assert det.info.sha256 == entry.sha256


def test_promotion_refusals(store, default_weights):
    running = finished_run(store, default_weights, "busy", status="running")
    with pytest.raises(RegistryError, match="still running"):
        registry.promote(store, running.id)
    empty = finished_run(store, default_weights, "empty")
    empty.best_pt.unlink()
    with pytest.raises(RegistryError, match=r"no best\.pt"):
        registry.promote(store, empty.id)
    with pytest.raises(RegistryError, match=r"no best\.pt"):
        registry.compare(store, empty.id)
    entry = registry.promote(store, finished_run(store, default_weights, "gone").id)
    registry.rollback(store)
    entry.path.unlink()
    with pytest.raises(RegistryError, match="gone"):
        registry.rollback(store, to_id=entry.id)
    with pytest.raises(RegistryError, match="No registry entry"):
        registry.rollback(store, to_id=999)


@pytest.mark.slow
def test_compare_scores_both_on_the_same_split_and_guards_a_worse_candidate(store, default_weights):
    worse = finished_run(store, OLDER, "older")
    assert registry.active_weights(store) == default_weights
    cmp = registry.compare(store, worse.id, split="val", imgsz=320)
    assert cmp.active is not None and cmp.active_path == default_weights
    for res in (cmp.candidate, cmp.active):  # the same data, split, images and size
        assert res.split == "val" and res.images == 6 and res.imgsz == 320
        assert res.data == cmp.candidate.data
        assert "val split (6 images, imgsz 320)" in res.describe()
    assert cmp.candidate.weights == str(worse.best_pt)
    assert cmp.candidate.map50 < cmp.active.map50 and cmp.candidate_is_worse

    with pytest.raises(RegistryError, match="scores lower than the active model on val"):
        registry.promote(store, worse.id, comparison=cmp)
    assert registry.history(store) == []  # nothing was promoted
    entry = registry.promote(store, worse.id, comparison=cmp, accept_lower=True, promoted_by="tess")
    assert entry.active and registry.active_weights(store) == entry.path
    assert entry.scores["split"] == "val" and entry.scores["images"] == 6
    assert entry.scores["imgsz"] == 320 and entry.scores["dataset"] == "gloves-mini"
    assert entry.scores["mAP50"] == pytest.approx(cmp.candidate.map50)
    card = read_card(entry.path)
    assert (card.split, card.images, card.imgsz) == ("val", 6, 320)
    assert card.map50 == pytest.approx(cmp.candidate.map50)
    (audit,) = store.audit.recent(action="model.promote")
    assert audit.details["accepted_lower"] is True and audit.actor == "tess"
