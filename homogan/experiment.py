"""Run folders: created fresh for every run (never reused), with the resolved config written first; one
writer at a time (:meth:`RunDir.lock`); and loading a trained run's generator from one
(:func:`load_run`), the one way every reader does it."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from homogan import checkpoints, precision
from homogan.atomic import write_text
from homogan.config import Config, from_dict, load_config
from homogan.data.labels import label_names
from homogan.errors import UserError
from homogan.runtime import import_tensorflow


@dataclass(frozen=True)
class RunDir:
    """The files of one training run (see the README's "What a run writes")."""

    path: Path

    @property
    def config(self) -> Path:
        return self.path / "config.json"

    @property
    def samples(self) -> Path:
        return self.path / "samples"

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def history(self) -> Path:
        return self.path / "history.csv"

    @property
    def tensorboard(self) -> Path:
        return self.path / "tensorboard"

    @property
    def gif(self) -> Path:
        return self.path / "progress.gif"

    @property
    def evaluation_protocol(self) -> Path:
        """``evaluation.json``: how the in-training evaluation measured every value in ``history.csv``."""
        return self.path / "evaluation.json"

    @property
    def record(self) -> Path:
        """``run.json``: what actually ran, one entry per training session (start and every resume):
        the resolved precision and why, and the device facts. The config says what was asked for."""
        return self.path / "run.json"

    def sessions(self) -> list[dict]:
        if not self.record.is_file():
            return []
        return json.loads(self.record.read_text(encoding="utf-8"))["sessions"]

    def record_session(self, entry: dict) -> None:
        """Append one training session to ``run.json`` (atomically)."""
        entry = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), **entry}
        write_text(self.record, json.dumps({"sessions": [*self.sessions(), entry]}, indent=2) + "\n")

    def frames(self) -> list[Path]:
        return sorted(self.samples.glob("epoch_[0-9][0-9][0-9][0-9].png"))

    def discard_after(self, epoch: int) -> list[str]:
        """Set aside what epochs after ``epoch`` left (a resume falls back to an earlier checkpoint): their
        history rows go to ``history.discarded.csv`` (appended), their sample grids to ``samples/discarded/``.
        Nothing is deleted. Returns what was moved, for the one-line note."""
        import csv
        import io

        moved = []
        if self.history.is_file():
            with open(self.history, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                fields, rows = reader.fieldnames or [], list(reader)
            kept = [r for r in rows if int(float(r["epoch"])) <= epoch]
            gone = [r for r in rows if int(float(r["epoch"])) > epoch]
            if gone:
                discarded = self.path / "history.discarded.csv"
                earlier = discarded.read_text(encoding="utf-8") if discarded.is_file() else ""
                for target, chosen, header in ((discarded, gone, not earlier), (self.history, kept, True)):
                    buffer = io.StringIO()
                    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
                    if header:
                        writer.writeheader()
                    writer.writerows(chosen)
                    write_text(target, (earlier if target == discarded else "") + buffer.getvalue())
                moved.append(f"{len(gone)} history row(s) to history.discarded.csv")
        later = [f for f in self.frames() if int(f.stem.split("_")[1]) > epoch]
        if later:
            (self.samples / "discarded").mkdir(exist_ok=True)
            for f in later:
                os.replace(f, self.samples / "discarded" / f.name)
            moved.append(f"{len(later)} sample grid(s) to samples/discarded/")
        return moved

    def remove_stale_temporaries(self) -> list[Path]:
        """Temporary files (``*.tmp-PID*``, see :mod:`homogan.atomic`) that a killed process left behind."""
        stale = [f for f in self.path.rglob("*.tmp-*") if f.is_file() and f".tmp-{os.getpid()}" not in f.name]
        for f in stale:
            f.unlink()
        return stale

    def load_config(self) -> Config:
        return from_dict(json.loads(self.config.read_text(encoding="utf-8")), written_out=True)

    @property
    def lock_file(self) -> Path:
        return self.path / LOCK_FILE

    @contextlib.contextmanager
    def lock(self, purpose: str, echo=print):
        """Hold the run folder exclusively for ``purpose`` (training, resume, evaluate, export).

        Two processes on one run (a double-clicked resume, a re-queued job) would both write checkpoints
        and history; the second gets one line naming the holder instead. The lock is an ``fcntl`` lock on
        ``.lock`` (which records the holder's pid, host, purpose and start), so the kernel releases it when
        the holder dies however it dies; a record left by a dead process is taken over with a note.
        """
        try:
            import fcntl
        except ImportError:  # not POSIX: no locking, as before
            yield
            return
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UserError(f"{self.path}: in use by {_holder_text(_read_holder(fd))}; wait until it ends (or "
                                f"stop it), then try again") from None
            left = _read_holder(fd)
            if left.get("pid") and left.get("host") == socket.gethostname() and not _alive(left["pid"]):
                echo(f"note: {self.path} was locked by pid {left['pid']} ({left.get('purpose', '?')}), which is no "
                     f"longer running; taking it over")
            record = {"pid": os.getpid(), "host": socket.gethostname(), "purpose": purpose,
                      "since": time.strftime("%Y-%m-%d %H:%M:%S")}
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
            try:
                yield
            finally:
                os.ftruncate(fd, 0)  # released cleanly: no record to take over
        finally:
            os.close(fd)  # releases the lock


LOCK_FILE = ".lock"


def _read_holder(fd: int) -> dict:
    try:
        text = os.pread(fd, 4096, 0).decode("utf-8", errors="replace").strip()
        return json.loads(text) if text else {}
    except (OSError, ValueError):
        return {}


def _holder_text(holder: dict) -> str:
    if not holder:
        return "another process"
    return f"pid {holder.get('pid')} on {holder.get('host')} ({holder.get('purpose')}, since {holder.get('since')})"


def _alive(pid: int) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, OverflowError):
        return True
    return True


def new_run_dir(output_dir: str | Path, name: str) -> RunDir:
    """``<output_dir>/<name>-<YYYYmmdd-HHMMSS>[-N]``, created exclusively (an existing one is never reused)."""
    output_dir = Path(output_dir)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"experiment.output_dir: cannot create {str(output_dir)!r}: {e.strerror}")
    if not os.access(output_dir, os.W_OK | os.X_OK):
        raise UserError(f"experiment.output_dir: {str(output_dir)!r} is not writable")
    stem = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    for n in range(1, 1000):
        path = output_dir / (stem if n == 1 else f"{stem}-{n}")
        try:
            path.mkdir()
            return RunDir(path)
        except FileExistsError:
            continue
    raise UserError(f"experiment.output_dir: could not find a free run folder name for {stem!r}")


def open_run_dir(path: str | Path) -> RunDir:
    """An existing run folder, or a clear error saying why ``path`` is not one."""
    run = RunDir(Path(path))
    if not run.path.is_dir():
        raise UserError(f"{str(path)!r} is not a folder (expected a run folder such as runs/default-20260101-120000)")
    if not run.config.is_file():
        raise UserError(f"{str(path)!r} is not a run folder: it has no config.json")
    return run


def write_config(run: RunDir, config: Config) -> None:
    write_text(run.config, json.dumps(config.to_dict(), indent=2) + "\n")


@dataclass
class LoadedRun:
    run: RunDir
    config: Config
    generator: object  # a homogan.models.Generator with the checkpoint's weights
    generator_name: str  # "ema_generator" or "generator"
    label_names: list[str]
    one_hot: bool
    checkpoint: Path
    epoch: int


def load_run(run_dir, overrides: tuple[str, ...] = (), echo=print, checkpoint: str = "latest") -> LoadedRun:
    """The run's config and its generator (EMA when the run has one), restored from the latest checkpoint, or
    with ``checkpoint="best"`` from ``checkpoints/best`` (kept by the training-time evaluation). Built in
    float32 whatever the run trained in: inference needs no mixed precision."""
    from homogan.models import build_models  # Keras: only when a run is loaded (freeze and --help stay light)
    from homogan.models.inference import ema_copy

    run = open_run_dir(run_dir)
    config = load_config(run.config, list(overrides), written_out=True)
    path = checkpoints.find(run.checkpoints, checkpoint, str(run_dir))
    names = label_names(config)
    import_tensorflow()
    with precision.float32():
        generator, _ = build_models(config, len(names))
        ema = ema_copy(generator) if config.training.ema_decay is not None else None
    ema, epoch = checkpoints.restore_generator(path, generator, ema, echo)
    loaded, name = (ema, "ema_generator") if ema is not None else (generator, "generator")
    return LoadedRun(run, config, loaded, name, names, config.data.class_conditional, path, epoch)
