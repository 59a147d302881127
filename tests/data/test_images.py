"""load_image: every format and mode decodes to 8-bit RGB/L; every bad kind raises with its reason."""

from __future__ import annotations

import errno
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from graft.data import ImageError, load_image
from graft.data.images import decode_image
from graft.errors import DataError

from .conftest import BAD, png_header_bomb

# graft.data.images silences these at import; pytest resets warning filters for each test
pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning:PIL.TiffImagePlugin"),
    pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning"),
]


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_files_raise_with_reason(messy_folder: Path, name: str) -> None:
    with pytest.raises(ImageError) as info:
        load_image(messy_folder / name)
    assert info.value.reason == BAD[name]
    assert isinstance(info.value, DataError)
    assert name.split("/")[-1] in str(info.value)


def test_html_saved_as_jpg_is_named(messy_folder: Path) -> None:
    with pytest.raises(ImageError, match="HTML"):
        load_image(messy_folder / "beta/page.jpg")


def test_bomb_below_pillow_limit_is_refused_by_graft_limit() -> None:
    with pytest.raises(ImageError) as info:
        decode_image(png_header_bomb(11_000, 11_000), "big.png")  # 121 MP > 100 MP
    assert info.value.reason == "decompression bomb"


def test_permission_denied_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "locked.png"
    Image.new("L", (4, 4)).save(path)
    path.chmod(0)
    try:
        if not _readable(path):  # not root: the real thing
            with pytest.raises(ImageError, match="permission denied"):
                load_image(path)
            return

        # root reads anything: emulate the OS refusing the read
        def deny(self: Path) -> bytes:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))

        monkeypatch.setattr(Path, "read_bytes", deny)
        with pytest.raises(ImageError) as info:
            load_image(path)
        assert info.value.reason == "permission denied"
    finally:
        path.chmod(0o644)


def _readable(path: Path) -> bool:
    try:
        path.read_bytes()
        return True
    except PermissionError:
        return False


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="missing file"):
        load_image(tmp_path / "nope.png")


@pytest.mark.parametrize(
    "name, mode, size",
    [
        ("alpha/rgb.jpg", "RGB", (30, 24)),
        ("alpha/gray.png", "L", (20, 20)),
        ("alpha/cmyk.jpg", "RGB", (8, 8)),
        ("beta/palette.png", "RGB", (4, 4)),
        ("beta/rgba.png", "RGB", (16, 16)),
        ("beta/la.png", "L", (16, 16)),
        ("beta/one.png", "RGB", (1, 1)),
        ("beta/bilevel.bmp", "L", (20, 20)),
        ("beta/photo.webp", "RGB", (30, 24)),
        ("beta/nested/deep.tif", "RGB", (30, 24)),
        ("alpha/my photo é.png", "RGB", (10, 12)),
        ("beta/Ünïcode name.JPG", "RGB", (30, 24)),
        ("alpha/float.tiff", "L", (10, 12)),
    ],
)
def test_modes_keep_nature_and_convert_on_request(
    messy_folder: Path, name: str, mode: str, size
) -> None:
    native = load_image(messy_folder / name, mode=None)
    assert (native.mode, native.size) == (mode, size)
    assert load_image(messy_folder / name).mode == "RGB"
    gray = load_image(messy_folder / name, mode="L")
    assert gray.mode == "L" and np.asarray(gray).shape == (size[1], size[0])


@pytest.mark.parametrize("name", ["alpha/sixteen.png", "alpha/sixteen.tif"])
def test_16bit_is_scaled_not_clipped(messy_folder: Path, name: str) -> None:
    raw = np.arange(256, dtype=np.uint32).reshape(16, 16) * 257  # what the fixture wrote
    img = load_image(messy_folder / name, mode=None)
    assert img.mode == "L"
    np.testing.assert_array_equal(np.asarray(img), np.rint(raw * 255 / 65535).astype(np.uint8))
    assert np.asarray(img).max() == 255  # clipping would saturate at 255 from value 255 on


def test_float_tiff_in_unit_range_scales_by_255(messy_folder: Path) -> None:
    arr = np.asarray(load_image(messy_folder / "alpha/float.tiff", mode=None))
    expected = np.rint(np.linspace(0, 1, 120, dtype=np.float32).astype(np.float64) * 255).reshape(
        12, 10
    )
    np.testing.assert_array_equal(arr, expected.astype(np.uint8))


def test_float_outside_unit_range_is_stretched(tmp_path: Path) -> None:
    path = tmp_path / "hdr.tif"
    Image.fromarray(np.array([[-5.0, 0.0], [5.0, 15.0]], dtype=np.float32), "F").save(path)
    np.testing.assert_array_equal(np.asarray(load_image(path, None)), [[0, 64], [128, 255]])


def test_palette_transparency_composited_on_white(messy_folder: Path) -> None:
    arr = np.asarray(load_image(messy_folder / "beta/palette.png"))
    assert tuple(arr[0, 0]) == (255, 0, 0)
    assert (arr.reshape(-1, 3)[1:] == 255).all()


def test_rgba_composited_on_white(tmp_path: Path) -> None:
    path = tmp_path / "half.png"
    Image.new("RGBA", (2, 2), (0, 0, 0, 128)).save(path)
    value = np.asarray(load_image(path))[0, 0]
    np.testing.assert_allclose(value, [127, 127, 127], atol=1)


def test_cmyk_becomes_rgb(messy_folder: Path) -> None:
    np.testing.assert_allclose(
        np.asarray(load_image(messy_folder / "alpha/cmyk.jpg"))[4, 4], [255, 0, 0], atol=3
    )


def test_exif_orientation_applied(messy_folder: Path) -> None:
    img = load_image(messy_folder / "beta/rotated.jpg")
    assert img.size == (20, 40)  # stored 40x20, orientation 6 rotates it upright
    arr = np.asarray(img).astype(int)
    assert arr[2, 10, 2] > 200 and arr[2, 10, 0] < 60  # the blue left strip is now on top
    assert arr[35, 10, 0] > 200 and arr[35, 10, 2] < 60


def test_invalid_mode_argument(messy_folder: Path) -> None:
    with pytest.raises(ValueError, match="mode"):
        load_image(messy_folder / "alpha/gray.png", mode="CMYK")


def test_mutated_files_decode_or_raise_image_error(tmp_path: Path) -> None:
    """Fuzz: random byte flips and cuts of valid files never raise anything but ImageError."""
    rng = np.random.default_rng(0)
    sources = {}
    for fmt in ("PNG", "JPEG", "BMP", "TIFF", "WEBP", "GIF"):
        buf = io.BytesIO()
        Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(buf, format=fmt)
        sources[fmt] = buf.getvalue()
    outcomes = {"ok": 0, "error": 0}
    for fmt, data in sources.items():
        for _ in range(60):
            mutated = bytearray(data)
            for pos in rng.integers(0, len(mutated), size=int(rng.integers(1, 6))):
                mutated[pos] = int(rng.integers(0, 256))
            if rng.random() < 0.3:
                mutated = mutated[: int(rng.integers(1, len(mutated)))]
            try:
                img = decode_image(bytes(mutated), f"fuzz.{fmt.lower()}")
                assert img.mode == "RGB"
                outcomes["ok"] += 1
            except ImageError:
                outcomes["error"] += 1
    assert outcomes["error"] > 0 and outcomes["ok"] > 0
