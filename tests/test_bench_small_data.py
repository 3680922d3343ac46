"""``bench/bench_small_data.py`` plans what it promises (equal steps for every size) and stops a mistyped
``--set`` before its first run trains; ``--dry-run`` trains nothing. In-process: no TensorFlow is imported."""

import importlib.util

import pytest

from tests.conftest import ROOT


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_small_data", ROOT / "bench" / "bench_small_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def plan(bench, capsys, *argv):
    bench.main([*argv, "--dry-run"])
    return [line for line in capsys.readouterr().out.splitlines() if " train " in line]


def test_dry_run_plans_equal_steps_rounded_up_to_whole_passes(bench, capsys, tmp_path):
    lines = plan(bench, capsys, "--limits", "1000", "2000", "--contenders", "no_ada,ada", "--steps", "12000",
                 "--dir", str(tmp_path / "b"))
    assert [line.split(":")[0] for line in lines] == ["celeba-1000-no_ada", "celeba-1000-ada", "celeba-2000-no_ada",
                                                      "celeba-2000-ada"]
    # batch 16: 62 steps per pass over 1,000 images → 194 epochs (12,028 steps); 125 per pass over 2,000 → 96
    assert all("training.epochs=194" in line for line in lines[:2])
    assert all("training.epochs=96" in line for line in lines[2:])
    assert "training.ada_target=null" in lines[0] and "training.ada_target=0.6" in lines[1]
    assert not (tmp_path / "b").exists(), "a dry run wrote to the bench folder"


def test_a_mistyped_set_stops_the_bench_before_anything_runs(bench, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "homogan", lambda *a: pytest.fail(f"trained despite a bad --set: {a}"))
    with pytest.raises(SystemExit) as stopped:
        bench.main(["--limits", "1000", "--set", "training.los=hinge", "--dir", str(tmp_path / "b")])
    assert stopped.value.code == 2
    assert "unknown key 'training.los'; did you mean 'training.loss'?" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_limits_below_one_batch_are_refused(bench, capsys):
    with pytest.raises(SystemExit) as stopped:
        bench.main(["--limits", "8", "--dry-run"])
    assert stopped.value.code == 2
    assert "less than one batch" in capsys.readouterr().err
