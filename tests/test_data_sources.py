"""jaxtrainer.data: the embedded digits set, the rotated-Fashion-MNIST folder format, arrays, and
the default source, each with its error messages."""

import io
import json
import os
import random
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from jaxtrainer.data import Dataset, dataset, fingerprint, load

# --- digits -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    return load("digits")


def recover_angles(y, y_train):
    """The integer angles behind standardised targets, without the module's help.

    The train angles are integers spanning 0..90 (1497 draws of 91 values reach both ends), so the
    standardisation (a - mean) / std is pinned down by where min and max of y_train land."""
    lo, hi = float(y_train.min()), float(y_train.max())
    std = 90.0 / (hi - lo)
    mean = -lo * std
    return np.asarray(y, np.float64) * std + mean


def test_digits_shapes_and_types(digits):
    assert isinstance(digits, Dataset) and digits.name == "digits"
    assert digits.X_train.shape == (1497, 1, 28, 28) and digits.X_test.shape == (300, 1, 28, 28)
    assert digits.y_train.shape == (1497, 1) and digits.y_test.shape == (300, 1)
    for a in (digits.X_train, digits.y_train, digits.X_test, digits.y_test):
        assert a.dtype == np.float32
        assert np.all(np.isfinite(a))
    assert digits.image_shape == (1, 28, 28)
    assert digits.train[0] is digits.X_train and digits.train[1] is digits.y_train
    assert digits.test[0] is digits.X_test and digits.test[1] is digits.y_test


def test_digits_pixel_range(digits):
    for X in (digits.X_train, digits.X_test):
        assert X.min() == -1.0 and X.max() == 1.0  # both ends reached
    # background is black (-1): the 20x20 digit, rotated about the centre, never reaches the corners
    for corner in (np.s_[:3, :3], np.s_[:3, -3:], np.s_[-3:, :3], np.s_[-3:, -3:]):
        assert np.all(digits.X_train[:, 0][(slice(None), *corner)] == -1.0)
    # the images differ from one another
    flat = digits.X_train.reshape(len(digits.X_train), -1)
    assert len(np.unique(flat, axis=0)) == len(flat)


def test_digits_targets_standardised_with_train_statistics(digits):
    y = digits.y_train.astype(np.float64)
    assert abs(y.mean()) < 1e-5
    assert abs(y.std(ddof=1) - 1) < 1e-5
    angles = recover_angles(digits.y_train, digits.y_train)
    np.testing.assert_allclose(angles, np.round(angles), atol=1e-3)  # integers
    assert set(np.round(angles).astype(int).ravel()) == set(range(91))
    # the test targets sit on the same integer grid in [0, 90]: scaled with the TRAIN mean and std
    test_angles = recover_angles(digits.y_test, digits.y_train)
    np.testing.assert_allclose(test_angles, np.round(test_angles), atol=1e-3)
    assert test_angles.min() > -1e-3 and test_angles.max() < 90 + 1e-3
    # ... and not with their own statistics (300 draws do not have exactly the train mean)
    yt = digits.y_test.astype(np.float64)
    assert abs(yt.mean()) > 1e-3 or abs(yt.std(ddof=1) - 1) > 1e-3


def test_digits_images_match_their_targets(digits):
    """Each target is the rotation of its own image: an upright (0 degree) digit stays inside the
    central 20x20 box it was upscaled into, a digit turned by 1..60 degrees spills out of it."""
    for X, y in ((digits.X_train, digits.y_train), (digits.X_test, digits.y_test)):
        angles = np.round(recover_angles(y, digits.y_train)).astype(int).ravel()
        outside = X[:, 0].copy()
        outside[:, 4:24, 4:24] = -1.0
        spills = (outside > -1.0).any(axis=(1, 2))
        upright, turned = angles == 0, (angles >= 1) & (angles <= 60)
        assert upright.sum() >= 3 and turned.sum() >= 100
        assert not spills[upright].any()
        assert spills[turned].mean() > 0.9


def test_digits_seeded(digits):
    again = load("digits", seed=0)
    for a, b in zip(
        (digits.X_train, digits.y_train, digits.X_test, digits.y_test),
        (again.X_train, again.y_train, again.X_test, again.y_test),
    ):
        np.testing.assert_array_equal(a, b)
    other = load("digits", seed=1)
    assert other.X_train.shape == digits.X_train.shape
    assert not np.array_equal(other.X_train, digits.X_train)
    assert not np.array_equal(other.y_train, digits.y_train)


# --- rotated folder format ----------------------------------------------------------------------


def pattern(i, shape=(28, 28)):
    """A distinct, known uint8 image per index."""
    return ((np.arange(shape[0] * shape[1]).reshape(shape) * (i + 1) + 17 * i) % 256).astype(np.uint8)


def write_png(path, pixels):
    Image.fromarray(pixels, mode="L").save(path)


TRAIN = {0: 10, 1: 350, 2: 45, 10: 90, 11: -5}  # index -> angle
TEST = {3: 180, 7: 0, 20: 12}


def write_split(folder, specs, seed=0):
    os.makedirs(folder, exist_ok=True)
    items = list(specs.items())
    random.Random(seed).shuffle(items)  # written in a shuffled order
    for i, angle in items:
        write_png(os.path.join(folder, f"{i}_{angle}.png"), pattern(i))


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "myset"
    write_split(root / "train", TRAIN)
    write_split(root / "test", TEST, seed=1)
    return root


def expected_targets(train_angles, angles):
    train_angles = np.asarray(train_angles, np.float64)
    return ((np.asarray(angles, np.float64) - train_angles.mean()) / np.std(train_angles, ddof=1)).reshape(
        -1, 1
    )


def test_rotated_folder_order_pixels_targets(folder):
    data = load(str(folder))
    assert data.name == "myset"
    order = [0, 1, 2, 10, 11]  # numeric, not lexicographic (which would put 10 and 11 before 2)
    assert data.X_train.shape == (5, 1, 28, 28) and data.X_test.shape == (3, 1, 28, 28)
    assert data.X_train.dtype == np.float32 and data.y_train.dtype == np.float32
    expected_X = np.stack([(pattern(i) / 255.0 - 0.5) / 0.5 for i in order])[:, None]
    np.testing.assert_allclose(data.X_train, expected_X, atol=1e-6)
    expected_Xt = np.stack([(pattern(i) / 255.0 - 0.5) / 0.5 for i in (3, 7, 20)])[:, None]
    np.testing.assert_allclose(data.X_test, expected_Xt, atol=1e-6)
    train_angles = [TRAIN[i] for i in order]
    np.testing.assert_allclose(data.y_train, expected_targets(train_angles, train_angles), atol=1e-6)
    np.testing.assert_allclose(data.y_test, expected_targets(train_angles, [180, 0, 12]), atol=1e-6)
    # pixel extremes map to the ends of [-1, 1]
    assert data.X_train.min() == -1.0 and data.X_train.max() == 1.0


def test_rotated_folder_pathlike_and_decimal_angle(tmp_path):
    root = tmp_path / "decimal"
    os.makedirs(root / "train")
    os.makedirs(root / "test")
    write_png(root / "train" / "0_30.7.png", pattern(0))  # the angle is the integer part: 30
    write_png(root / "train" / "1_60.png", pattern(1))
    write_png(root / "train" / "2_90.png", pattern(2))
    write_png(root / "test" / "0_45.png", pattern(3))
    (root / "train" / "notes.txt").write_text("not an image, ignored")
    data = load(root)  # a Path works too
    np.testing.assert_allclose(data.y_train, expected_targets([30, 60, 90], [30, 60, 90]), atol=1e-6)
    np.testing.assert_allclose(data.y_test, expected_targets([30, 60, 90], [45]), atol=1e-6)


def test_rotated_folder_rgb_converted_to_grayscale(tmp_path):
    root = tmp_path / "rgb"
    for split, names in (("train", ["0_10.png", "1_20.png"]), ("test", ["0_30.png"])):
        os.makedirs(root / split)
        for name in names:
            Image.fromarray(np.full((28, 28, 3), 255, np.uint8), mode="RGB").save(root / split / name)
    data = load(str(root))
    assert data.X_train.shape == (2, 1, 28, 28)
    assert np.all(data.X_train == 1.0)


def test_rotated_folder_missing_test(tmp_path):
    write_split(tmp_path / "only_train" / "train", TRAIN)
    with pytest.raises(FileNotFoundError, match=r"only_train/test.*<index>_<angle>\.png"):
        load(str(tmp_path / "only_train"))


def test_rotated_folder_empty(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"empty/train"):
        load(str(tmp_path / "empty"))
    (tmp_path / "empty" / "train").mkdir()
    (tmp_path / "empty" / "test").mkdir()
    with pytest.raises(ValueError, match=r"empty/train holds no PNG named <index>_<angle>\.png"):
        load(str(tmp_path / "empty"))


@pytest.mark.parametrize("bad_name", ["img.png", "3.png", "3_.png", "_45.png", "a_45.png", "3_45_1.png"])
def test_rotated_folder_name_without_angle(folder, bad_name):
    write_png(folder / "train" / bad_name, pattern(0))
    with pytest.raises(ValueError, match=rf"train/{bad_name}: the name must be <index>_<angle>\.png"):
        load(str(folder))


def encoded_png(pixels):
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


def test_rotated_folder_truncated_png(folder):
    noisy = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    data = encoded_png(noisy)
    (folder / "test" / "4_33.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"test/4_33\.png: not a readable PNG"):
        load(str(folder))


def test_rotated_folder_corrupt_png(folder):
    (folder / "train" / "5_15.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(ValueError, match=r"train/5_15\.png: not a readable PNG"):
        load(str(folder))


def test_rotated_folder_mixed_sizes(folder):
    write_png(folder / "train" / "12_30.png", pattern(12, (28, 27)))
    with pytest.raises(
        ValueError,
        match=r"train/12_30\.png is 28x27, the first image was 28x28: "
        r"all images must have one size",
    ):
        load(str(folder))


def test_rotated_folder_train_test_sizes_differ(tmp_path):
    root = tmp_path / "sizes"
    write_split(root / "train", TRAIN)
    os.makedirs(root / "test")
    write_png(root / "test" / "0_5.png", pattern(0, (32, 32)))
    with pytest.raises(ValueError, match=r"train images are \(28, 28\) and test images \(32, 32\)"):
        load(str(root))


def test_rotated_folder_constant_angles(tmp_path):
    root = tmp_path / "constant"
    write_split(root / "train", {0: 45, 1: 45})
    write_split(root / "test", {0: 10})
    with pytest.raises(ValueError, match=r"the training targets are constant"):
        load(str(root))


def write_folder_of(root, train, test):
    """A rotated folder from {file name: PIL image} per split."""
    for split, images in (("train", train), ("test", test)):
        os.makedirs(root / split)
        for name, image in images.items():
            image.save(root / split / name)
    return root


def grey_of(image_01):
    """What the homework's mapping makes of [0, 1] pixels, computed here in float64."""
    return ((np.asarray(image_01, np.float64) - 0.5) / 0.5).astype(np.float32)


def load_first_train_image(tmp_path, image, fmt=None, mode=None):
    """The loaded pixels of `image` (a PIL image saved as train/0_10.png, in `fmt` if given, or the
    bytes of a file) next to 8-bit ones; `mode`: the mode the file must open as."""
    root = tmp_path / "modes"
    write_folder_of(root, {"1_20.png": Image.fromarray(pattern(1))}, {"0_5.png": Image.fromarray(pattern(2))})
    path = root / "train" / "0_10.png"
    if isinstance(image, bytes):
        path.write_bytes(image)
    else:
        image.save(path, format=fmt)
    with Image.open(path) as written:
        assert written.mode == (mode or image.mode)
    return load(root).X_train[0, 0]


GREY = pattern(3)


def colour(grey, extra=()):
    return np.stack([grey, grey, grey, *extra], axis=-1)


@pytest.mark.parametrize(
    "mode, image",
    [
        ("L", Image.fromarray(GREY, "L")),
        ("LA", Image.fromarray(np.stack([GREY, pattern(5)], -1), "LA")),  # alpha dropped, as convert("L")
        ("RGB", Image.fromarray(colour(GREY), "RGB")),
        ("RGBA", Image.fromarray(colour(GREY, [pattern(6)]), "RGBA")),
    ],
)
def test_rotated_folder_8bit_grey_modes_exact(tmp_path, mode, image):
    assert image.mode == mode
    np.testing.assert_array_equal(load_first_train_image(tmp_path, image), grey_of(GREY / 255.0))


def test_rotated_folder_palette_and_1bit(tmp_path):
    palette_image = Image.fromarray(pattern(4), "L").convert("P")  # index i -> a grey level
    reversed_palette = [c for level in range(255, -1, -1) for c in (level, level, level)]
    palette_image.putpalette(reversed_palette)  # index i now shows 255 - i
    written = np.asarray(palette_image)
    got = load_first_train_image(tmp_path, palette_image)
    np.testing.assert_array_equal(got, grey_of((255 - written) / 255.0))
    with_alpha = palette_image.convert("PA")
    got = load_first_train_image(tmp_path / "pa", with_alpha, fmt="TIFF")  # 'PA': only TIFF holds it
    np.testing.assert_array_equal(got, grey_of((255 - written) / 255.0))
    checker = (np.indices((28, 28)).sum(0) % 2).astype(bool)
    got = load_first_train_image(tmp_path / "one", Image.fromarray(checker).convert("1"))
    np.testing.assert_array_equal(got, np.where(checker, 1.0, -1.0).astype(np.float32))


def test_rotated_folder_colour_to_luma(tmp_path):
    rgb = np.random.default_rng(2).integers(0, 256, (28, 28, 3), dtype=np.uint8)
    got = load_first_train_image(tmp_path, Image.fromarray(rgb, "RGB"))
    luma = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])  # ITU-R 601-2, as PIL's convert("L")
    np.testing.assert_allclose((got + 1) / 2 * 255, luma, atol=0.51)


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_rotated_folder_low_bit_depth_png_scaled_by_its_range(tmp_path, bits):
    levels = np.indices((28, 28)).sum(0) % (2**bits)  # every level of the bit depth
    image = Image.fromarray((levels * (255 // (2**bits - 1))).astype(np.uint8), "L")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", bits=bits)
    got = load_first_train_image(tmp_path, buffer.getvalue(), mode="1" if bits == 1 else "L")
    np.testing.assert_allclose(got, grey_of(levels / (2**bits - 1)), atol=1e-6)


SPAN16 = np.linspace(0, 65535, 28 * 28).round().astype(np.uint16).reshape(28, 28)


@pytest.mark.parametrize(
    "image, fmt",
    [
        (Image.fromarray(SPAN16), "PNG"),  # a 16-bit PNG opens as 'I;16'
        (Image.fromarray(SPAN16.astype(">u2")), "TIFF"),  # 'I;16B'
        pytest.param(  # 'I;16L': only the IM format opens as it
            Image.frombytes("I;16L", (28, 28), SPAN16.astype("<u2").tobytes()),
            "IM",
            marks=pytest.mark.filterwarnings("ignore:IM image format is deprecated"),
        ),
        (Image.fromarray(SPAN16.astype(np.int32)), "TIFF"),  # 'I', 32-bit integers
    ],
)
def test_rotated_folder_16bit_exact_not_saturated(tmp_path, image, fmt):
    got = load_first_train_image(tmp_path, image, fmt=fmt)
    np.testing.assert_array_equal(got, grey_of(SPAN16 / 65535.0))
    assert (got == 1.0).sum() == 1  # only 65535 is white (convert("L") makes 99 % of them white)


def png16(samples, colour_type):
    """A 16-bit PNG's bytes, which Pillow cannot write: samples (H, W, C), colour type 2 (RGB) or
    4 (grey+alpha)."""

    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    h, w, _ = samples.shape
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in samples)
    header = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("colour_type, channels, mode", [(2, 3, "RGB"), (4, 2, "RGBA")])
def test_rotated_folder_16bit_colour_within_8bit_precision(tmp_path, colour_type, channels, mode):
    samples = np.repeat(SPAN16[..., None], channels, axis=-1)
    if colour_type == 4:
        samples[..., 1] = 65535 - SPAN16  # alpha, dropped
    got = load_first_train_image(tmp_path, png16(samples, colour_type), mode=mode)
    np.testing.assert_array_equal(got, grey_of((SPAN16 >> 8) / 255.0))  # Pillow keeps the high byte
    assert np.abs((got + 1) / 2 - SPAN16 / 65535.0).max() < 1 / 255  # within 8-bit precision
    assert (got == 1.0).sum() < 1 + 28 * 28 / 256  # not saturated


def test_rotated_folder_8bit_and_16bit_images_in_one_split(tmp_path):
    root = write_folder_of(
        tmp_path / "mixed",
        {"0_10.png": Image.fromarray(GREY), "1_20.png": Image.fromarray(SPAN16)},
        {"0_5.png": Image.fromarray(GREY)},
    )
    ds = load(root)
    np.testing.assert_array_equal(ds.X_train[0, 0], grey_of(GREY / 255.0))
    np.testing.assert_array_equal(ds.X_train[1, 0], grey_of(SPAN16 / 65535.0))
    np.testing.assert_array_equal(ds.X_test[0, 0], ds.X_train[0, 0])


@pytest.mark.parametrize(
    "image, fmt, mode",
    [
        (Image.new("CMYK", (28, 28), (10, 20, 30, 40)), "JPEG", "CMYK"),
        (Image.fromarray(np.zeros((28, 28), np.float32)), "TIFF", "F"),
        (Image.new("YCbCr", (28, 28)), "TIFF", "YCbCr"),
    ],
)
def test_rotated_folder_unsupported_mode_refused_by_name(tmp_path, image, fmt, mode):
    with pytest.raises(
        ValueError,
        match=rf"train/0_10\.png: image mode '{mode}' is not supported; allowed: '1', 'L', 'LA', 'P', 'PA', "
        r"'RGB', 'RGBA', 'I;16', 'I;16B', 'I;16L', 'I'$",
    ):
        load_first_train_image(tmp_path, image, fmt=fmt)


def test_rotated_folder_32bit_values_beyond_16_bits_refused(tmp_path):
    big = SPAN16.astype(np.int32) * 2
    with pytest.raises(
        ValueError,
        match=r"0_10\.png: a mode 'I' image with values in \[0, 131070\]: .* 16-bit values 0\.\.65535",
    ):
        load_first_train_image(tmp_path, Image.fromarray(big), fmt="TIFF")


@pytest.mark.parametrize("first, second", [("0_77.png", "0_12.png"), ("00_5.png", "0_7.PNG")])
def test_rotated_folder_repeated_index_names_both(folder, first, second):
    for name in (first, second):
        write_png(folder / "train" / name, pattern(0))
    a, b = sorted((first, second))
    with pytest.raises(ValueError, match=rf"train/{a} and .*train/{b} have the same index 0"):
        load(str(folder))


@pytest.mark.parametrize("angle", ["123456789012345678901234", "361", "-361"])
def test_rotated_folder_angle_out_of_range(folder, angle):
    write_png(folder / "test" / f"5_{angle}.png", pattern(0))
    with pytest.raises(
        ValueError, match=rf"test/5_{angle}\.png: angle {angle} is outside -360\.\.360 degrees"
    ):
        load(str(folder))


def test_rotated_folder_angle_range_ends_accepted(tmp_path):
    root = tmp_path / "ends"
    write_split(root / "train", {0: -360, 1: 360})
    write_split(root / "test", {0: 0})
    np.testing.assert_allclose(load(root).y_train, expected_targets([-360, 360], [-360, 360]), atol=1e-6)


def test_rotated_folder_non_ascii_digits_refused(folder):
    write_png(folder / "train" / "\u0663_45.png", pattern(0))  # an Arabic-Indic 3, which int() reads
    with pytest.raises(ValueError, match=r"_45\.png: the name must be <index>_<angle>\.png"):
        load(str(folder))


def test_rotated_folder_link_loops(folder):
    os.symlink("9_10.png", folder / "train" / "9_10.png")  # a link to itself
    with pytest.raises(
        ValueError, match=r"train/9_10\.png: cannot be read \(Too many levels of symbolic links\)"
    ):
        load(str(folder))
    os.remove(folder / "train" / "9_10.png")
    os.symlink("missing.png", folder / "train" / "9_10.png")
    with pytest.raises(ValueError, match=r"train/9_10\.png: cannot be read \(No such file or directory\)"):
        load(str(folder))
    os.remove(folder / "train" / "9_10.png")
    load(str(folder))  # whole again
    os.rename(folder / "test", folder / "test_saved")
    os.symlink("test", folder / "test")  # the split folder a loop
    with pytest.raises(ValueError, match=r"myset/test is a symbolic link loop or a link to nothing"):
        load(str(folder))


def test_rotated_folder_not_a_file_or_not_a_folder(folder):
    (folder / "train" / "9_10.png").mkdir()
    with pytest.raises(ValueError, match=r"train/9_10\.png: cannot be read \(a folder, not a regular file\)"):
        load(str(folder))
    os.rmdir(folder / "train" / "9_10.png")
    for name in os.listdir(folder / "test"):
        os.remove(folder / "test" / name)
    os.rmdir(folder / "test")
    (folder / "test").write_text("not a folder")
    with pytest.raises(ValueError, match=r"myset/test is a file: expected a folder of PNGs named"):
        load(str(folder))


def test_rotated_folder_empty_test_split(folder):
    for name in os.listdir(folder / "test"):
        os.remove(folder / "test" / name)
    with pytest.raises(ValueError, match=r"myset/test holds no PNG named <index>_<angle>\.png"):
        load(str(folder))


def test_rotated_folder_one_training_image(tmp_path):
    root = tmp_path / "one"
    write_split(root / "train", {0: 10})
    write_split(root / "test", {0: 20})
    with pytest.raises(ValueError, match=r"1 training target\(s\): at least 2 are needed"):
        load(root)


@pytest.mark.parametrize(
    "raw_name, shown",
    [
        (b"caf\xe9 set", "caf\\xe9 set"),
        (b"two\nlines", "two\\nlines"),
        ("d\u00e9j\u00e0".encode(), "d\u00e9j\u00e0"),
    ],
)
def test_rotated_folder_name_printable(tmp_path, raw_name, shown):
    root = os.path.join(os.fsencode(tmp_path), raw_name)
    write_split(os.fsdecode(os.path.join(root, b"train")), TRAIN)
    write_split(os.fsdecode(os.path.join(root, b"test")), TEST)
    for path in (root, os.fsdecode(root)):  # bytes, or str holding the undecodable bytes
        ds = load(path)
        assert ds.name == shown and ds.name.isprintable()
        ds.name.encode("utf-8")  # a plot title or a JSON file can hold it
    os.symlink(b"0_10.png", os.path.join(root, b"train", b"7_\xff.png"))
    with pytest.raises(ValueError, match=r"train/7_\\xff\.png: the name must be") as info:
        load(root)
    str(info.value).encode("utf-8")


# --- arrays ---------------------------------------------------------------------------------------


def arrays(n=6, nt=3, shape=(1, 5, 4), seed=0):
    rng = np.random.default_rng(seed)
    return (
        (rng.standard_normal((n, *shape)).astype(np.float32), rng.standard_normal((n, 1))),
        (rng.standard_normal((nt, *shape)).astype(np.float32), rng.standard_normal(nt)),
    )


def test_arrays_kept_as_given():
    (X, y), (Xt, yt) = arrays()
    data = load(((X, y), (Xt, yt)))
    assert data.name == "arrays"
    np.testing.assert_array_equal(data.X_train, X)
    np.testing.assert_array_equal(data.X_test, Xt)
    np.testing.assert_allclose(data.y_train, y, rtol=1e-6)  # not re-standardised
    assert data.y_test.shape == (3, 1)  # (N,) becomes (N, 1)
    np.testing.assert_allclose(data.y_test[:, 0], yt, rtol=1e-6)
    assert all(a.dtype == np.float32 for a in (data.X_train, data.y_train, data.X_test, data.y_test))
    assert data.image_shape == (1, 5, 4)
    again = load([[X, y], [Xt, yt]])  # lists too
    np.testing.assert_array_equal(again.X_train, X)
    assert load(data) is data  # a Dataset passes through


def test_arrays_from_torch_tensors():
    (X, y), (Xt, yt) = arrays()
    data = load(
        (
            (torch.from_numpy(X), torch.from_numpy(y).float()),
            (torch.from_numpy(Xt), torch.from_numpy(yt).float()),
        )
    )
    np.testing.assert_array_equal(data.X_train, X)
    np.testing.assert_allclose(data.y_train, y, rtol=1e-6)
    np.testing.assert_allclose(data.y_test[:, 0], yt, rtol=1e-6)
    assert isinstance(data.X_train, np.ndarray)
    # a tensor that requires grad is detached
    data = load(
        (
            (torch.from_numpy(X).requires_grad_(), torch.from_numpy(y).float()),
            (torch.from_numpy(Xt), torch.from_numpy(yt).float()),
        )
    )
    np.testing.assert_array_equal(data.X_train, X)


def replaced(part, index, value):
    (X, y), (Xt, yt) = arrays()
    parts = [[X, y], [Xt, yt]]
    parts[part][index] = value
    return tuple(map(tuple, parts))


def test_arrays_wrong_rank():
    (X, _), _ = arrays()
    with pytest.raises(ValueError, match=r"X_train must be images \(N, C, H, W\), got shape \(6, 5, 4\)"):
        load(replaced(0, 0, X[:, 0]))
    with pytest.raises(ValueError, match=r"X_test must be images \(N, C, H, W\), got shape \(6, 20\)"):
        load(replaced(1, 0, X.reshape(6, 20)))


def test_arrays_target_length_mismatch():
    with pytest.raises(
        ValueError,
        match=r"y_train must have shape \(6, 1\) to match X_train, got "
        r"\(5, 1\)",
    ):
        load(replaced(0, 1, np.zeros((5, 1))))
    with pytest.raises(
        ValueError,
        match=r"y_test must have shape \(3, 1\) to match X_test, got "
        r"\(3, 2\)",
    ):
        load(replaced(1, 1, np.zeros((3, 2))))


def test_arrays_non_finite():
    (X, y), (Xt, yt) = arrays()
    X = X.copy()
    X[2, 0, 1, 1] = np.nan
    with pytest.raises(ValueError, match=r"X_train contains NaN or Inf values"):
        load(((X, y), (Xt, yt)))
    yt = yt.copy()
    yt[0] = np.inf
    with pytest.raises(ValueError, match=r"y_test contains NaN or Inf values"):
        load(replaced(1, 1, yt))


def test_arrays_empty():
    with pytest.raises(ValueError, match=r"X_train is empty: at least one example is needed"):
        load(replaced(0, 0, np.zeros((0, 1, 5, 4), np.float32)))


def test_arrays_train_test_shape_mismatch():
    with pytest.raises(
        ValueError,
        match=r"train images \(1, 5, 4\) and test images \(1, 4, 5\) "
        r"differ in shape",
    ):
        load(replaced(1, 0, np.zeros((3, 1, 4, 5), np.float32)))


def test_arrays_bad_structure():
    (X, y), (Xt, yt) = arrays()
    with pytest.raises(
        ValueError,
        match=r"dataset arrays must be \(\(X_train, y_train\), "
        r"\(X_test, y_test\)\)",
    ):
        load((X, y, Xt, yt))


@pytest.mark.parametrize(
    "part, index, value, label, dtype",
    [
        (0, 0, np.empty((6, 1, 5, 4), object), "X_train", "object"),
        (0, 1, np.array(["a"] * 6), "y_train", "<U1"),
        (1, 0, np.zeros((3, 1, 5, 4), np.complex64), "X_test", "complex64"),
        (1, 1, np.array(["2020-01-01"] * 3, "datetime64[D]"), "y_test", r"datetime64\[D\]"),
    ],
)
def test_arrays_non_numeric_refused_by_name(part, index, value, label, dtype):
    with pytest.raises(
        TypeError, match=rf"^{label} has dtype {dtype}: expected bool, integer or floating-point numbers$"
    ):
        load(replaced(part, index, value))


def test_arrays_ragged_or_foreign_objects_refused():
    with pytest.raises(
        TypeError, match=r"^y_train cannot be read as an array \(.*\): expected bool, integer"
    ):
        load(replaced(0, 1, [[1.0], [2.0, 3.0], [4.0], [5.0], [6.0], [7.0]]))
    with pytest.raises(TypeError, match=r"^X_test has dtype object: expected"):
        load(replaced(1, 0, {"not": "an array"}))
    with pytest.raises(TypeError, match=r"^X_train has dtype complex64: expected"):
        load(replaced(0, 0, torch.zeros((6, 1, 5, 4), dtype=torch.complex64)))


def test_arrays_bfloat16_tensor_read_exactly():
    (X, y), (Xt, yt) = arrays()
    X16 = torch.from_numpy(X).to(torch.bfloat16)
    ds = load(((X16, y), (Xt, yt)))
    np.testing.assert_array_equal(ds.X_train, X16.float().numpy())  # bfloat16 -> float32 is exact


def test_arrays_beyond_float32_refused():
    (X, y), (Xt, yt) = arrays()
    X = X.astype(np.float64)
    X[1, 0, 0, 0] = 1e39
    with pytest.raises(ValueError, match=r"^X_train holds values beyond float32's range"):
        load(((X, y), (Xt, yt)))


def test_load_what_is_not_a_dataset():
    with pytest.raises(
        TypeError, match=r"dataset must be a name, a folder, arrays .* or a Dataset, got a int"
    ):
        load(5)


# --- fingerprint -----------------------------------------------------------------------------------


def big_arrays(n=500, nt=40):
    """More examples than the old every-97th sample looked at, and distinct labels."""
    rng = np.random.default_rng(3)
    return (
        (rng.standard_normal((n, 1, 6, 5)).astype(np.float32), rng.permutation(n).astype(np.float32)),
        (rng.standard_normal((nt, 1, 6, 5)).astype(np.float32), rng.standard_normal(nt).astype(np.float32)),
    )


def edited(edit):
    (X, y), (Xt, yt) = (tuple(a.copy() for a in pair) for pair in big_arrays())
    edit(X, y, Xt, yt)
    return (X, y), (Xt, yt)


def swap_labels(X, y, Xt, yt):
    y[[201, 202]] = y[[202, 201]]


def edit_pixel(X, y, Xt, yt):
    X[300, 0, 3, 2] = np.nextafter(X[300, 0, 3, 2], np.float32(np.inf))  # one ulp


def edit_test_image(X, y, Xt, yt):
    Xt[17, 0, 5, 4] += 1


def edit_test_target(X, y, Xt, yt):
    yt[33] = -yt[33]


@pytest.mark.parametrize("edit", [swap_labels, edit_pixel, edit_test_image, edit_test_target])
def test_fingerprint_covers_every_value(edit):
    base = fingerprint(*big_arrays())
    assert fingerprint(*big_arrays()) == base  # deterministic
    assert fingerprint(*edited(edit)) != base
    assert fingerprint(*edited(edit))["train"] == base["train"]  # same shapes, other data


def test_fingerprint_dtypes_and_shapes_count():
    (X, y), test = big_arrays()
    base = fingerprint((X, y), test)
    assert fingerprint((X.astype(np.float64), y), test) != base  # the same values in another dtype
    assert fingerprint((X.reshape(500, 1, 5, 6), y), test) != base  # the same bytes in another shape
    assert fingerprint((X, y.reshape(-1, 1)), test) != base
    swapped = fingerprint(test, (X, y))  # train and test exchanged
    assert swapped != base and swapped["train"] == list(test[0].shape)


def test_fingerprint_equal_data_equal_fingerprint(monkeypatch):
    (X, y), (Xt, yt) = big_arrays()
    base = fingerprint((X, y), (Xt, yt))
    assert fingerprint((torch.from_numpy(X), torch.from_numpy(y)), (torch.from_numpy(Xt), yt)) == base
    assert fingerprint((X.astype(">f4"), y), (Xt, yt)) == base  # big-endian bytes, same values
    monkeypatch.setattr(dataset, "_HASH_CHUNK_BYTES", 1000)  # several chunks for a strided array
    strided = np.zeros((500, 1, 6, 10), np.float32)[..., ::2]
    strided[...] = X
    assert not strided.flags.c_contiguous
    assert fingerprint((strided, y), (np.asfortranarray(Xt), yt)) == base


def test_fingerprint_is_small_json():
    fp = fingerprint(*big_arrays())
    assert json.loads(json.dumps(fp)) == fp
    assert fp["train"] == [500, 1, 6, 5] and fp["test"] == [40, 1, 6, 5]
    assert set(fp) == {"train", "test", "sha256"} and len(fp["sha256"]) == 64
    int(fp["sha256"], 16)


def test_fingerprint_refuses_non_numeric():
    (X, y), test = big_arrays()
    with pytest.raises(TypeError, match=r"^y_train has dtype object"):
        fingerprint((X, y.astype(object)), test)


# --- default source and names -------------------------------------------------------------------


def test_load_none_without_default_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"\./rotated_fashion_mnist does not exist") as info:
        load(None)
    message = str(info.value)
    assert "dataset='digits'" in message
    assert "Nothing is downloaded" in message
    assert os.listdir(tmp_path) == []  # nothing was fetched or written
    with pytest.raises(FileNotFoundError):
        load()


def test_load_none_uses_default_folder(tmp_path, monkeypatch):
    write_split(tmp_path / "rotated_fashion_mnist" / "train", TRAIN)
    write_split(tmp_path / "rotated_fashion_mnist" / "test", TEST)
    monkeypatch.chdir(tmp_path)
    data = load(None)
    assert data.name == "rotated_fashion_mnist"
    assert data.X_train.shape == (5, 1, 28, 28) and data.X_test.shape == (3, 1, 28, 28)
    np.testing.assert_allclose(data.X_train[3, 0], (pattern(10) / 255.0 - 0.5) / 0.5, atol=1e-6)


@pytest.mark.parametrize("name", ["nonsense", "Digits", "MNIST", "./no_such_folder"])
def test_load_unknown_name(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        ValueError,
        match=rf"unknown dataset '{name}': expected one of \('digits', "
        r"'fashion_mnist', 'mnist', 'svhn', 'cifar10'\), "
        r"an existing folder",
    ):
        load(name)
