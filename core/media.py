"""Reading images and videos with clear errors, and writing browser-playable video.

Images are decoded through Pillow, which refuses truncated files that OpenCV would return as
half-grey pictures. Sizes are checked from the header before decoding, so a decompression bomb
(a 144-megapixel PNG in 140 KB) is refused without allocating it, and a picture too small to
show a hand (1x1) is refused rather than judged.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import MediaError
from core.text import redact_url

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}
MIN_SIDE_PX = 32  # smaller pictures cannot show a hand
MAX_PIXELS = 50_000_000  # a 8K frame is 33 Mpx; more is a bomb or a scan, not a camera
Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow's own guard, for every other Image.open too


def kind_of(name: str) -> str | None:
    """'image', 'video' or None, from a file name's suffix."""
    suffix = Path(name).suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    return None


def read_image(data: bytes | Path | str, name: str | None = None) -> np.ndarray:
    """Decode an image (bytes or path) to a BGR array, honouring EXIF orientation.

    Raises :class:`MediaError` for empty, non-image and truncated files: OpenCV silently
    returns half-grey pictures for truncated JPEGs, so decoding goes through Pillow, which
    refuses them.
    """
    if isinstance(data, (str, Path)):
        name = name or Path(data).name
        try:
            data = Path(data).read_bytes()
        except OSError as exc:
            raise MediaError(f"{name}: cannot be read ({exc.strerror or exc}).") from exc
    name = name or "image"
    if not data:
        raise MediaError(f"{name}: the file is empty.")
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise MediaError(
                    f"{name}: {w}x{h} pixels is too large to process (at most "
                    f"{MAX_PIXELS // 1_000_000} megapixels)."
                )
            if min(w, h) < MIN_SIDE_PX:
                raise MediaError(
                    f"{name}: {w}x{h} pixels is too small to show a hand (at "
                    f"least {MIN_SIDE_PX} pixels a side)."
                )
            im.load()
            rgb = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    except (UnidentifiedImageError, ImportError) as exc:
        # ImportError: Ultralytics patches Image.open to try a HEIF plug-in on unknown data
        raise MediaError(
            f"{name}: not an image (the content is not a known image format)."
        ) from exc
    except Image.DecompressionBombError as exc:
        raise MediaError(f"{name}: the image declares too many pixels to decode safely.") from exc
    except MediaError:
        raise
    except (OSError, SyntaxError, ValueError) as exc:
        raise MediaError(f"{name}: the image is damaged or truncated ({exc}).") from exc
    if rgb.size == 0:
        raise MediaError(f"{name}: the image has no pixels.")
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def write_image(path: Path, image: np.ndarray, quality: int = 90) -> Path:
    """Save a BGR image as JPEG (or by suffix); raises ``OSError`` if it cannot be written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buf = cv2.imencode(path.suffix or ".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError(f"could not encode {path.name}")
    path.write_bytes(buf.tobytes())
    return path


@dataclass(frozen=True)
class VideoInfo:
    fps: float
    frames: int  # 0 when the container does not say
    width: int
    height: int


def open_video(path: Path | str, name: str | None = None) -> tuple[cv2.VideoCapture, VideoInfo]:
    """Open a video file or stream URL; raises :class:`MediaError` if nothing can be decoded.

    ``name`` is how messages call it (e.g. the uploaded file's name).
    """
    name = name or (redact_url(str(path)) if "://" in str(path) else Path(str(path)).name)
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise MediaError(f"{name}: cannot be opened as a video.")
    ok, first = cap.read()
    if not ok or first is None:
        cap.release()
        raise MediaError(f"{name}: no frame could be decoded (corrupt or unsupported video).")
    fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
    info = VideoInfo(
        fps=fps if 0 < fps < 240 else 25.0,
        frames=max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0),
        width=first.shape[1],
        height=first.shape[0],
    )
    if "://" not in str(path):
        # Back to the first frame by opening the file again: OpenCV's seek to frame 0 lands
        # on a later keyframe in a fragmented MP4 (such as VideoWriter's), losing frames.
        cap.release()
        cap = cv2.VideoCapture(str(path))
    return cap, info


def iter_video(path: Path | str) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(frame index, BGR frame)`` of a video file; stops at the first undecodable frame."""
    cap, _ = open_video(path)
    try:
        index = 0
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                return
            yield index, frame
            index += 1
    finally:
        cap.release()


class VideoWriter:
    """H.264 MP4 writer (via PyAV) so annotated videos play in every browser.

    The MP4 is fragmented (a header first, then self-contained fragments), so a file cut off
    by a killed process still plays up to its last fragment. A keyframe every second starts a
    new fragment, and every packet is flushed to the file as it is muxed: otherwise a video
    shorter than the encoder's default 250-frame keyframe interval (or the I/O buffer) leaves
    only a few header bytes behind when the process is killed.
    """

    def __init__(self, path: Path, fps: float, width: int, height: int):
        import av

        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._container = av.open(
            str(path),
            mode="w",
            options={
                "movflags": "frag_keyframe+empty_moov+default_base_moof",
                "flush_packets": "1",
            },
        )
        rate = Fraction(fps).limit_denominator(1000)
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.codec_context.gop_size = max(1, round(fps))  # a fragment per second
        # yuv420p needs even sizes
        self._stream.width = width - width % 2
        self._stream.height = height - height % 2
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"preset": "veryfast", "crf": "26"}

    def write(self, frame_bgr: np.ndarray) -> None:
        import av

        h, w = self._stream.height, self._stream.width
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame_bgr[:h, :w]), format="bgr24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
