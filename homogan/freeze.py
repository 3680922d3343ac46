"""Frozen experiments: ``experiments/ExperimentNN/`` = ``config.json`` + ``main.py`` + ``README.md``.

A frozen experiment stores the *fully resolved* config (every default written out), so it means the
same thing when defaults change later; its ``main.py`` is three lines that hand the folder to
``homogan.cli``, so it keeps working as the code moves on (CI runs every one of them). Results of a
re-run go to the experiment's own ``results/`` folder; an existing result is never overwritten.
"""

from __future__ import annotations

import json
from pathlib import Path

from homogan import checkpoints
from homogan.atomic import write_text
from homogan.config import NAME_PATTERN, Config, diff, from_dict, load_config, lookup, read_json
from homogan.errors import UserError

#: Keys that describe an experiment rather than change what it trains; left out of "what changed".
BOOKKEEPING = ("experiment.name", "experiment.notes", "experiment.output_dir")

MAIN_PY = '''"""Re-run this frozen experiment: python {rel}/main.py [--set KEY.PATH=VALUE ...] [--overwrite]

Results go to {rel}/results/ (a second run to results-2/, ...). See `--help`.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from homogan.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["run-experiment", str(Path(__file__).resolve().parent), *sys.argv[1:]]))
'''

KEY_HYPERPARAMETERS = (
    "data.source", "data.image_size", "data.attributes", "data.filters", "data.balance", "data.limit",
    "model.latent_dim", "model.generator.width", "model.generator.stem", "model.generator.upsample",
    "model.generator.batch_norm", "model.generator.activation", "model.discriminator.width",
    "model.discriminator.normalization", "model.discriminator.spectral_norm", "model.discriminator.conditioning",
    "model.discriminator.dropout",
    "training.loss", "training.epochs", "training.batch_size", "training.g_optimizer.learning_rate",
    "training.g_optimizer.beta_1", "training.d_optimizer.learning_rate", "training.d_optimizer.beta_1",
    "training.g_steps", "training.d_steps", "training.d_skip_threshold", "training.real_label_range",
    "training.fake_label_range", "training.label_flip", "training.gradient_penalty",
)


def experiment_diff(parent: dict, child: dict) -> list[tuple[str, object, object]]:
    return [row for row in diff(parent, child) if row[0] not in BOOKKEEPING]


def render_readme(name: str, config: Config, parent_name: str | None, parent: Config | None, notes: str) -> str:
    c = config.to_dict()
    lines = [f"# {name}", ""]
    if notes:
        lines += [notes, ""]
    if parent is not None:
        changes = experiment_diff(parent.to_dict(), c)
        lines += [f"## What changed versus {parent_name}", ""]
        if changes:
            lines += ["| key | " + str(parent_name) + " | " + name + " |", "|---|---|---|"]
            lines += [f"| `{k}` | `{json.dumps(a)}` | `{json.dumps(b)}` |" for k, a, b in changes]
        else:
            lines += ["Nothing: the same configuration."]
        lines.append("")
    lines += ["## Hyperparameters", "", "| key | value |", "|---|---|"]
    lines += [f"| `{k}` | `{json.dumps(lookup(c, k))}` |" for k in KEY_HYPERPARAMETERS]
    lines += ["", "The complete configuration is `config.json` beside this file.", "", "## Run it", "",
              "```bash", f"python experiments/{name}/main.py", "```", "",
              "Results land in `results/` here (a second run in `results-2/`; `--overwrite` replaces "
              "`results/`). Smoke-run it offline in seconds:", "", "```bash",
              f"python experiments/{name}/main.py --set data.source=synthetic --set data.root=data/synthetic "
              "--set training.epochs=1 --set training.steps_per_epoch=2", "```", ""]
    return "\n".join(lines)


def write_main_py(folder: Path) -> bool:
    """Write (or bring up to date) the experiment's ``main.py`` from :data:`MAIN_PY`; True if it changed.

    ``main.py`` is code, not part of what was frozen: refreshing it never changes the experiment."""
    path = Path(folder) / "main.py"
    text = MAIN_PY.format(rel=f"experiments/{Path(folder).name}")
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    write_text(path, text)
    return True


def load_frozen(folder: Path) -> Config:
    """The frozen config of an experiment folder, or one line saying what is wrong with it."""
    path = Path(folder) / "config.json"
    raw = read_json(path, what="experiment config")
    try:
        return from_dict(raw, written_out=True)
    except UserError as e:
        raise UserError(f"{path}: {e}") from None


def freeze(source: str | Path, name: str, experiments_dir: str | Path = "experiments", parent: str | None = None,
           notes: str = "", overrides: tuple[str, ...] = (), echo=lambda *a, **k: None) -> Path:
    """Create ``experiments/<name>/`` from a run folder or a config file (plus ``--set`` overrides). From a run
    folder that trained, the run's record is kept in ``record/`` (what ``reproduce`` checks against); a
    config-only freeze has none, and says so."""
    if not NAME_PATTERN.fullmatch(name):
        raise UserError(f"--name {name!r}: use letters, digits, '_' or '-', starting with a letter (e.g. Experiment17)")
    source = Path(source)
    config_path = source / "config.json" if source.is_dir() else source
    if not config_path.is_file():
        raise UserError(f"{str(source)!r} is neither a run folder with config.json nor a config file")
    config = load_config(config_path, [*overrides, f"experiment.name={name}"] + ([f"experiment.notes={notes}"] if notes else []),
                         written_out=source.is_dir())
    experiments_dir = Path(experiments_dir)
    parent_config = None
    if parent is not None:
        if not NAME_PATTERN.fullmatch(parent):
            raise UserError(f"--parent {parent!r}: an experiment's name (letters, digits, '_' or '-', starting with a "
                            f"letter), not a path")
        if not (experiments_dir / parent / "config.json").is_file():
            raise UserError(f"--parent {parent!r}: no frozen experiment {experiments_dir / parent}")
        parent_config = load_frozen(experiments_dir / parent)
    folder = experiments_dir / name
    try:
        folder.mkdir(parents=True)
    except FileExistsError:
        raise UserError(f"--name {name!r}: {folder} already exists; frozen experiments are never overwritten")
    write_text(folder / "config.json", json.dumps(config.to_dict(), indent=2) + "\n")
    write_main_py(folder)
    trained = source.is_dir() and (source / "history.csv").is_file()
    if trained and overrides:
        echo(f"note: {folder} has no record: --set changed the run's config, so its history is not this "
             f"experiment's result")
    elif trained:
        summary = keep_record(source, folder)
        echo(f"kept the record of {source} ({summary['epochs']} epochs, precision {summary['precision']}, "
             f"{summary['device_class']}) in {folder / RECORD}")
    else:
        echo(f"note: {folder} has no record (frozen from a config, not from a trained run): there is no result to "
             f"reproduce yet")
    meta = {"name": name, "parent": parent}
    write_text(folder / "experiment.json", json.dumps(meta, indent=2) + "\n")
    write_text(folder / "README.md", render_readme(name, config, parent, parent_config, notes or config.experiment.notes))
    return folder


RECORD = "record"
#: What a run's record keeps (when present): what reproduce compares with, and what a reader looks at.
RECORD_FILES = ("history.csv", "metrics.json", "run.json", "config.json", "evaluation.json")


def keep_record(run_path: Path, folder: Path) -> dict:
    """Copy a run's record into ``folder/record/``: its history, metrics, sessions (code version, resolved
    precision, device) and config, its last sample grid, and ``record.json`` summing up what produced it."""
    import shutil

    from homogan.experiment import RunDir

    run = RunDir(Path(run_path))
    record = folder / RECORD
    record.mkdir()
    for name in RECORD_FILES:
        if (run.path / name).is_file():
            shutil.copy2(run.path / name, record / name)
    frames = run.frames()
    if frames:
        shutil.copy2(frames[-1], record / frames[-1].name)
    sessions = run.sessions()

    def agreed(get):
        values = {json.dumps(get(s)) for s in sessions}
        return json.loads(values.pop()) if len(values) == 1 else ("mixed" if values else None)

    summary = {"source_run": str(run.path.resolve()), "epochs": len(_history_rows(run.history)),
               "code": agreed(lambda s: s.get("code")), "precision": agreed(lambda s: s.get("precision")),
               "device_class": agreed(lambda s: s.get("device", {}).get("device_class")),
               "sessions": len(sessions), "last_grid": frames[-1].name if frames else None}
    write_text(record / "record.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _history_rows(path: Path) -> list[dict]:
    import csv

    if not Path(path).is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def results_dir(folder: Path, overwrite: bool) -> tuple[Path, bool]:
    """Where a re-run writes: (path, resume?).

    ``results/`` when free; the newest unfinished results folder is resumed; otherwise the next free
    ``results-N/``. ``--overwrite`` empties ``results/`` and starts again there.
    """
    import shutil

    base = folder / "results"
    if overwrite:
        if base.exists():
            shutil.rmtree(base)
        return base, False
    existing = [base] + sorted((p for p in folder.glob("results-*") if p.name[8:].isdigit()), key=lambda p: int(p.name[8:]))
    existing = [p for p in existing if p.exists()]
    if not existing:
        return base, False
    newest = existing[-1]
    done = checkpoints.latest_epoch(newest / "checkpoints")
    if done is not None and (newest / "config.json").is_file():
        target = json.loads((newest / "config.json").read_text())["training"]["epochs"]
        if done < target:
            return newest, True
    n = 2 if newest == base else int(newest.name[8:]) + 1
    return folder / f"results-{n}", False
