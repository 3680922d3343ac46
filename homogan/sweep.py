"""``python -m homogan sweep BASE --set training.d_steps=1,3,5 [--set …] --prefix Ratio``: a series in one command.

It freezes one experiment per combination of the listed values (``experiments/Ratio_d_steps1`` …, each with
BASE as its parent when BASE is a frozen experiment), trains them one after the other into their own
``results/``, and writes the report of the series. It is resumable: an experiment whose results are
complete is skipped, an unfinished one is resumed from its last checkpoint, one not started is trained —
so a killed sweep, started again with the same command, continues where it stopped. ``--dry-run`` lists
what it would create and changes nothing.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from homogan.config import NAME_PATTERN, load_config, parse_override
from homogan.errors import UserError
from homogan.freeze import freeze, load_frozen, results_dir
from homogan.report import build
from homogan.train import train


@dataclass(frozen=True)
class Member:
    name: str
    overrides: tuple[str, ...]  # KEY=VALUE, one per swept key


def split_values(text: str) -> list[str]:
    """``1,3,5`` → ["1", "3", "5"]; commas inside brackets, braces or quotes do not split (``["A","B"],[]``)."""
    parts, depth, quote, current = [], 0, None, ""
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += ch
    parts.append(current)
    return [p.strip() for p in parts]


def _label(key: str, value: str) -> str:
    leaf = key.rsplit(".", 1)[-1]
    return re.sub(r"[^A-Za-z0-9_-]+", "-", f"{leaf}{value}").strip("-")


def members(sets: list[str], prefix: str) -> list[Member]:
    """One member per combination of the swept values, named ``<prefix>_<key><value>[_…]``."""
    if not NAME_PATTERN.fullmatch(prefix):
        raise UserError(f"--prefix {prefix!r}: use letters, digits, '_' or '-', starting with a letter (e.g. Ratio)")
    if not sets:
        raise UserError("sweep: give at least one --set KEY=VALUE1,VALUE2,…")
    axes = []
    for item in sets:
        key, _ = parse_override(item)  # a malformed KEY=… is refused here, with the usual message
        values = split_values(item.partition("=")[2])
        if any(v == "" for v in values):
            raise UserError(f"--set {item!r}: an empty value in the list; expected KEY=VALUE1,VALUE2,…")
        axes.append([(key, v) for v in values])
    out = []
    for combo in itertools.product(*axes):
        name = "_".join([prefix] + [_label(k, v) for k, v in combo])
        out.append(Member(name, tuple(f"{k}={v}" for k, v in combo)))
    names = [m.name for m in out]
    if len(set(names)) != len(names):
        raise UserError(f"sweep: two combinations get the same name ({names}); use values that differ in letters or "
                        f"digits")
    return out


def _base_config_path(base: Path) -> Path:
    path = base / "config.json" if base.is_dir() else base
    if not path.is_file():
        raise UserError(f"BASE {str(base)!r}: neither an experiment or run folder with config.json nor a config file")
    return path


def _finished(folder: Path) -> bool:
    """Whether the experiment's newest results folder trained all its epochs."""
    from homogan import checkpoints

    candidates = [p for p in [folder / "results", *folder.glob("results-*")] if (p / "config.json").is_file()]
    for results in candidates:
        done = checkpoints.latest_epoch(results / "checkpoints")
        target = json.loads((results / "config.json").read_text(encoding="utf-8"))["training"]["epochs"]
        if done is not None and done >= target and not checkpoints.latest_step(results / "checkpoints")[0]:
            return True
    return False


def sweep(base: str | Path, sets: list[str], prefix: str, experiments_dir: str | Path = "experiments",
          dry_run: bool = False, echo=print):
    """Freeze, train and report the series. Returns (the experiment folders in order, None) — or, when a
    member's training stopped early (interrupted, a non-finite loss, a full disk), (the folders so far, that
    member's TrainResult): the same command continues from there."""
    base = Path(base)
    base_path = _base_config_path(base)
    experiments_dir = Path(experiments_dir)
    series = members(sets, prefix)
    for m in series:  # every combination must validate before anything is written
        load_config(base_path, list(m.overrides))
    parent = base.name if base.is_dir() and (base / "experiment.json").is_file() else None
    if dry_run:
        for m in series:
            state = ("exists, finished" if _finished(experiments_dir / m.name) else "exists, to continue") \
                if (experiments_dir / m.name).exists() else "to create"
            echo(f"{experiments_dir / m.name}: {', '.join(m.overrides)} ({state})")
        echo(f"report: {experiments_dir / f'{prefix}_report.html'} (dry run: nothing written)")
        return [experiments_dir / m.name for m in series], None
    folders = []
    for i, m in enumerate(series, 1):
        folder = experiments_dir / m.name
        if folder.exists():
            wanted = load_config(base_path, [*m.overrides, f"experiment.name={m.name}"]).to_dict()
            frozen = load_frozen(folder).to_dict()
            wanted["experiment"]["notes"] = frozen["experiment"]["notes"]
            if frozen != wanted:
                raise UserError(f"{folder} exists with another config than this sweep gives it; choose another "
                                f"--prefix or remove that folder")
        else:
            freeze(base_path, m.name, experiments_dir, parent,
                   notes=f"Sweep {prefix}: {', '.join(m.overrides)}.", overrides=m.overrides)
        folders.append(folder)
        if _finished(folder):
            echo(f"[{i}/{len(series)}] {m.name}: already trained, skipped")
            continue
        config = load_config(folder / "config.json", written_out=True)
        cwd = os.getcwd()
        os.chdir(experiments_dir.resolve().parent)  # relative data paths mean the same as from the project root
        try:
            out, resume = results_dir(folder.resolve(), overwrite=False)
            echo(f"[{i}/{len(series)}] {m.name}: {', '.join(m.overrides)} → {out}" + (" (resuming)" if resume else ""))
            result = train(config, resume=out if resume else None, run_dir=None if resume else out, echo=echo)
        finally:
            os.chdir(cwd)
        if result.stopped or result.interrupted or result.write_failed:
            echo(f"sweep stopped at {m.name} ({result.stopped or result.write_failed or 'interrupted'}); run the same "
                 f"command again to continue from there")
            return folders, result
    html_path, md_path = build(folders, experiments_dir / f"{prefix}_report.html")
    echo(f"report: {html_path} and {md_path}")
    return folders, None
