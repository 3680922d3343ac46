"""Side-by-side comparison of experiments (or run folders) as one HTML page and a Markdown twin.

One column per experiment: what changed versus its parent, the hyperparameters that differ among
the compared experiments, final and best metrics from ``history.csv`` (and ``metrics.json`` when
an evaluation wrote one), the loss and accuracy plots, the last sample grid and the GIF. Images are
linked by paths relative to the report, so the page opens from disk with no server.
"""

from __future__ import annotations

import html
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from homogan.atomic import write_text
from homogan.config import Config, diff, doubts, from_dict, lookup
from homogan.errors import UserError
from homogan.metrics import LOWER_IS_BETTER
from homogan.visualize import read_history

SHOWN_METRICS = ("g_loss", "d_loss_real", "d_loss_fake", "d_acc_real", "d_acc_fake", "critic_gap", "images_per_second")


@dataclass
class Entry:
    name: str
    folder: Path  # the experiment folder (or the run folder)
    run: Path | None  # the results folder with history, or None if never run
    config: dict
    parent: str | None = None
    parent_config: dict | None = None
    notes: str = ""
    history: list[dict] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)

    def image(self, name: str) -> Path | None:
        if self.run is None:
            return None
        if name == "grid":
            frames = sorted((self.run / "samples").glob("epoch_[0-9][0-9][0-9][0-9].png"))
            return frames[-1] if frames else None
        path = self.run / name
        return path if path.is_file() else None


def with_defaults(stored: dict) -> dict:
    """A stored config with keys added to the schema since it was written filled in by their defaults,
    so that comparing an old run with a new one shows real differences only."""
    def merge(base, over):
        if not isinstance(base, dict) or not isinstance(over, dict):
            return over
        return {**base, **{k: merge(base.get(k), v) for k, v in over.items()}}

    return merge(Config().to_dict(), stored)


def latest_results(folder: Path) -> Path | None:
    candidates = [p for p in [folder / "results", *folder.glob("results-*")] if (p / "history.csv").is_file()]
    return max(candidates, key=lambda p: (p / "history.csv").stat().st_mtime) if candidates else None


def load_entry(path: str | Path) -> Entry:
    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise UserError(f"{str(path)!r} is neither an experiment folder nor a run folder (no config.json)")
    config = with_defaults(json.loads((folder / "config.json").read_text(encoding="utf-8")))
    meta_path = folder / "experiment.json"
    if meta_path.is_file():  # a frozen experiment
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        run = latest_results(folder)
        entry = Entry(folder.name, folder, run, config, meta.get("parent"), notes=config["experiment"].get("notes", ""))
        parent_path = folder.parent / str(entry.parent) / "config.json"
        if entry.parent and parent_path.is_file():
            entry.parent_config = with_defaults(json.loads(parent_path.read_text(encoding="utf-8")))
    else:  # a run folder
        entry = Entry(folder.name, folder, folder, config, notes=config["experiment"].get("notes", ""))
    if entry.run is not None:
        entry.history = read_history(entry.run / "history.csv")
        if (entry.run / "metrics.json").is_file():
            entry.metrics = json.loads((entry.run / "metrics.json").read_text(encoding="utf-8"))
    return entry


def doubts_of(entry: Entry) -> list[str]:
    """Why the entry's results are not to be trusted (:func:`homogan.config.doubts`), or why its config cannot
    be judged (it no longer validates); [] for a principled combination."""
    try:
        return ["not principled: " + line for line in doubts(from_dict(entry.config))]
    except UserError as e:
        return [f"config no longer validates: {e}"]


def differing_keys(entries: list[Entry]) -> list[str]:
    keys: set[str] = set()
    for a in entries:
        for b in entries:
            keys |= {k for k, _, _ in diff(a.config, b.config)}
    return sorted(k for k in keys if not k.startswith("experiment."))


def metric_summary(entry: Entry) -> list[tuple[str, str]]:
    rows = []
    if not entry.history:
        return [("status", "not run yet")]
    last = entry.history[-1]
    rows.append(("epochs trained", f"{int(last['epoch'])} / {entry.config['training']['epochs']}"))
    for key in SHOWN_METRICS:
        if key in last and not math.isnan(last[key]):
            values = [r[key] for r in entry.history if key in r and not math.isnan(r[key])]
            best = min(values) if key in LOWER_IS_BETTER else max(values)
            rows.append((key, f"{last[key]:.4g} (best {best:.4g})" if key != "images_per_second" else f"{last[key]:.0f}"))
    for key, value in entry.metrics.items():
        if isinstance(value, (int, float)):
            rows.append((key, f"{value:.4g}"))
    return rows


def changed(entry: Entry) -> list[str]:
    if entry.parent_config is None:
        return ["(no parent)"] if entry.parent is None else [f"parent {entry.parent} not found"]
    rows = [(k, a, b) for k, a, b in diff(entry.parent_config, entry.config) if not k.startswith("experiment.")]
    return [f"{k}: {json.dumps(a)} → {json.dumps(b)}" for k, a, b in rows] or ["nothing"]


def build(paths: list[str | Path], out: str | Path) -> tuple[Path, Path]:
    """Write ``out`` (HTML) and its Markdown twin (same name, ``.md``); returns both paths."""
    if not paths:
        raise UserError("report: name at least one experiment or run folder")
    entries = [load_entry(p) for p in paths]
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"--out {str(out)!r}: the report is HTML; use a name ending in .html")
    out.parent.mkdir(parents=True, exist_ok=True)
    keys = differing_keys(entries)
    rel = lambda p: os.path.relpath(p, out.parent).replace(os.sep, "/") if p else None  # noqa: E731
    sections = [
        ("warnings", [doubts_of(e) or ["none"] for e in entries]),
        ("what changed", [changed(e) for e in entries]),
        ("notes", [[e.notes] if e.notes else [] for e in entries]),
        ("settings that differ", [[f"{k} = {json.dumps(lookup(e.config, k))}" for k in keys] for e in entries]),
        ("metrics (final, best)", [[f"{k}: {v}" for k, v in metric_summary(e)] for e in entries]),
    ]
    images = [("losses", "losses.png"), ("accuracy", "accuracy.png"), ("critic", "critic.png"), ("last sample grid", "grid"),
              ("progress", "progress.gif")]
    md_path = out.with_suffix(".md")
    write_text(out, _html(entries, sections, images, rel))
    write_text(md_path, _markdown(entries, sections, images, lambda p: os.path.relpath(p, md_path.parent) if p else None))
    return out, md_path


def _html(entries, sections, images, rel) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(e.name)}</th>" for e in entries)
    rows = []
    for title, cells in sections:
        tds = "".join("<td>" + "<br>".join(esc(line) for line in cell) + "</td>" for cell in cells)
        rows.append(f"<tr><th class='row'>{esc(title)}</th>{tds}</tr>")
    for title, name in images:
        tds = []
        for e in entries:
            p = e.image(name)
            tds.append(f"<td><a href='{esc(rel(p))}'><img src='{esc(rel(p))}' alt='{esc(title)} of {esc(e.name)}'></a></td>"
                       if p else "<td class='missing'>—</td>")
        rows.append(f"<tr><th class='row'>{esc(title)}</th>{''.join(tds)}</tr>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>homogan report: {esc(', '.join(e.name for e in entries))}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }}
table {{ border-collapse: collapse; table-layout: fixed; }}
th, td {{ border: 1px solid #ccc; padding: 6px 8px; vertical-align: top; font-size: 13px; width: 420px; }}
th.row {{ width: 140px; text-align: left; background: #f5f5f5; }}
thead th {{ background: #eef; position: sticky; top: 0; }}
td img {{ max-width: 100%; height: auto; display: block; }}
td.missing {{ color: #999; text-align: center; }}
</style></head><body>
<h1>Experiments side by side</h1>
<table><thead><tr><th class="row"></th>{head}</tr></thead><tbody>
{chr(10).join(rows)}
</tbody></table></body></html>
"""


def _markdown(entries, sections, images, rel) -> str:
    bar = lambda cells: "| " + " | ".join(cells) + " |"  # noqa: E731
    lines = ["# Experiments side by side", "", bar([""] + [e.name for e in entries]), bar(["---"] * (len(entries) + 1))]
    for title, cells in sections:
        lines.append(bar([f"**{title}**"] + ["<br>".join(c.replace("|", "\\|") for c in cell) for cell in cells]))
    for title, name in images:
        cells = []
        for e in entries:
            p = e.image(name)
            cells.append(f"![{title}]({rel(p)})" if p else "—")
        lines.append(bar([f"**{title}**"] + cells))
    return "\n".join(lines) + "\n"
