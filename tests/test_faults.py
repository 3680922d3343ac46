"""The faults users actually hit: two processes on one run, a corrupt checkpoint, a full disk."""

import json
import os
import signal
import subprocess
import sys

import pytest

from homogan.cli import main
from tests.conftest import ROOT


@pytest.fixture
def tiny_run(tiny_config):
    from homogan.train import train

    return train(tiny_config("training.epochs=2"), echo=lambda *a, **k: None).run.path


def hold_lock(run, purpose="training"):
    """A second, real process that takes the run's lock and keeps it until killed."""
    code = ("import sys, time\n"
            f"sys.path.insert(0, {str(ROOT)!r})\n"
            "from homogan.experiment import open_run_dir\n"
            f"with open_run_dir({str(run)!r}).lock({purpose!r}):\n"
            "    print('locked', flush=True)\n"
            "    time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_process_on_a_run_gets_one_line_naming_the_holder(tiny_run, tiny_config, capsys):
    holder = hold_lock(tiny_run)
    try:
        for argv in (["evaluate", str(tiny_run)], ["export", str(tiny_run), "--formats", "keras"],
                     ["train", "--resume", str(tiny_run)]):
            assert main(argv) == 2, argv
            (line,) = capsys.readouterr().err.strip().splitlines()
            assert f"pid {holder.pid}" in line and "in use by" in line and "(training" in line, line
        assert not (tiny_run / "export").exists()
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_left_by_a_dead_process_is_taken_over_with_a_note(tiny_run, capsys):
    holder = hold_lock(tiny_run, "evaluate")
    holder.send_signal(signal.SIGKILL)  # dies holding it: its record stays in the lock file
    holder.wait()
    assert json.loads((tiny_run / ".lock").read_text())["pid"] == holder.pid
    assert main(["export", str(tiny_run), "--formats", "keras"]) == 0
    out = capsys.readouterr().out
    assert f"locked by pid {holder.pid} (evaluate), which is no longer running; taking it over" in out
    assert (tiny_run / ".lock").read_text() == ""  # released cleanly afterwards


def test_the_lock_is_released_when_a_command_ends(tiny_run):
    from homogan.experiment import open_run_dir

    run = open_run_dir(tiny_run)
    with run.lock("first"):
        pass
    with run.lock("second"):  # would raise if the first were still held
        assert json.loads(run.lock_file.read_text())["purpose"] == "second"


# --- a corrupt checkpoint costs one checkpoint, not the run -------------------------------------------------


def truncate_data(path):
    data = next(path.parent.glob(f"{path.name}.data-*"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])


def flip_bytes(path):
    data = next(path.parent.glob(f"{path.name}.data-*"))
    raw = bytearray(data.read_bytes())
    for i in range(100, len(raw), max(1, len(raw) // 16)):
        raw[i] ^= 0xFF
    data.write_bytes(bytes(raw))


def remove_index(path):
    path.with_name(path.name + ".index").unlink()


@pytest.mark.parametrize("damage", [truncate_data, flip_bytes, remove_index], ids=["truncated", "flipped", "no-index"])
def test_a_damaged_last_checkpoint_falls_back_to_the_one_before(damage, tiny_run, tiny_config, capsys):
    from homogan import checkpoints
    from homogan.train import train

    ckpts = tiny_run / "checkpoints"
    assert checkpoints.latest_epoch(ckpts) == 2 and (ckpts / "epoch_0002.sha256.json").is_file()
    history_before = (tiny_run / "history.csv").read_text().splitlines()
    damage(ckpts / "epoch_0002")
    assert checkpoints.damage(ckpts / "epoch_0002") is not None and checkpoints.damage(ckpts / "epoch_0001") is None
    lines = []
    result = train(tiny_config("training.epochs=2"), resume=tiny_run, echo=lambda *a, **k: lines.append(" ".join(map(str, a))))
    note = [line for line in lines if "is damaged" in line]
    assert len(note) == 1 and "epoch_0002" in note[0] and "resuming from epoch_0001" in note[0], lines
    assert any("moved 1 history row(s) to history.discarded.csv" in line for line in lines), lines
    assert result.epochs_done == 2 and checkpoints.latest_epoch(ckpts) == 2
    assert checkpoints.damage(ckpts / "epoch_0002") is None  # written again, whole
    discarded = (tiny_run / "history.discarded.csv").read_text().splitlines()
    assert discarded == [history_before[0], history_before[2]]  # the epoch-2 row of the first run, kept
    assert [r.split(",")[0] for r in (tiny_run / "history.csv").read_text().splitlines()[1:]] == ["1", "2"]
    assert (tiny_run / "samples" / "discarded" / "epoch_0002.png").is_file()
    assert (tiny_run / "samples" / "epoch_0002.png").is_file()  # the new epoch 2's grid


def test_a_run_whose_every_checkpoint_is_damaged_says_so(tiny_run, capsys):
    for epoch in (1, 2):
        truncate_data(tiny_run / "checkpoints" / f"epoch_{epoch:04d}")
    assert main(["train", "--resume", str(tiny_run)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "damaged" in line and "cannot be resumed" in line


# --- a full disk ---------------------------------------------------------------------------------------------


def no_space(target_name):
    """os.replace that fails with ENOSPC when it would put ``target_name`` in place (the atomic write's last step)."""
    import errno

    real = os.replace

    def replace(src, dst):
        if os.path.basename(str(dst)) == target_name:
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return real(src, dst)

    return replace


def tiny_train_argv(synthetic_root, tmp_path, *more):
    sets = [f"data.root={synthetic_root}", "data.synthetic_images=240", "data.image_size=32", "model.latent_dim=16",
            "model.generator.width=8", "model.discriminator.width=8", "training.batch_size=8", "training.epochs=3",
            "training.steps_per_epoch=2", f"experiment.output_dir={tmp_path / 'runs'}", "logging.progress=none",
            "logging.tensorboard=false", *more]
    return ["train", *[a for s in sets for a in ("--set", s)]]


def test_a_full_disk_during_a_history_write_stops_with_one_line_and_exit_4(synthetic_root, tmp_path, capsys,
                                                                            monkeypatch):
    from homogan import atomic

    calls = {"n": 0}
    real = no_space("history.csv")

    def second_history_write_fails(src, dst):
        if os.path.basename(str(dst)) == "history.csv":
            calls["n"] += 1
            if calls["n"] == 2:
                return real(src, dst)
        return os.rename(src, dst)

    monkeypatch.setattr(atomic.os, "replace", second_history_write_fails)
    assert main(tiny_train_argv(synthetic_root, tmp_path)) == 4
    err = capsys.readouterr().err.strip().splitlines()
    (line,) = [e for e in err if e.startswith("stopped:")]
    assert "history.csv" in line and "No space left on device" in line and "--resume" in line
    (run,) = (tmp_path / "runs").iterdir()
    assert not [p for p in run.rglob("*") if ".tmp-" in p.name]
    monkeypatch.undo()
    # Space freed: the resume continues from the last complete checkpoint and finishes.
    assert main(["train", "--resume", str(run)]) == 0
    rows = (run / "history.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["1", "2", "3"]


def test_a_full_disk_during_a_checkpoint_write_leaves_no_partial_checkpoint(synthetic_root, tmp_path, capsys,
                                                                              monkeypatch):
    import errno

    import tensorflow as tf

    real_write = tf.train.Checkpoint.write

    def write(self, file_prefix, *args, **kwargs):
        if os.path.basename(file_prefix) == "epoch_0002":
            real_write(self, file_prefix, *args, **kwargs)  # the files exist, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, file_prefix, *args, **kwargs)

    monkeypatch.setattr(tf.train.Checkpoint, "write", write)
    assert main(tiny_train_argv(synthetic_root, tmp_path)) == 4
    (line,) = [e for e in capsys.readouterr().err.strip().splitlines() if e.startswith("stopped:")]
    assert "epoch_0002" in line and "No space left on device" in line and "(epoch 1)" in line
    (run,) = (tmp_path / "runs").iterdir()
    assert not list((run / "checkpoints").glob("epoch_0002*"))
    assert json.loads((run / "checkpoints" / "latest.json").read_text())["epoch"] == 1
    monkeypatch.undo()
    assert main(["train", "--resume", str(run)]) == 0


# --- the run folder removed while training ----------------------------------------------------------------------


def test_a_run_folder_removed_while_training_stops_with_one_line_not_a_traceback(synthetic_root, tmp_path, capsys,
                                                                                 monkeypatch):
    """Someone deletes the run folder (an `rm -r runs/...` in another terminal) mid-run: the next write fails on
    a missing folder, which must read as that, in one line, not as a FileNotFoundError traceback."""
    import shutil

    from homogan import atomic

    real = os.replace

    def remove_the_run_first(src, dst):
        if os.path.basename(str(dst)) == "history.csv":
            shutil.rmtree(os.path.dirname(str(dst)))  # the folder goes, the temp file with it
        return real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", remove_the_run_first)
    assert main(tiny_train_argv(synthetic_root, tmp_path)) == 4
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ") and "no longer exists" in line and "train again" in line, line
    assert not list((tmp_path / "runs").iterdir())  # nothing was recreated behind the user's back
