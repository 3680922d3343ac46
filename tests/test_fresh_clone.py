"""A fresh clone, as a new user meets it: no ``data/`` yet, so the first command draws the synthetic faces.

Every other test runs after the session's synthetic fixture exists or through ``python -m homogan``,
so none of them saw the hang these guard against: the drawing pool's 'spawn' workers re-imported the
caller's ``__main__`` script, and a script without an ``if __name__ == "__main__":`` guard (a frozen
experiment's ``main.py``, a user's own script) re-ran the whole command in every worker, forever.
"""

import os
import shutil
import signal
import subprocess
import sys

import pytest

from homogan.freeze import MAIN_PY
from tests.conftest import ROOT

TIMEOUT = 300  # seconds; a good run takes ~30 s here, the old code never finished

SMALL = ["--set", "data.source=synthetic", "--set", "data.root=data/synthetic", "--set", "data.synthetic_images=48",
         "--set", "data.image_size=32", "--set", "model.generator.width=4", "--set", "model.discriminator.width=4",
         "--set", "training.epochs=1", "--set", "training.steps_per_epoch=2", "--set", "training.batch_size=4",
         "--set", "logging.progress=none", "--set", "logging.tensorboard=false"]


def fresh_clone(tmp_path, experiments=("Experiment09",)):
    """The repository's files as a clone has them: the package, the entry points, no data/ and no runs/."""
    clone = tmp_path / "clone"
    shutil.copytree(ROOT / "homogan", clone / "homogan", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("main.py", "config.json"):
        shutil.copy(ROOT / name, clone / name)
    for name in experiments:
        shutil.copytree(ROOT / "experiments" / name, clone / "experiments" / name,
                        ignore=shutil.ignore_patterns("results*"))
    assert not (clone / "data").exists()
    return clone


def run(args, cwd):
    """Run ``python ARGS`` in its own process group; on timeout kill the whole group (runaway workers too)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.Popen([sys.executable, *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"python {' '.join(args)} did not finish in {TIMEOUT} s; stderr ends:\n{err[-2000:]}")
    return proc.returncode, out, err


def test_frozen_main_py_template_has_the_guard():
    assert 'if __name__ == "__main__":\n    sys.exit(main(' in MAIN_PY


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "experiments").iterdir() if (p / "main.py").is_file()))
def test_shipped_experiments_use_the_current_template(name):
    assert (ROOT / "experiments" / name / "main.py").read_text() == MAIN_PY.format(rel=f"experiments/{name}")


def test_frozen_experiment_on_a_fresh_clone_draws_its_data_and_finishes(tmp_path):
    clone = fresh_clone(tmp_path)
    code, out, err = run(["experiments/Experiment09/main.py", *SMALL], clone)
    assert code == 0, err[-2000:]
    assert "bootstrapping phase" not in err
    assert (clone / "data" / "synthetic" / "celeba-synthetic-v1-n48-seed0" / "list_attr_celeba.txt").is_file()
    results = sorted(p.name for p in (clone / "experiments" / "Experiment09").glob("results*"))
    assert results == ["results"]
    assert (clone / "experiments" / "Experiment09" / "results" / "samples" / "epoch_0001.png").is_file()


def test_a_script_without_a_main_guard_draws_the_data_and_finishes(tmp_path):
    """Homogan must not depend on its caller's guard: this script (like a frozen main.py of an older
    homogan) runs its command at import time."""
    clone = fresh_clone(tmp_path, experiments=())
    (clone / "my_script.py").write_text(
        "import sys\n"
        "from homogan.cli import main\n"
        f"code = main(['train', *{SMALL!r}, '--set', 'experiment.output_dir=my_runs'])\n"
        "print('exit', code)\n"
        "sys.exit(code)\n")
    code, out, err = run(["my_script.py"], clone)
    assert code == 0, err[-2000:]
    assert out.count("exit 0") == 1, out[-2000:]  # the command ran once, not once per worker
    assert "bootstrapping phase" not in err
    runs = list((clone / "my_runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "samples" / "epoch_0001.png").is_file()
