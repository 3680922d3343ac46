"""Tests for the synthetic CelebA stand-in: on-disk format, determinism, caching, atomicity,
visible attributes and the attribute distribution."""

import os
import re

import numpy as np
import pytest
from PIL import Image

from homogan.data import synthetic
from homogan.celeba_attributes import CELEBA_ATTRIBUTES, CELEBA_IMAGE_HEIGHT, CELEBA_IMAGE_WIDTH
from homogan.data.synthetic import dataset_dir, generate, render_face, sample_attributes
from homogan.errors import DataError, UserError

IDX = {name: i for i, name in enumerate(CELEBA_ATTRIBUTES)}
N, SEED = 60, 7


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A small dataset generated with 2 worker processes, into a root that does not exist yet."""
    root = tmp_path_factory.mktemp("synthetic") / "nested" / "root"
    return generate(root, N, SEED, workers=2, progress=False)


def read_table(folder):
    lines = (folder / "list_attr_celeba.txt").read_text().splitlines()
    return np.array([[int(v) for v in line.split()[1:]] for line in lines[2:]], dtype=np.int8)


def pixels(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


# --- layout and format ----------------------------------------------------------------------


def test_dataset_dir_name(tmp_path):
    expected = f"celeba-synthetic-v{synthetic.SYNTHETIC_VERSION}-n100-seed3"
    assert dataset_dir(tmp_path, 100, 3) == tmp_path / expected
    assert dataset_dir(str(tmp_path), 100, 3) == tmp_path / expected


def test_attribute_file_matches_celeba_format(dataset):
    text = (dataset / "list_attr_celeba.txt").read_text()
    assert text.endswith("\n") and "\r" not in text
    lines = text.splitlines()
    assert lines[0] == str(N)
    assert lines[1] == " ".join(CELEBA_ATTRIBUTES)
    rows = lines[2:]
    assert len(rows) == N
    row_format = re.compile(r"^\d{6}\.jpg( (-1| 1)){40}$")  # values right-aligned in 2 chars
    for i, row in enumerate(rows, start=1):
        assert row_format.match(row), row
        assert row.split()[0] == f"{i:06d}.jpg"
    # The values are exactly the seeded attribute table.
    expected = sample_attributes(np.random.default_rng(SEED), N)
    np.testing.assert_array_equal(read_table(dataset), expected)


def test_partition_file_is_contiguous_80_10_10(dataset):
    lines = (dataset / "list_eval_partition.txt").read_text().splitlines()
    assert len(lines) == N
    names, parts = zip(*(line.split(" ") for line in lines))
    assert list(names) == [f"{i:06d}.jpg" for i in range(1, N + 1)]
    assert all(re.fullmatch(r"\d{6}\.jpg [012]", line) for line in lines)
    parts = [int(p) for p in parts]
    assert parts == sorted(parts)  # contiguous blocks: train, valid, test
    assert [parts.count(k) for k in (0, 1, 2)] == [48, 6, 6]


def test_images_are_178x218_rgb_jpegs(dataset):
    img_dir = dataset / "img_align_celeba"
    assert sorted(os.listdir(img_dir)) == [f"{i:06d}.jpg" for i in range(1, N + 1)]
    for name in ("000001.jpg", f"{N:06d}.jpg"):
        with Image.open(img_dir / name) as im:
            assert im.format == "JPEG"
            assert im.mode == "RGB"
            assert im.size == (CELEBA_IMAGE_WIDTH, CELEBA_IMAGE_HEIGHT)
    assert sorted(os.listdir(dataset)) == ["img_align_celeba", "list_attr_celeba.txt",
                                           "list_eval_partition.txt"]


# --- determinism, reuse, atomicity ----------------------------------------------------------


def test_same_seed_is_identical_whatever_the_workers(dataset, tmp_path):
    other = generate(tmp_path, N, SEED, workers=1, progress=False)
    assert other != dataset
    assert (other / "list_attr_celeba.txt").read_bytes() == (dataset / "list_attr_celeba.txt").read_bytes()
    assert (other / "list_eval_partition.txt").read_bytes() == (dataset / "list_eval_partition.txt").read_bytes()
    for i in (1, 2, 31, N):
        name = f"img_align_celeba/{i:06d}.jpg"
        np.testing.assert_array_equal(pixels(other / name), pixels(dataset / name))


def test_different_seed_differs(dataset, tmp_path):
    other = generate(tmp_path, N, SEED + 1, workers=1, progress=False)
    assert not np.array_equal(read_table(other), read_table(dataset))
    name = "img_align_celeba/000001.jpg"
    assert np.abs(pixels(other / name).astype(int) - pixels(dataset / name)).mean() > 10


def test_progress_in_a_log_is_one_line_per_tenth(tmp_path, capsys):
    """Not a terminal (capsys, CI, a log file): whole lines at each tenth, no carriage-return redraws."""
    generate(tmp_path, 40, 1, workers=1, progress=True)  # 8 chunks of 5
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert "\r" not in err and err.endswith("\n")
    assert 2 <= len(lines) <= 10 and lines[-1] == "generating synthetic faces: 40/40", lines


def test_existing_dataset_is_reused_not_rewritten(tmp_path, capsys):
    first = generate(tmp_path, 5, 1, workers=1, progress=True)
    assert "generating synthetic faces: 5/5" in capsys.readouterr().err
    files = [first / "list_attr_celeba.txt", first / "img_align_celeba" / "000003.jpg"]
    before = [f.stat().st_mtime_ns for f in files]
    assert generate(tmp_path, 5, 1, workers=1, progress=True) == first
    assert capsys.readouterr().err == ""  # nothing generated the second time
    assert [f.stat().st_mtime_ns for f in files] == before
    assert os.listdir(tmp_path) == [first.name]  # no temporary folder left behind


@pytest.mark.parametrize("error", [KeyboardInterrupt, RuntimeError])
def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch, error):
    calls = []

    def failing_render(attributes, rng):
        calls.append(1)
        if len(calls) > 4:
            raise error("interrupted")
        return render_face(attributes, rng)

    monkeypatch.setattr(synthetic, "render_face", failing_render)
    with pytest.raises(error):
        generate(tmp_path, 20, 0, workers=1, progress=False)
    assert len(calls) == 5
    assert os.listdir(tmp_path) == []


def test_incomplete_existing_folder_is_an_error(tmp_path):
    dataset_dir(tmp_path, 5, 0).mkdir()
    with pytest.raises(DataError, match="delete it"):
        generate(tmp_path, 5, 0, workers=1, progress=False)


@pytest.mark.parametrize("num_images, seed", [(0, 0), (-3, 0), (5, -1), (2.5, 0)])
def test_bad_parameters_are_user_errors(tmp_path, num_images, seed):
    with pytest.raises(UserError):
        generate(tmp_path, num_images, seed, workers=1, progress=False)


# --- rendering ------------------------------------------------------------------------------


def face(*names):
    attributes = -np.ones(40, dtype=np.int8)
    for name in names:
        attributes[IDX[name]] = 1
    return attributes


def as_64px(image):
    """Like the training pipeline: centre crop 160x160, resize to 64x64."""
    crop = image[29:189, 9:169]
    return np.asarray(Image.fromarray(crop).resize((64, 64), Image.BILINEAR), dtype=np.float64)


def test_render_face_shape_and_determinism():
    attributes = sample_attributes(np.random.default_rng(0), 1)[0]
    a = render_face(attributes, np.random.default_rng(5))
    assert a.shape == (CELEBA_IMAGE_HEIGHT, CELEBA_IMAGE_WIDTH, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, render_face(attributes, np.random.default_rng(5)))
    assert not np.array_equal(a, render_face(attributes, np.random.default_rng(6)))


ALL = slice(0, 64)
EYES = (slice(26, 40), slice(16, 48))
HEAD_TOP = (slice(2, 14), slice(20, 44))
JAW = (slice(46, 62), slice(16, 48))
MOUTH = (slice(46, 56), slice(24, 40))
FACE = (slice(22, 58), slice(20, 44))
BESIDE_FACE = (slice(34, 60), np.r_[0:12, 52:64])
BELOW_EYES = (slice(44, 64), ALL)
ABOVE_MOUTH = (slice(0, 36), ALL)
ABOVE_JAW = (slice(0, 26), ALL)
BELOW_HAT = (slice(30, 64), ALL)
CORNERS = (slice(0, 8), np.r_[0:8, 56:64])
LOWER_FACE = (slice(40, 64), slice(22, 42))

MAN = ("Male", "Young", "Brown_Hair", "No_Beard")
WOMAN = ("Young", "Brown_Hair", "No_Beard")

# (base face, attribute to flip, attribute to clear with it, where it shows, min mean |diff| there
# (0-255 scale), where it must not show). Thresholds: about half the smallest value measured over
# 30 seeds (a long-hair/background colour clash can hide Male's hair; 6 seeds are tested here).
VISIBLE = {
    "Eyeglasses": (MAN, "Eyeglasses", None, EYES, 7, BELOW_EYES),
    "Bald": (MAN, "Bald", None, HEAD_TOP, 20, BELOW_EYES),
    "beard": (MAN, "No_Beard", None, JAW, 15, ABOVE_JAW),
    "Smiling": (MAN, "Smiling", None, MOUTH, 7, ABOVE_MOUTH),
    "Mouth_Slightly_Open": (WOMAN, "Mouth_Slightly_Open", None, MOUTH, 4.5, ABOVE_MOUTH),
    "Wearing_Hat": (WOMAN, "Wearing_Hat", None, HEAD_TOP, 22, BELOW_HAT),
    "Pale_Skin": (WOMAN, "Pale_Skin", None, FACE, 18, CORNERS),
    "Male": (WOMAN, "Male", None, BESIDE_FACE, 6, CORNERS),
    "Black_Hair": (MAN, "Black_Hair", "Brown_Hair", HEAD_TOP, 6, LOWER_FACE),
    "Blond_Hair": (MAN, "Blond_Hair", "Brown_Hair", HEAD_TOP, 35, LOWER_FACE),
    "Gray_Hair": (MAN, "Gray_Hair", "Brown_Hair", HEAD_TOP, 35, LOWER_FACE),
}


@pytest.mark.parametrize("case", VISIBLE)
def test_attribute_is_visible_at_64px_where_expected(case):
    base, flip, clear, region, minimum, elsewhere = VISIBLE[case]
    before = face(*base)
    after = before.copy()
    after[IDX[flip]] *= -1
    if clear:
        after[IDX[clear]] = -1
    for seed in range(6):  # different skin tones, positions, backgrounds
        diff = np.abs(as_64px(render_face(before, np.random.default_rng(seed)))
                      - as_64px(render_face(after, np.random.default_rng(seed)))).mean(axis=2)
        assert diff[region].mean() > minimum, (case, seed, diff[region].mean())
        assert diff[elsewhere].mean() < 2.5, (case, seed, diff[elsewhere].mean())


# --- attribute distribution -----------------------------------------------------------------


@pytest.fixture(scope="module")
def table():
    return sample_attributes(np.random.default_rng(0), 20_000) > 0


def test_sample_attributes_format():
    t = sample_attributes(np.random.default_rng(1), 50)
    assert t.shape == (50, 40) and t.dtype == np.int8
    assert set(np.unique(t)) == {-1, 1}
    np.testing.assert_array_equal(t, sample_attributes(np.random.default_rng(1), 50))


def test_conditioning_attributes_are_frequent_in_every_combination(table):
    glasses, bald, beard = table[:, IDX["Eyeglasses"]], table[:, IDX["Bald"]], ~table[:, IDX["No_Beard"]]
    assert 0.31 < glasses.mean() < 0.39
    assert 0.26 < bald.mean() < 0.34
    assert 0.26 < beard.mean() < 0.34
    for g in (False, True):
        for b in (False, True):
            for d in (False, True):
                assert ((glasses == g) & (beard == b) & (bald == d)).mean() > 0.03, (g, b, d)


def test_attribute_correlations_are_coherent(table):
    col = {name: table[:, i] for name, i in IDX.items()}
    male = col["Male"]
    assert 0.35 < male.mean() < 0.55
    for name in ("Goatee", "Mustache", "Sideburns", "5_o_Clock_Shadow"):
        assert not (col[name] & ~male).any(), name
    assert not (~col["No_Beard"] & ~male).any()
    assert not ((col["Goatee"] | col["Mustache"]) & col["No_Beard"]).any()
    assert col["Wearing_Lipstick"][~male].mean() > 0.5 > 10 * col["Wearing_Lipstick"][male].mean()
    assert col["Heavy_Makeup"][~male].mean() > 10 * col["Heavy_Makeup"][male].mean()
    assert col["Bald"][male].mean() > 2 * col["Bald"][~male].mean() > 0.1
    young = col["Young"]
    assert col["Gray_Hair"][~young].mean() > 5 * col["Gray_Hair"][young].mean()
    hair = sum(col[h].astype(int) for h in ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair"))
    assert (hair[~col["Bald"]] == 1).all()
    assert (hair[col["Bald"]] <= 1).all()
    assert not (col["Wavy_Hair"] & col["Straight_Hair"]).any()
