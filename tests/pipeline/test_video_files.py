"""Annotated videos are fragmented MP4s: complete ones read back frame for frame, and one cut
off by a killed process still plays up to its last fragment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from core.errors import MediaError
from core.media import iter_video, open_video
from core.pipeline.clips import write_clip
from tests.conftest import ROOT

WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from core.media import VideoWriter
    from core.pipeline.clips import clip_frames

    images = [Path(p) for p in sys.argv[3:]]
    writer = VideoWriter(Path(sys.argv[1]), 10, 640, 480)
    for i, frame in enumerate(clip_frames(images, fps=10, seconds_each=2.0)):
        if i == int(sys.argv[2]):
            break
        writer.write(frame)
    print("written", flush=True)
    time.sleep(120)  # killed here, before close(): like a batch killed mid-video
""")


def test_complete_clip_reads_back_every_frame(tmp_path, bare_images, clean_gloved):
    """Several fragments (a keyframe a second): every frame is read, from the first."""
    clip = write_clip(
        [bare_images[0], clean_gloved[0], bare_images[1]],
        tmp_path / "c.mp4",
        fps=5,
        seconds_each=1.6,
    )
    cap, info = open_video(clip)
    cap.release()
    assert (info.fps, info.width, info.height) == (5.0, 640, 480)
    frames = list(iter_video(clip))
    assert [i for i, _ in frames] == list(range(24))
    assert frames[0][1].shape == (480, 640, 3)


def test_killed_writer_leaves_a_playable_file(tmp_path, bare_images, clean_gloved):
    """SIGKILL after 4.5 s of a 10 fps video: the partial file is more than a header and
    decodes, up to the last fragment written."""
    out = tmp_path / "killed.annotated.mp4"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            WRITER,
            str(out),
            "45",
            *map(str, [bare_images[0], clean_gloved[0], bare_images[1]]),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        line = proc.stdout.readline()
        assert line.strip() == "written", proc.stderr.read()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    assert out.stat().st_size > 48  # more than the ftyp/moov header
    frames = list(iter_video(out))
    assert len(frames) >= 10  # at least the first second made it to disk
    assert len(frames) <= 45
    assert frames[0][1].shape == (480, 640, 3) and frames[0][1].std() > 10  # a real picture


def test_garbage_video_is_a_clear_error(tmp_path):
    garbage = tmp_path / "x.mp4"
    garbage.write_bytes(b"\x00" * 100)
    with pytest.raises(MediaError, match=r"x\.mp4") as caught:
        open_video(garbage)
    assert str(tmp_path) not in str(caught.value)  # the name, not the server path
