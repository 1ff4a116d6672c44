"""Site frames: near-copy hashes, time blocks and the honest hold-out, uncertainty."""

from __future__ import annotations

import numpy as np

from core.media import read_image
from core.training import site
from core.vision.detections import Detections
from tests.training.site.dets import dets


def test_dhash_finds_near_copies_and_tells_apart_other_pictures(gloved_images, bare_images):
    a = read_image(gloved_images[0])
    brighter = np.clip(a.astype(np.int16) + 6, 0, 255).astype(np.uint8)
    assert site.hamming(site.dhash(a), site.dhash(brighter)) < site.MIN_HAMMING
    assert site.hamming(site.dhash(a), site.dhash(read_image(bare_images[0]))) >= site.MIN_HAMMING


def test_time_blocks_hold_out_every_fifth_block_never_at_random(store, gloved_images, bare_images):
    # neighbouring frames (same 30-minute block) always share a side
    assert site.block_of("2026-11-01 10:00:01") == site.block_of("2026-11-01 10:29:59")
    assert site.block_of("2026-11-01 10:29:59") != site.block_of("2026-11-01 10:30:00")
    pictures = [*gloved_images, *bare_images][:10]
    for i, p in enumerate(pictures):  # two pictures in each of five half-hours
        site.collect(
            store,
            "Timed",
            read_image(p),
            "live",
            f"2026-11-01 {10 + i // 4}:{(i // 2) % 2 * 30 + i % 2:02d}:00",
        )
    sides = {f.record.block: f.record.split for f in site.frames(store, "Timed")}
    assert list(sides.values()) == ["train"] * 4 + ["holdout"]  # the 5th block, in order
    for f in site.frames(store, "Timed"):
        assert f.record.split == sides[f.record.block]


def test_uncertainty_is_high_near_the_threshold():
    assert site.uncertainty(dets([0.27], [1]), 0.25) > 0.9
    assert site.uncertainty(dets([0.95], [1]), 0.25) == 0.0
    assert site.uncertainty(Detections.empty(), 0.25) == 0.0


def test_photos_without_a_time_split_by_look_alike_clusters(store, gloved_images, bare_images):
    for p in [*gloved_images, *bare_images]:
        site.collect(store, "Bench", read_image(p), "batch")
    frames = site.frames(store, "Bench")
    assert frames and all(f.record.block < 0 for f in frames)
    by_block: dict[int, set[str]] = {}
    for f in frames:
        by_block.setdefault(f.record.block, set()).add(f.record.split)
    assert all(len(sides) == 1 for sides in by_block.values())  # a cluster never straddles
