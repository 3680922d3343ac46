"""homogan.atomic: a write either lands whole under its name or leaves nothing."""

import pytest

from homogan.atomic import atomic_path, write_text


def test_the_temporary_name_keeps_every_suffix(tmp_path):
    """Writers that read the format from the name (Keras needs ``.weights.h5``, imageio ``.png``) see it."""
    with atomic_path(tmp_path / "classifier.weights.h5") as tmp:
        assert tmp.name.endswith(".weights.h5") and ".tmp-" in tmp.name and tmp.parent == tmp_path
        tmp.write_bytes(b"x")
    assert (tmp_path / "classifier.weights.h5").read_bytes() == b"x"
    with atomic_path(tmp_path / "README") as tmp:
        assert tmp.name.startswith("README.tmp-")
        tmp.write_text("y")
    assert (tmp_path / "README").read_text() == "y"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    write_text(tmp_path / "history.csv", "old\n")
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "history.csv") as tmp:
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert (tmp_path / "history.csv").read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["history.csv"]
