"""Reading images and videos: every bad input is one clear MediaError, never a half picture."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile

from core.errors import EXIT_INPUT, MediaError
from core.media import (
    MAX_PIXELS,
    MIN_SIDE_PX,
    VideoWriter,
    iter_video,
    kind_of,
    open_video,
    read_image,
)


def _png(width: int, height: int, idat: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", idat)
        + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def png_bomb() -> bytes:
    """A valid 12000x12000 grey PNG (144 megapixels) of about 140 KB."""
    side = 12_000
    z = zlib.compressobj(9)
    row = b"\x00" * (side + 1)  # filter byte + pixels
    body = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    return _png(side, side, body)


@pytest.fixture
def decodes(monkeypatch):
    """Counts real pixel decoding (Pillow's ``ImageFile.load``) without changing it."""
    calls = []
    original = ImageFile.ImageFile.load

    def counting(self):
        calls.append(self.size)
        return original(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting)
    return calls


def _encode(image: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=fmt)
    return buf.getvalue()


def test_read_real_image(gloved_images):
    img = read_image(gloved_images[0])
    assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8
    # BGR, as OpenCV reads it
    np.testing.assert_array_equal(img, cv2.imread(str(gloved_images[0])))


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"this is text, not a picture", "not an image"),
    ],
)
def test_bad_images(data, message):
    with pytest.raises(MediaError, match=message) as err:
        read_image(data, "x.jpg")
    assert str(err.value).startswith("x.jpg:") and "\n" not in str(err.value)
    assert err.value.exit_code == EXIT_INPUT


def test_text_file_named_jpg(tmp_path):
    fake = tmp_path / "photo.jpg"
    fake.write_text("not a picture at all")
    with pytest.raises(MediaError, match=r"photo\.jpg: not an image"):
        read_image(fake)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(MediaError, match=r"gone\.jpg: cannot be read"):
        read_image(tmp_path / "gone.jpg")


def test_truncated_jpeg(gloved_images):
    data = gloved_images[0].read_bytes()
    with pytest.raises(MediaError, match="truncated"):
        read_image(data[: len(data) // 3], "cut.jpg")


@pytest.mark.parametrize("size", [(1, 1), (MIN_SIDE_PX - 1, 200), (300, MIN_SIDE_PX - 1)])
def test_too_small_pictures_are_refused(size):
    w, h = size
    data = _encode(np.zeros((h, w, 3), np.uint8))
    with pytest.raises(MediaError, match=f"{w}x{h} pixels is too small"):
        read_image(data, "tiny.png")


def test_smallest_allowed_picture_is_read(decodes):
    img = read_image(_encode(np.full((MIN_SIDE_PX, MIN_SIDE_PX, 3), 7, np.uint8)), "ok.png")
    assert img.shape == (MIN_SIDE_PX, MIN_SIDE_PX, 3) and (img == 7).all()
    assert (MIN_SIDE_PX, MIN_SIDE_PX) in decodes  # the counter does see real decoding


def test_decompression_bomb_is_refused_before_decoding(png_bomb, decodes):
    assert len(png_bomb) < 300_000  # small on disk
    with pytest.raises(MediaError, match=r"too many pixels|too large") as err:
        read_image(png_bomb, "bomb.png")
    assert "bomb.png" in str(err.value)
    assert decodes == []  # the pixels were never decoded


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_oversized_header_is_refused_from_the_header_alone(decodes):
    """Above MAX_PIXELS (here 56 Mpx, below Pillow's own bomb limit) the size in the header is
    enough: the (deliberately broken) pixel data is never read."""
    data = _png(7500, 7500, zlib.compress(b"\x00" * 1000))
    assert MAX_PIXELS < 7500 * 7500
    with pytest.raises(MediaError, match="7500x7500 pixels is too large"):
        read_image(data, "scan.png")
    assert decodes == []


def test_exif_orientation_is_honoured(tmp_path):
    """A phone photo stored sideways with an EXIF rotation comes out upright."""
    pixels = np.zeros((40, 80, 3), np.uint8)
    pixels[:, :40] = 255  # left half white
    im = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    im.save(buf, format="JPEG", exif=exif, quality=95)
    img = read_image(buf.getvalue(), "phone.jpg")
    assert img.shape[:2] == (80, 40)
    assert img[:40].mean() > 200 > img[40:].mean()  # the white half is now on top


def test_video_round_trip(tmp_path, gloved_images):
    frames = [cv2.resize(read_image(p), (320, 240)) for p in gloved_images[:3]]
    out = tmp_path / "clip.mp4"
    with VideoWriter(out, 5, 320, 240) as w:
        for f in frames:
            w.write(f)
    cap, info = open_video(out)
    cap.release()
    assert (info.width, info.height) == (320, 240)
    assert info.fps == pytest.approx(5, abs=0.1)
    decoded = list(iter_video(out))
    assert [i for i, _ in decoded] == [0, 1, 2]
    # lossy, but recognisably the same pictures in the same order
    for (_, got), want in zip(decoded, frames):
        assert np.abs(got.astype(int) - want.astype(int)).mean() < 12


def test_odd_video_size_is_made_even(tmp_path):
    out = tmp_path / "odd.mp4"
    with VideoWriter(out, 10, 65, 49) as w:
        w.write(np.zeros((49, 65, 3), np.uint8))
    _, info = open_video(out)
    assert (info.width, info.height) == (64, 48)


@pytest.mark.parametrize("content", [b"\x00" * 1000, b"", b"just text"])
def test_corrupt_video(tmp_path, content):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    with pytest.raises(MediaError, match=r"bad\.mp4"):
        open_video(bad)


def test_video_urls_are_named_without_passwords():
    with pytest.raises(MediaError) as err:
        open_video("rtsp://admin:s3cret@127.0.0.1:1/none")
    assert "s3cret" not in str(err.value) and "admin:***@127.0.0.1" in str(err.value)


def test_kind_of():
    assert kind_of("a.JPG") == "image"
    assert kind_of("b.mp4") == "video"
    assert kind_of("c.txt") is None
    assert kind_of("noext") is None
