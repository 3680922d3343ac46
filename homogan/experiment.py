"""Run folders: created fresh for every run (never reused), with the resolved config written first; and
loading a trained run's generator from one (:func:`load_run`), the one way every reader does it."""

from __future__ import annotations

import json
import os
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

    def remove_stale_temporaries(self) -> list[Path]:
        """Temporary files (``*.tmp-PID*``, see :mod:`homogan.atomic`) that a killed process left behind."""
        stale = [f for f in self.path.rglob("*.tmp-*") if f.is_file() and f".tmp-{os.getpid()}" not in f.name]
        for f in stale:
            f.unlink()
        return stale

    def load_config(self) -> Config:
        return from_dict(json.loads(self.config.read_text(encoding="utf-8")))


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
    config = load_config(run.config, list(overrides))
    path = checkpoints.find(run.checkpoints, checkpoint, str(run_dir))
    names = label_names(config)
    import_tensorflow()
    with precision.float32():
        generator, _ = build_models(config, len(names))
        ema = ema_copy(generator) if config.training.ema_decay is not None else None
    ema, epoch = checkpoints.restore_generator(path, generator, ema, echo)
    loaded, name = (ema, "ema_generator") if ema is not None else (generator, "generator")
    return LoadedRun(run, config, loaded, name, names, config.data.class_conditional, path, epoch)
