import pytest

from core.media import MediaError, VideoWriter, iter_video, kind_of, open_video, read_image


def test_read_real_image(gloved_images):
    img = read_image(gloved_images[0])
    assert img.ndim == 3 and img.shape[2] == 3


@pytest.mark.parametrize("data,message", [
    (b"", "empty"),
    (b"this is text, not a picture", "not an image"),
])
def test_bad_images(data, message):
    with pytest.raises(MediaError, match=message):
        read_image(data, "x.jpg")


def test_truncated_jpeg(gloved_images):
    data = gloved_images[0].read_bytes()
    with pytest.raises(MediaError, match="truncated"):
        read_image(data[: len(data) // 3], "cut.jpg")


def test_video_round_trip(tmp_path, gloved_images):
    import cv2

    frames = [cv2.resize(read_image(p), (320, 240)) for p in gloved_images[:3]]
    out = tmp_path / "clip.mp4"
    with VideoWriter(out, 5, 320, 240) as w:
        for f in frames:
            w.write(f)
    _, info = open_video(out)
    assert (info.width, info.height) == (320, 240)
    assert len(list(iter_video(out))) == 3


def test_corrupt_video(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 1000)
    with pytest.raises(MediaError):
        open_video(bad)


def test_kind_of():
    assert kind_of("a.JPG") == "image"
    assert kind_of("b.mp4") == "video"
    assert kind_of("c.txt") is None
