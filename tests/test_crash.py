"""Crashes lose nothing: Ctrl-C/SIGTERM save the step boundary and resume exactly; SIGKILL at any moment
leaves a run that resumes with no gap or duplicate in its history, complete sample frames and no
half-written file."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import imageio.v3 as iio
import numpy as np
import pytest

from homogan import callbacks as cb
from homogan import checkpoints
from homogan.train import train
from tests.conftest import ROOT
from tests.test_end_to_end import checkpoint_tensors, history_rows

QUIET = dict(echo=lambda *a, **k: None)
SETTINGS = ('data.attributes=["Bald"]', "training.label_flip=0.1", "training.real_label_range=[0.8, 1.0]",
            "training.steps_per_epoch=4", "training.epochs=3")


def signal_at_step(monkeypatch, step: int, signum=signal.SIGINT):
    """Send ``signum`` to this process when global step ``step`` (1-based) has run: as Ctrl-C would, from
    outside, while the step function is running."""
    original = cb.StopOnSignal.on_train_batch_end
    seen = {"steps": 0}

    def on_train_batch_end(self, batch, logs=None):
        seen["steps"] += 1
        if seen["steps"] == step:
            os.kill(os.getpid(), signum)
        return original(self, batch, logs)

    monkeypatch.setattr(cb.StopOnSignal, "on_train_batch_end", on_train_batch_end)


@pytest.fixture(autouse=True)
def ctrl_c_raises():
    """Ctrl-C as in a terminal, also when the tests run where SIGINT is ignored (a background job)."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_saves_the_step_and_resume_equals_an_uninterrupted_run(tiny_config, monkeypatch, signum):
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    straight = train(tiny_config(*SETTINGS), **QUIET)

    signal_at_step(monkeypatch, 6, signum)  # epoch 2, step 2 of 4
    stopped = train(tiny_config(*SETTINGS), **QUIET)
    assert stopped.interrupted == signum and stopped.epochs_done == 1
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers put back
    run = stopped.run
    assert checkpoints.latest(run.checkpoints).name == "interrupted_e0001_s000002"
    step, metrics = checkpoints.latest_step(run.checkpoints)
    assert step == 2 and set(metrics) >= {"g_loss", "d_loss_real"}
    assert [r["epoch"] for r in history_rows(run)] == ["1"]  # the cut epoch is not a history row
    assert [f.name for f in run.frames()] == ["epoch_0000.png", "epoch_0001.png"]

    monkeypatch.undo()
    resumed = train(tiny_config(*SETTINGS), resume=run.path, **QUIET)
    assert resumed.interrupted is None and resumed.epochs_done == 3
    assert checkpoints.latest(run.checkpoints).name == "epoch_0003"
    assert not list(run.checkpoints.glob("interrupted_*"))  # superseded by the next epoch checkpoint
    a, b = checkpoint_tensors(straight.run.path), checkpoint_tensors(run.path)
    assert a.keys() == b.keys() and len(a) > 50
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-6, err_msg=key)
    a, b = history_rows(straight.run), history_rows(run)
    assert [r["epoch"] for r in b] == ["1", "2", "3"]
    for row_a, row_b in zip(a, b):  # epoch 2's means include the 2 steps before the interruption
        for key in ("g_loss", "d_loss_real", "d_loss_fake", "d_acc_real"):
            assert abs(float(row_a[key]) - float(row_b[key])) < 1e-4, (row_a["epoch"], key)


def test_signal_in_an_epochs_last_step_finishes_that_epoch(tiny_config, monkeypatch):
    signal_at_step(monkeypatch, 4)  # the last step of epoch 1
    stopped = train(tiny_config(*SETTINGS, "logging.checkpoint_every_epochs=2"), **QUIET)
    assert stopped.interrupted == signal.SIGINT and stopped.epochs_done == 1
    # Saved although checkpoint_every_epochs=2 would have skipped epoch 1; the epoch has its row and grid.
    assert checkpoints.latest(stopped.run.checkpoints).name == "epoch_0001"
    assert [r["epoch"] for r in history_rows(stopped.run)] == ["1"]
    assert stopped.run.frames()[-1].name == "epoch_0001.png"


def test_an_ignored_sigint_stays_ignored(tiny_config, monkeypatch):
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal_at_step(monkeypatch, 2)
    result = train(tiny_config(*SETTINGS, "training.epochs=1"), **QUIET)
    assert result.interrupted is None and result.epochs_done == 1
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_signal_after_the_last_step_is_a_finished_run(tiny_config, monkeypatch):
    signal_at_step(monkeypatch, 12)
    result = train(tiny_config(*SETTINGS), **QUIET)
    assert result.interrupted is None and result.epochs_done == 3


# --------------------------------------------------------------------------------------------
# Real processes


def cli_args(synthetic_root, out, *extra):
    return [sys.executable, "-m", "homogan", "train",
            "--set", f"data.root={synthetic_root}", "--set", "data.synthetic_images=240",
            "--set", "data.image_size=32", "--set", "model.latent_dim=16", "--set", "model.generator.width=8",
            "--set", "model.discriminator.width=8", "--set", "training.batch_size=8",
            "--set", f"experiment.output_dir={out}", "--set", "logging.progress=none",
            "--set", "logging.tensorboard=false", *extra]


def start(args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # SIGINT back to its default: a background job inherits it ignored, and training respects that.
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for_rows(history, n, proc, timeout=240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"training ended early ({proc.returncode}): {proc.stderr.read()[-2000:]}")
        if history.is_file() and len(history.read_text().splitlines()) > n:
            return
        time.sleep(0.05)
    raise AssertionError(f"no {n} history rows after {timeout} s")


def check_complete_run(run, epochs):
    """No gap or duplicate in the history, every sample frame readable, the GIF whole, no temporary file."""
    with open(run / "history.csv", newline="") as f:
        assert [int(r["epoch"]) for r in csv.DictReader(f)] == list(range(1, epochs + 1))
    frames = sorted((run / "samples").glob("epoch_*.png"))
    assert [p.name for p in frames] == [f"epoch_{e:04d}.png" for e in range(epochs + 1)]
    shapes = {iio.imread(p).shape for p in frames}
    assert len(shapes) == 1
    assert iio.imread(run / "progress.gif", index=None).shape[0] == epochs + 1
    assert json.loads((run / "checkpoints" / "latest.json").read_text())["epoch"] == epochs
    assert not [p for p in run.rglob("*") if ".tmp-" in p.name or "_temp" in p.name]


def test_sigkill_at_any_moment_then_resume_has_no_gap(synthetic_root, tmp_path):
    """Kill -9 three times at different moments (mid-epoch, or while epoch-end files are written), resume
    after each; the finished run is as complete as one never killed."""
    out = tmp_path / "runs"
    epochs = 6
    base = cli_args(synthetic_root, out, "--set", f"training.epochs={epochs}", "--set", "training.steps_per_epoch=30")
    proc = start(base)
    run = None
    for kill, delay in enumerate((0.0, 0.35, 0.8)):
        history = run / "history.csv" if run else None
        if run is None:
            deadline = time.monotonic() + 120
            while not any(out.glob("*/history.csv")) and time.monotonic() < deadline:
                assert proc.poll() is None, proc.stderr.read()[-2000:]
                time.sleep(0.05)
            run = next(out.glob("*/history.csv")).parent
            history = run / "history.csv"
        rows = len(history.read_text().splitlines()) - 1
        wait_for_rows(history, rows + 1, proc)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        assert checkpoints.latest(run / "checkpoints") is not None  # the last completed one, intact
        proc = start(cli_args(synthetic_root, out, "--resume", str(run)))
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-3000:]
    assert [p.name for p in out.iterdir()] == [run.name]  # resumed in place, never a second folder
    check_complete_run(run, epochs)


def test_ctrl_c_in_a_real_process_saves_and_says_how_to_resume(synthetic_root, tmp_path):
    out = tmp_path / "runs"
    proc = start(cli_args(synthetic_root, out, "--set", "training.epochs=3", "--set", "training.steps_per_epoch=30"))
    deadline = time.monotonic() + 120
    while not any(out.glob("*/history.csv")) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        time.sleep(0.05)
    run = next(out.glob("*/history.csv")).parent
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-3000:]
    assert "Traceback" not in stderr
    assert f"--resume {run}" in stderr and "interrupted: saved" in stderr
    assert checkpoints.latest(run / "checkpoints").with_suffix(".index").is_file()
    proc = start(cli_args(synthetic_root, out, "--resume", str(run)))
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-3000:]
    check_complete_run(run, 3)
