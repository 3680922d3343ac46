"""Freezing, re-running into results folders, and a smoke run of every shipped experiment's main.py."""

import json
import runpy
import shutil
import sys

import pytest

from homogan.cli import main
from homogan.freeze import results_dir
from tests.conftest import ROOT

SHIPPED = sorted(p.name for p in (ROOT / "experiments").iterdir() if (p / "main.py").is_file())


def smoke_overrides(synthetic_root):
    return ["--set", "data.source=synthetic", "--set", f"data.root={synthetic_root}", "--set", "data.synthetic_images=240",
            "--set", "data.image_size=32", "--set", "data.class_conditional=false", "--set", "data.channels=3",
            "--set", "data.crop=160", "--set", "model.generator.width=4", "--set", "model.discriminator.width=4",
            "--set", "training.epochs=1", "--set", "training.steps_per_epoch=2", "--set", "training.batch_size=4",
            "--set", "logging.progress=none", "--set", "logging.tensorboard=false"]


def run_main_py(folder, args, monkeypatch):
    """Execute the experiment's own main.py in-process, as `python <folder>/main.py ARGS` would."""
    monkeypatch.setattr(sys, "argv", [str(folder / "main.py"), *args])
    with pytest.raises(SystemExit) as info:
        runpy.run_path(str(folder / "main.py"), run_name="__main__")
    return info.value.code


def test_series_covers_the_studies():
    assert [f"Experiment{i:02d}" for i in range(1, 17)] == [n for n in SHIPPED if n.startswith("Experiment")]
    assert {"FaceBase", "FaceImproved", "DigitsZ64", "DigitsZ128", "DigitsZ256"} <= set(SHIPPED)
    readme = (ROOT / "experiments" / "Experiment04" / "README.md").read_text()
    assert "What changed versus Experiment03" in readme
    assert "`model.generator.stem` | `\"dense\"` | `\"conv_transpose\"`" in readme
    assert "`training.d_skip_threshold` | `null` | `4.0`" in readme


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_experiment_still_runs(name, synthetic_root, tmp_path, monkeypatch):
    folder = tmp_path / "experiments" / name
    shutil.copytree(ROOT / "experiments" / name, folder)
    monkeypatch.chdir(tmp_path)
    assert run_main_py(folder, smoke_overrides(synthetic_root), monkeypatch) == 0
    history = (folder / "results" / "history.csv").read_text().splitlines()
    assert len(history) == 2 and (folder / "results" / "samples" / "epoch_0001.png").is_file()


def test_celeba_experiment_without_data_says_what_to_do(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "experiments" / "Experiment01"
    shutil.copytree(ROOT / "experiments" / "Experiment01", folder)
    monkeypatch.chdir(tmp_path)
    assert run_main_py(folder, [], monkeypatch) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs a local CelebA copy" in err[0] and "data.source=synthetic" in err[0]
    assert not (folder / "results").exists()


def test_freeze_from_a_run_and_rerun_never_overwrites(tiny_config, synthetic_root, tmp_path, monkeypatch, capsys):
    from homogan.train import train

    run = train(tiny_config("training.epochs=1"), echo=lambda *a, **k: None).run
    exps = tmp_path / "exps"
    assert main(["freeze", str(run.path), "--name", "Base", "--experiments-dir", str(exps)]) == 0
    assert main(["freeze", str(run.path), "--name", "Child", "--parent", "Base", "--experiments-dir", str(exps),
                 "--set", "training.label_flip=0.05", "--notes", "Flip 5 % of labels."]) == 0
    child = exps / "Child"
    readme = (child / "README.md").read_text()
    assert "Flip 5 % of labels." in readme and "| `training.label_flip` | `0.0` | `0.05` |" in readme
    assert json.loads((child / "config.json").read_text())["experiment"]["name"] == "Child"
    assert main(["freeze", str(run.path), "--name", "Child", "--experiments-dir", str(exps)]) == 2
    assert main(["freeze", str(run.path), "--name", "X", "--parent", "Nope", "--experiments-dir", str(exps)]) == 2
    assert "never overwritten" in capsys.readouterr().err

    monkeypatch.chdir(tmp_path)
    for expected in ("results", "results-2"):
        assert run_main_py(child, [], monkeypatch) == 0
        assert (child / expected / "history.csv").is_file()
    first = (child / "results" / "history.csv").read_text()
    assert run_main_py(child, ["--overwrite"], monkeypatch) == 0
    assert (child / "results" / "history.csv").read_text() != "" and not (child / "results-3").exists()
    assert first.splitlines()[0] == (child / "results" / "history.csv").read_text().splitlines()[0]


def test_unfinished_results_are_resumed(tiny_config, tmp_path):
    folder = tmp_path / "Exp"
    (folder / "results" / "checkpoints").mkdir(parents=True)
    (folder / "results" / "config.json").write_text(json.dumps({"training": {"epochs": 5}}))
    (folder / "results" / "checkpoints" / "latest.json").write_text(json.dumps({"checkpoint": "epoch_0002", "epoch": 2}))
    assert results_dir(folder, overwrite=False) == (folder / "results", True)
    (folder / "results" / "checkpoints" / "latest.json").write_text(json.dumps({"checkpoint": "epoch_0005", "epoch": 5}))
    assert results_dir(folder, overwrite=False) == (folder / "results-2", False)


def test_report_lays_experiments_side_by_side(tiny_config, tmp_path, monkeypatch):
    import re

    from homogan.train import train

    run = train(tiny_config(), echo=lambda *a, **k: None).run
    exps = tmp_path / "exps"
    assert main(["freeze", str(run.path), "--name", "A", "--experiments-dir", str(exps)]) == 0
    assert main(["freeze", str(run.path), "--name", "B", "--parent", "A", "--experiments-dir", str(exps),
                 "--set", "training.d_steps=2", "--notes", "Two D steps."]) == 0
    monkeypatch.chdir(tmp_path)
    assert run_main_py(exps / "B", [], monkeypatch) == 0
    out = tmp_path / "out" / "report.html"
    assert main(["report", str(exps / "A"), str(exps / "B"), str(run.path), "--out", str(out)]) == 0
    page = out.read_text()
    assert page.startswith("<!DOCTYPE html>") and page.count("<th>") >= 3
    assert "training.d_steps: 1 → 2" in page and "Two D steps." in page and "not run yet" in page
    assert "g_loss" in page and "epochs trained" in page
    links = re.findall(r"src='([^']+)'", page)
    assert len(links) >= 8  # B and the run: losses, accuracy, grid, gif each
    assert all((out.parent / link).is_file() for link in links)
    md = out.with_suffix(".md").read_text()
    assert "| **what changed** |" in md and all((out.parent / m).is_file() for m in re.findall(r"\]\(([^)]+)\)", md))
    assert main(["report", str(tmp_path / "nothing")]) == 2


def test_a_key_added_later_trains_old_experiments_and_runs_as_they_did():
    """``data.mirror`` (on for faces by default) came after these experiments were frozen: their configs lack it,
    so they re-run without mirroring, as they trained; a hand-written config gets the new default, an
    experiment frozen now keeps what it says, and ``--set`` still wins."""
    from homogan.config import LATER_KEYS, from_dict, load_config
    from homogan.freeze import load_frozen

    old = ROOT / "experiments" / "CelebaBeta03"
    assert "mirror" not in json.loads((old / "config.json").read_text())["data"] and LATER_KEYS["data.mirror"] is False
    assert load_frozen(old).data.mirror is False
    assert load_config(old / "config.json", ["data.mirror=true"], written_out=True).data.mirror is True
    assert load_config(ROOT / "config.json").data.mirror is None  # hand-written: the new default
    assert load_config(old / "config.json").data.mirror is None  # not told it is written out: read as given
    assert from_dict(load_config(ROOT / "config.json").to_dict(), written_out=True).data.mirror is None



def test_the_report_fills_a_key_added_later_with_what_trained_not_the_new_default():
    """Comparing an old run (its config lacks ``data.mirror``: it trained without mirroring) with a new one must
    show the difference; filling the missing key with today's default hid it."""
    from homogan.config import LATER_KEYS, load_config
    from homogan.report import with_defaults

    old = load_config(ROOT / "config.json").to_dict()
    del old["data"]["mirror"]
    assert with_defaults(old)["data"]["mirror"] is LATER_KEYS["data.mirror"] is False
