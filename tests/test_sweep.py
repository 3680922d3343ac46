"""python -m homogan sweep: one frozen experiment per combination, trained in turn, resumable, reported."""

import json

import pytest

from homogan.cli import main
from homogan.sweep import members, split_values


def test_values_split_on_top_level_commas_only():
    assert split_values("1,3,5") == ["1", "3", "5"]
    assert split_values('["Eyeglasses","Bald"],[]') == ['["Eyeglasses","Bald"]', "[]"]
    assert split_values("2e-4, 1e-4") == ["2e-4", "1e-4"]


def test_members_are_every_combination_with_safe_names():
    found = members(["training.d_steps=1,3", "training.d_optimizer.learning_rate=1e-4,2e-4"], "Ratio")
    assert [m.name for m in found] == ["Ratio_d_steps1_learning_rate1e-4", "Ratio_d_steps1_learning_rate2e-4",
                                       "Ratio_d_steps3_learning_rate1e-4", "Ratio_d_steps3_learning_rate2e-4"]
    assert found[1].overrides == ("training.d_steps=1", "training.d_optimizer.learning_rate=2e-4")


@pytest.fixture
def base(tiny_config, tmp_path):
    path = tmp_path / "base.json"
    path.write_text(json.dumps(tiny_config("training.epochs=1").to_dict()))
    return path


def test_a_dry_run_lists_and_writes_nothing(base, tmp_path, capsys):
    exps = tmp_path / "exps"
    assert main(["sweep", str(base), "--set", "training.d_steps=1,2", "--prefix", "R", "--experiments-dir", str(exps),
                 "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "R_d_steps1: training.d_steps=1 (to create)" in out and "R_d_steps2" in out and "nothing written" in out
    assert not exps.exists()


def test_a_bad_value_is_refused_before_anything_is_written(base, tmp_path, capsys):
    exps = tmp_path / "exps"
    assert main(["sweep", str(base), "--set", "training.d_steps=1,0", "--prefix", "R", "--experiments-dir", str(exps)]) == 2
    assert "training.d_steps" in capsys.readouterr().err and not exps.exists()


def test_a_sweep_trains_every_member_and_a_killed_one_continues_where_it_stopped(base, tmp_path, capsys, monkeypatch):
    from homogan import sweep as sweep_module

    exps = tmp_path / "exps"
    argv = ["sweep", str(base), "--set", "training.d_steps=1,2", "--set", "training.label_flip=0.0,0.1", "--prefix", "R",
            "--experiments-dir", str(exps)]
    real_train, trained = sweep_module.train, []

    def killed_on_the_third(config, **kwargs):
        if len(trained) == 2:
            raise KeyboardInterrupt  # the sweep process is killed while training the third member
        trained.append(config.experiment.name)
        return real_train(config, **kwargs)

    monkeypatch.setattr(sweep_module, "train", killed_on_the_third)
    assert main(argv) == 130
    assert trained == ["R_d_steps1_label_flip0-0", "R_d_steps1_label_flip0-1"]
    monkeypatch.setattr(sweep_module, "train", lambda config, **kw: (trained.append(config.experiment.name),
                                                                      real_train(config, **kw))[1])
    capsys.readouterr()
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("already trained, skipped") == 2
    assert trained[2:] == ["R_d_steps2_label_flip0-0", "R_d_steps2_label_flip0-1"]
    for name in trained:
        assert (exps / name / "results" / "history.csv").is_file() and (exps / name / "README.md").is_file()
    readme = (exps / "R_d_steps2_label_flip0-1" / "README.md").read_text()
    assert "Sweep R: training.d_steps=2, training.label_flip=0.1." in readme
    report = (exps / "R_report.md").read_text()
    assert all(name in report for name in trained)
