"""The CelebA reader (official and Kaggle layouts), selection on the attribute table, folders."""

import shutil

import numpy as np
import pytest
from PIL import Image

from homogan.data import celeba, folders, selection
from homogan.celeba_attributes import CELEBA_ATTRIBUTES
from homogan.errors import DataError


def to_kaggle_layout(official, dest):
    """Rewrite a CelebA copy in the Kaggle layout: nested image folder and CSV tables."""
    (dest / "img_align_celeba").mkdir(parents=True)
    shutil.copytree(official / "img_align_celeba", dest / "img_align_celeba" / "img_align_celeba")
    lines = (official / "list_attr_celeba.txt").read_text().splitlines()
    rows = [",".join(["image_id", *lines[1].split()])] + [",".join(line.split()) for line in lines[2:]]
    (dest / "list_attr_celeba.csv").write_text("\n".join(rows) + "\n")
    parts = ["image_id,partition"] + [",".join(line.split()) for line in
                                      (official / "list_eval_partition.txt").read_text().splitlines()]
    (dest / "list_eval_partition.csv").write_text("\n".join(parts) + "\n")


def copy_official(official, dest):
    shutil.copytree(official, dest)
    return dest


def test_official_layout_reads_the_synthetic_fixture(celeba_dir):
    table = celeba.read_celeba(celeba_dir)
    assert len(table) == 240
    assert table.values.shape == (240, 40) and set(np.unique(table.values)) <= {-1, 1}
    assert table.filenames[0] == "000001.jpg"
    assert set(np.unique(table.partition)) == {0, 1, 2}
    assert celeba.find_layout(celeba_dir).kind == "official"
    # The values are the file's, column by column.
    row = (celeba_dir / "list_attr_celeba.txt").read_text().splitlines()[2 + 7].split()
    assert row[0] == table.filenames[7]
    assert [int(v) for v in row[1:]] == table.values[7].tolist()


def test_kaggle_layout_gives_the_same_table(celeba_dir, tmp_path):
    to_kaggle_layout(celeba_dir, tmp_path / "kaggle")
    official = celeba.read_celeba(celeba_dir)
    kaggle = celeba.read_celeba(tmp_path / "kaggle")
    assert celeba.find_layout(tmp_path / "kaggle").kind == "kaggle"
    np.testing.assert_array_equal(kaggle.values, official.values)
    np.testing.assert_array_equal(kaggle.partition, official.partition)
    assert kaggle.paths(np.array([0]))[0].endswith("img_align_celeba/img_align_celeba/000001.jpg")


def corrupt(path, line_no, transform):
    lines = path.read_text().splitlines()
    lines[line_no] = transform(lines[line_no])
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("line_no, transform, fragment", [
    (4, lambda s: s.rsplit(" ", 1)[0], "expected 41 columns"),
    (5, lambda s: s[:-2] + " 0", "'0' is not 1 or -1"),
    (6, lambda s: s.replace(".jpg", ".JPG", 1), "do not exist"),
    (0, lambda s: "241", "count line says 241"),
    (0, lambda s: "many", "first line must be the image count"),
])
def test_malformed_attribute_file_names_file_and_line(celeba_dir, tmp_path, line_no, transform, fragment):
    root = copy_official(celeba_dir, tmp_path / "c")
    corrupt(root / "list_attr_celeba.txt", line_no, transform)
    with pytest.raises(DataError) as info:
        celeba.read_celeba(root)
    assert fragment in str(info.value) and "list_attr_celeba.txt" in str(info.value)


def test_missing_pieces_are_named(celeba_dir, tmp_path):
    with pytest.raises(DataError, match="is not a folder"):
        celeba.read_celeba(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no CelebA attribute file"):
        celeba.read_celeba(tmp_path / "empty")
    root = copy_official(celeba_dir, tmp_path / "c")
    (root / "list_eval_partition.txt").unlink()
    with pytest.raises(DataError, match="no partition file"):
        celeba.read_celeba(root)
    assert len(celeba.read_celeba(root, need_partition=False)) == 240


def test_filters_balance_limit(celeba_dir):
    table = celeba.read_celeba(celeba_dir)
    male = table.column("Male") == 1
    idx, log = selection.select(table, split="all", filters={"Male": 1}, balance=None, attributes=[], limit=None, seed=0)
    assert len(idx) == male.sum() and np.all(table.column("Male")[idx] == 1)
    idx, _ = selection.select(table, split="all", filters={}, balance="Male", attributes=[], limit=None, seed=0)
    assert (table.column("Male")[idx] == 1).sum() == (table.column("Male")[idx] == -1).sum() == min(male.sum(), (~male).sum())
    attrs = ["Eyeglasses", "Bald"]
    idx, _ = selection.select(table, split="all", filters={}, balance="combinations", attributes=attrs, limit=None, seed=0)
    labels = selection.labels_for(table, idx, attrs)
    counts = {tuple(r): 0 for r in labels}
    for r in labels:
        counts[tuple(r)] += 1
    assert len(counts) == 4 and len(set(counts.values())) == 1
    idx, _ = selection.select(table, split="train", filters={}, balance=None, attributes=[], limit=50, seed=0)
    assert len(idx) == 50 and np.all(table.partition[idx] == 0)
    again, _ = selection.select(table, split="train", filters={}, balance=None, attributes=[], limit=50, seed=0)
    np.testing.assert_array_equal(idx, again)


def test_empty_selection_names_the_filter(celeba_dir):
    table = celeba.read_celeba(celeba_dir)
    # No synthetic image is both Bald and has a hair colour: the second filter empties the selection.
    with pytest.raises(DataError, match=r"data.filters.Blond_Hair: 1 leaves 0 of \d+ images"):
        selection.select(table, split="all", filters={"Bald": 1, "Blond_Hair": 1}, balance=None, attributes=[],
                         limit=None, seed=0)


def test_labels_are_zero_one_in_attribute_order(celeba_dir):
    table = celeba.read_celeba(celeba_dir)
    labels = selection.labels_for(table, np.arange(10), ["Bald", "Male"])
    assert labels.dtype == np.float32 and labels.shape == (10, 2)
    np.testing.assert_array_equal(labels[:, 1], (table.values[:10, CELEBA_ATTRIBUTES.index("Male")] > 0))


def test_folder_of_images_with_classes_grayscale_and_junk(tmp_path):
    for cls, mode in (("bart", "RGB"), ("lisa", "L")):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.new(mode, (40, 30), 120).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "bart" / "notes.txt").write_text("not an image")
    paths, labels, classes, skipped = folders.read_folder(tmp_path, class_conditional=True)
    assert classes == ["bart", "lisa"] and len(paths) == 6 and skipped == 1
    np.testing.assert_array_equal(labels.sum(axis=0), [3, 3])
    paths, labels, classes, _ = folders.read_folder(tmp_path, class_conditional=False)
    assert labels.shape == (6, 0) and classes == []
    (tmp_path / "none").mkdir()
    (tmp_path / "none" / "a.txt").write_text("x")
    with pytest.raises(DataError, match="holds no images"):
        folders.read_folder(tmp_path / "none", class_conditional=False)


@pytest.mark.parametrize("installed_fonts", [True, False])
def test_the_digit_folder_bench_makes_is_read_as_ten_grey_classes(tmp_path, monkeypatch, installed_fonts):
    """``bench/make_glyph_folder.py`` (the non-face class folder of the README's "Small data") writes a tree the
    folder source reads as ten classes of greyscale images, with the fonts under /usr/share/fonts or, where a
    machine has none, Pillow's built-in font; its ``complete`` marker comes last and is not an image."""
    import importlib.util

    from tests.conftest import ROOT

    spec = importlib.util.spec_from_file_location("make_glyph_folder", ROOT / "bench" / "make_glyph_folder.py")
    glyphs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(glyphs)
    if not installed_fonts:
        monkeypatch.setattr(glyphs, "FONT_DIRS", (tmp_path / "no-fonts",))
        assert glyphs.fonts() == [None]
    glyphs.main([str(tmp_path / "digits"), "--per-class", "2", "--size", "16"])
    assert (tmp_path / "digits" / "complete").read_text() == "20\n"
    paths, labels, classes, skipped = folders.read_folder(tmp_path / "digits", class_conditional=True)
    assert classes == [str(d) for d in range(10)] and len(paths) == 20 and skipped == 1
    np.testing.assert_array_equal(labels.sum(axis=0), np.full(10, 2))
    image = Image.open(paths[0])
    assert image.mode == "L" and image.size == (16, 16) and np.ptp(np.asarray(image)) > 50  # a digit, not blank
