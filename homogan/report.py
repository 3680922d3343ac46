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
from homogan.config import Config, diff, doubts, fill_later_keys, from_dict, lookup
from homogan.errors import UserError
from homogan.metrics import LOWER_IS_BETTER, is_evaluation_value, protocol_differences
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
    protocol: dict | None = None  # how its evaluation values were measured (evaluation.json), if known

    def image(self, name: str) -> Path | None:
        if self.run is None:
            return None
        if name == "grid":
            frames = sorted((self.run / "samples").glob("epoch_[0-9][0-9][0-9][0-9].png"))
            return frames[-1] if frames else None
        path = self.run / name
        return path if path.is_file() else None


def with_defaults(stored: dict) -> dict:
    """A stored config with keys added to the schema since it was written filled in — by the value that trained
    before the key existed where its default changes what trains (:data:`homogan.config.LATER_KEYS`), else by
    their defaults —, so that comparing an old run with a new one shows real differences only."""
    def merge(base, over):
        if not isinstance(base, dict) or not isinstance(over, dict):
            return over
        return {**base, **{k: merge(base.get(k), v) for k, v in over.items()}}

    return merge(Config().to_dict(), fill_later_keys(stored))


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
        if (entry.run / "evaluation.json").is_file():
            entry.protocol = json.loads((entry.run / "evaluation.json").read_text(encoding="utf-8"))
    return entry


def comparability(entries: list[Entry]) -> list[list[str]]:
    """Per entry: whether its evaluation values can be compared with the first evaluated entry's — only when
    their protocols are equal (:func:`homogan.metrics.protocol_differences`); the fields that differ otherwise.
    Values that are not comparable are shown, never ranked."""
    evaluated = [e for e in entries if any(is_evaluation_value(k) for r in e.history[:1] for k in r)]
    if not evaluated:
        return [["no evaluation values"] for _ in entries]
    base = evaluated[0]
    out = []
    for e in entries:
        if e not in evaluated:
            out.append(["no evaluation values"])
        elif e is base:
            out.append([f"the reference for the others ({(e.protocol or {}).get('feature_extractor', 'protocol unknown')})"])
        else:
            unlike = protocol_differences(base.protocol, e.protocol)
            out.append([f"comparable with {base.name}"] if not unlike else
                       [f"NOT comparable with {base.name}: {', '.join(unlike)} differ"])
    return out


def doubts_of(entry: Entry) -> list[str]:
    """Why the entry's results are not to be trusted (:func:`homogan.config.doubts`), or why its config cannot
    be judged (it no longer validates); [] for a principled combination."""
    try:
        return ["not principled: " + line for line in doubts(from_dict(entry.config, written_out=True))]
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


#: Overlaid curves, one chart per metric, one line per experiment.
CURVES = (("g_loss", "G loss"), ("d_loss_real", "D loss on real"), ("d_loss_fake", "D loss on fake"),
          ("d_acc_real", "D accuracy on real"), ("d_acc_fake", "D accuracy on fake"),
          ("critic_gap", "critic: E f(real) − E f(fake)"), ("fid", "FID"), ("kid", "KID"), ("precision", "precision"),
          ("recall", "recall"), ("attribute_accuracy", "attribute-control accuracy"))
#: The summary table's metrics (final, and best with its epoch).
SUMMARY = ("fid", "kid", "precision", "recall", "attribute_accuracy")


def _values(entry: Entry, key: str) -> list[tuple[int, float]]:
    return [(int(r["epoch"]), r[key]) for r in entry.history if key in r and not math.isnan(r[key])]


def overlay_charts(entries: list[Entry], folder: Path, comparable: list[bool]) -> list[tuple[str, Path]]:
    """One PNG per metric in ``folder``, a line per experiment (dashed when its evaluation values are not
    comparable with the reference entry's: shown, never ranked). Returns (title, path) of those written."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from homogan.atomic import atomic_path

    written = []
    folder.mkdir(parents=True, exist_ok=True)
    for key, title in CURVES:
        series = [(e, ok, _values(e, key)) for e, ok in zip(entries, comparable) if _values(e, key)]
        if not series:
            continue
        fig = Figure(figsize=(7, 4), dpi=100)
        ax = fig.subplots()
        for e, ok, points in series:
            evaluation = is_evaluation_value(key)
            ax.plot([x for x, _ in points], [y for _, y in points], marker="o" if len(points) < 30 else None,
                    linestyle="-" if ok or not evaluation else "--",
                    label=e.name + ("" if ok or not evaluation else " (not comparable)"))
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2 if len(series) > 6 else 1)
        fig.tight_layout()
        path = folder / f"{key}.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
        written.append((title, path))
    return written


def summary_table(entries: list[Entry], comparable: list[bool], sort: str | None) -> tuple[list[str], list[list[str]]]:
    """(header, rows): one row per experiment — epochs, wall time, img/s, final and best (with its epoch) of
    each summary metric — sorted by the best ``sort`` value among the comparable entries; entries whose
    values are not comparable (or missing) follow, marked, unranked."""
    keys = [k for k in SUMMARY if any(_values(e, k) for e in entries)]
    header = ["rank", "experiment", "epochs", "wall time", "img/s"] + keys

    def best(e, key):
        points = _values(e, key)
        if not points:
            return None
        pick = min if key in LOWER_IS_BETTER else max
        return pick(points, key=lambda p: p[1])

    ranked = [e for e, ok in zip(entries, comparable) if ok and sort and best(e, sort) is not None]
    if sort:
        ranked.sort(key=lambda e: best(e, sort)[1], reverse=sort not in LOWER_IS_BETTER)
    others = [e for e in entries if e not in ranked]
    rows = []
    for i, e in enumerate(ranked + others):
        ok = comparable[entries.index(e)]
        seconds = sum(r.get("seconds", 0.0) for r in e.history if not math.isnan(r.get("seconds", 0.0)))
        speeds = sorted(r["images_per_second"] for r in e.history if "images_per_second" in r)
        cells = [str(i + 1) if e in ranked else ("—" if ok else "not ranked: not comparable"), e.name,
                 f"{int(e.history[-1]['epoch'])} / {e.config['training']['epochs']}" if e.history else "not run",
                 (f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s") if e.history else "",
                 f"{speeds[len(speeds) // 2]:.0f}" if speeds else ""]
        for key in keys:
            points, top = _values(e, key), best(e, key)
            cells.append(f"{points[-1][1]:.4g} (best {top[1]:.4g} @ {top[0]})" if points else "")
        rows.append(cells)
    return header, rows


def build(paths: list[str | Path], out: str | Path, sort: str | None = "auto") -> tuple[Path, Path]:
    """Write ``out`` (HTML) and its Markdown twin (same name, ``.md``), with the overlaid curves in
    ``<out stem>_curves/``; returns both paths. ``sort``: the metric the summary ranks by (``"auto"``: FID
    when any experiment has it; None: keep the given order)."""
    if not paths:
        raise UserError("report: name at least one experiment or run folder")
    entries = [load_entry(p) for p in paths]
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"--out {str(out)!r}: the report is HTML; use a name ending in .html")
    if sort == "auto":
        sort = "fid" if any(_values(e, "fid") for e in entries) else None
    elif sort is not None and sort not in SUMMARY:
        raise UserError(f"--sort {sort!r}: allowed: {', '.join(SUMMARY)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    keys = differing_keys(entries)
    rel = lambda p: os.path.relpath(p, out.parent).replace(os.sep, "/") if p else None  # noqa: E731
    sections = [
        ("warnings", [doubts_of(e) or ["none"] for e in entries]),
        ("evaluation protocol", comparability(entries)),
        ("what changed", [changed(e) for e in entries]),
        ("notes", [[e.notes] if e.notes else [] for e in entries]),
        ("settings that differ", [[f"{k} = {json.dumps(lookup(e.config, k))}" for k in keys] for e in entries]),
        ("metrics (final, best)", [[f"{k}: {v}" for k, v in metric_summary(e)] for e in entries]),
    ]
    images = [("losses", "losses.png"), ("accuracy", "accuracy.png"), ("critic", "critic.png"), ("last sample grid", "grid"),
              ("progress", "progress.gif")]
    comparable = [not line[0].startswith("NOT comparable") for line in comparability(entries)]
    charts = overlay_charts(entries, out.with_name(f"{out.stem}_curves"), comparable)
    summary = summary_table(entries, comparable, sort)
    md_path = out.with_suffix(".md")
    write_text(out, _html(entries, sections, images, rel, summary, charts, sort))
    write_text(md_path, _markdown(entries, sections, images, lambda p: os.path.relpath(p, md_path.parent) if p else None,
                                  summary, charts, sort))
    return out, md_path


def _html(entries, sections, images, rel, summary, charts, sort) -> str:
    esc = html.escape
    header, rows = summary
    summary_html = ("<table class='summary'><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header)
                    + "</tr></thead><tbody>" + "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>"
                                                        for row in rows) + "</tbody></table>")
    charts_html = "".join(f"<figure><img src='{esc(rel(p))}' alt='{esc(t)}'></figure>" for t, p in charts)
    ranked_by = f"ranked by the best {sort}" if sort else "in the given order"
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
table.summary th, table.summary td {{ width: auto; white-space: nowrap; }}
.charts {{ display: flex; flex-wrap: wrap; gap: 8px; }}
.charts figure {{ margin: 0; width: 480px; }} .charts img {{ width: 100%; }}
</style></head><body>
<h1>Experiments compared</h1>
<h2>Summary ({esc(ranked_by)}; final value, best with its epoch)</h2>
{summary_html}
<h2>Curves</h2>
<div class="charts">{charts_html}</div>
<h2>Side by side</h2>
<table><thead><tr><th class="row"></th>{head}</tr></thead><tbody>
{chr(10).join(rows)}
</tbody></table></body></html>
"""


def _markdown(entries, sections, images, rel, summary, charts, sort) -> str:
    bar = lambda cells: "| " + " | ".join(cells) + " |"  # noqa: E731
    header, rows = summary
    lines = ["# Experiments compared", "", f"## Summary ({f'ranked by the best {sort}' if sort else 'in the given order'}; "
             f"final value, best with its epoch)", "", bar(header), bar(["---"] * len(header))]
    lines += [bar([c.replace("|", "\\|") for c in row]) for row in rows]
    lines += ["", "## Curves", ""] + [f"![{t}]({rel(p)})" for t, p in charts]
    lines += ["", "## Side by side", "", bar([""] + [e.name for e in entries]), bar(["---"] * (len(entries) + 1))]
    for title, cells in sections:
        lines.append(bar([f"**{title}**"] + ["<br>".join(c.replace("|", "\\|") for c in cell) for cell in cells]))
    for title, name in images:
        cells = []
        for e in entries:
            p = e.image(name)
            cells.append(f"![{title}]({rel(p)})" if p else "—")
        lines.append(bar([f"**{title}**"] + cells))
    return "\n".join(lines) + "\n"
