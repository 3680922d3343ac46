"""``python -m homogan reproduce experiments/NAME``: re-run a frozen experiment and check it against its record.

A frozen experiment that was frozen from a trained run keeps that run's record (``record/``: history,
metrics, sessions with code version, resolved precision and device class; see
:func:`homogan.freeze.keep_record`). ``reproduce`` trains the experiment again (all of it, or its first
``--epochs K``) into a fresh results folder and compares epoch by epoch:

* **same code** (the package's content hash), **same device class** and **same precision** → the run
  is deterministic (seeded data order, weights and draws), so every logged value must be identical as
  written (6 significant digits): the verdict is "reproduced exactly", or the first epoch and metric
  that differ, with both values;
* otherwise the trajectories differ in their last bits and then diverge (a GAN is chaotic), so the
  last compared epoch's values must agree within a tolerance per metric (:data:`TOLERANCES`,
  ``--tolerance fid=0.1,recall=0.05`` to change): the verdict with the table.

Timing columns (seconds, images/s) are never compared, and evaluation values (FID, KID, precision, recall,
attribute accuracy) only when the record's protocol (``evaluation.json``: feature extractor and its
weights, image size, sample counts, real reference, seed) equals the re-run's. Exit code 0 reproduced,
1 not, 2 bad input.
"""

from __future__ import annotations

import csv
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from homogan import device, metrics, precision, provenance
from homogan.config import load_config
from homogan.errors import UserError
from homogan.freeze import RECORD, load_frozen

#: Not results: never compared.
TIMING = ("epoch", "seconds", "images_per_second", "eval_seconds")
#: Allowed difference per metric when the run cannot be identical: (kind, amount); "relative" is of the
#: recorded value. From the spread between runs of one config (README: recall ±0.06, FID ±15 %).
TOLERANCES = {"fid": ("relative", 0.25), "kid": ("relative", 0.5), "kid_std": ("relative", 1.0),
              "precision": ("absolute", 0.08), "recall": ("absolute", 0.08),
              "attribute_accuracy": ("absolute", 0.03), "attribute_all_correct": ("absolute", 0.05),
              "d_acc_real": ("absolute", 0.05), "d_acc_fake": ("absolute", 0.05), "d_updates": ("absolute", 0.0)}
#: Any other metric (losses, penalties, per-attribute accuracies).
DEFAULT_TOLERANCE = ("relative", 0.25)
PER_ATTRIBUTE = ("absolute", 0.03)


@dataclass
class Verdict:
    reproduced: bool
    exact: bool  # whether identity was expected (same code, device class, precision)
    lines: list[str] = field(default_factory=list)


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def tolerance_for(metric: str, overrides: dict) -> tuple[str, float]:
    if metric in overrides:
        return overrides[metric]
    if metric in TOLERANCES:
        return TOLERANCES[metric]
    if metric.startswith("attribute_accuracy_"):
        return PER_ATTRIBUTE
    return DEFAULT_TOLERANCE


def parse_tolerances(text: str | None) -> dict:
    """``fid=0.1,recall=0.05`` → {metric: (kind, amount)} keeping each metric's kind (relative/absolute)."""
    out = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        try:
            amount = float(value)
        except ValueError:
            amount = -1.0
        if not sep or not name.strip() or not math.isfinite(amount) or amount < 0:
            raise UserError(f"--tolerance {text!r}: expected METRIC=AMOUNT pairs, comma-separated, amounts >= 0 "
                            f"(e.g. fid=0.1,recall=0.05), got {item.strip()!r}")
        name = name.strip()
        out[name] = (tolerance_for(name, {})[0], amount)
    return out


def compare_exact(recorded: list[dict], fresh: list[dict]) -> Verdict:
    for old, new in zip(recorded, fresh):
        for key in old:
            if key in TIMING:
                continue
            if old[key] != new.get(key):
                return Verdict(False, True, [f"not reproduced: epoch {old['epoch']}, {key}: recorded {old[key]}, "
                                             f"reproduced {new.get(key, 'missing')} (same code, device class and "
                                             f"precision: identical values were expected)"])
    return Verdict(True, True, [f"reproduced exactly: {len(fresh)} epochs, every logged value identical"])


def compare_within(recorded: list[dict], fresh: list[dict], overrides: dict, why: str) -> Verdict:
    old, new = recorded[len(fresh) - 1], fresh[-1]
    rows, ok = [], True
    for key in old:
        if key in TIMING or old[key] in ("", None) or new.get(key) in ("", None):
            continue
        a, b = float(old[key]), float(new[key])
        kind, amount = tolerance_for(key, overrides)
        allowed = amount * abs(a) if kind == "relative" else amount
        good = abs(a - b) <= allowed + 1e-12
        ok &= good
        rows.append(f"| {key} | {a:.4g} | {b:.4g} | {b - a:+.4g} | ±{allowed:.4g} ({kind} {amount:g}) | "
                     f"{'yes' if good else '**no**'} |")
    verdict = "reproduced within tolerance" if ok else "not reproduced"
    lines = [f"{verdict} at epoch {new['epoch']} ({why}: identical values were not expected)",
             "| metric | recorded | reproduced | difference | allowed | within |", "|---|--:|--:|--:|--:|---|", *rows]
    return Verdict(ok, False, lines)


def reproduce(folder: str | Path, epochs: int | None = None, tolerance: str | None = None, echo=print) -> Verdict:
    """Re-run the frozen experiment ``folder`` (its first ``epochs``) and compare with its record."""
    from homogan.freeze import results_dir
    from homogan.train import train

    folder = Path(folder).resolve()
    frozen = load_frozen(folder)
    overrides = parse_tolerances(tolerance)
    record = folder / RECORD
    if not (record / "record.json").is_file() or not (record / "history.csv").is_file():
        raise UserError(f"{folder}: no record to reproduce (frozen from a config, or before records were kept); "
                        f"freeze it from a trained run folder: python -m homogan freeze RUN_DIR --name NAME")
    summary = json.loads((record / "record.json").read_text(encoding="utf-8"))
    recorded = read_rows(record / "history.csv")
    if epochs is not None and not 1 <= epochs <= len(recorded):
        raise UserError(f"--epochs {epochs}: the record has {len(recorded)} epochs; allowed: 1..{len(recorded)}")
    epochs = epochs or len(recorded)
    config = load_config(folder / "config.json", [f"training.epochs={epochs}"] if epochs != frozen.training.epochs else [],
                         written_out=True)

    facts = device.read_facts(config.training.distribute)
    now = {"package_sha256": provenance.package_hash(), "device_class": facts.device_class,
           "precision": precision.resolve(config.training.precision, facts).precision}
    then = {"package_sha256": (summary.get("code") or {}).get("package_sha256") if isinstance(summary.get("code"), dict)
            else summary.get("code"), "device_class": summary.get("device_class"), "precision": summary.get("precision")}
    differs = [k for k in now if now[k] != then[k]]
    echo(f"record: {len(recorded)} epochs, code {then['package_sha256']}, {then['device_class']}, {then['precision']}; "
         f"now: code {now['package_sha256']}, {now['device_class']}, {now['precision']}")

    cwd = os.getcwd()
    os.chdir(folder.parents[1])  # relative data paths mean the same as from the project root, as for main.py
    try:
        out = _fresh_results(folder, results_dir)
        echo(f"re-running {folder.name} for {epochs} epoch(s) into {out}")
        result = train(config, run_dir=out, echo=echo)
    finally:
        os.chdir(cwd)
    fresh = read_rows(out / "history.csv") if (out / "history.csv").is_file() else []
    if result.stopped or result.interrupted or result.write_failed or len(fresh) < epochs:
        return Verdict(False, not differs, [f"not reproduced: the re-run stopped after {len(fresh)} of {epochs} epochs "
                                            f"({result.stopped or result.write_failed or 'interrupted'})"])
    notes = []
    if any(metrics.is_evaluation_value(k) for k in recorded[0]):
        old_protocol = _read_json(record / "evaluation.json")
        new_protocol = _read_json(out / "evaluation.json")
        unlike = metrics.protocol_differences(old_protocol, new_protocol)
        if unlike:  # measured another way: the values are shown by report, never compared
            recorded = [{k: v for k, v in r.items() if not metrics.is_evaluation_value(k)} for r in recorded]
            fresh = [{k: v for k, v in r.items() if not metrics.is_evaluation_value(k)} for r in fresh]
            notes.append(f"evaluation values not compared: their protocols differ ({', '.join(unlike)})")
    if not differs:
        verdict = compare_exact(recorded[:epochs], fresh)
    else:
        shown = ", ".join(f"{k} {then[k]} → {now[k]}" for k in differs)
        verdict = compare_within(recorded, fresh, overrides, f"{shown}")
    verdict.lines = notes + verdict.lines
    for line in verdict.lines:
        echo(line)
    return verdict


def _read_json(path: Path) -> dict | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _fresh_results(folder: Path, results_dir) -> Path:
    """A results folder that was never used (an unfinished one is left alone: reproduce starts from zero)."""
    out, resume = results_dir(folder, overwrite=False)
    while resume or out.exists():
        number = int(out.name.rpartition("-")[2]) + 1 if out.name != "results" else 2
        out, resume = folder / f"results-{number}", False
    return out
