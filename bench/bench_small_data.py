"""Small data: does adaptive discriminator augmentation keep D from memorising a small training selection?

Usage: python bench/bench_small_data.py [--limits 1000 2000] [--contenders no_ada,ada]
                                        [--steps 12000] [--evals 0] [--layout celeba|folder]
                                        [--folder PATH] [--dir runs/bench_small_data] [--set KEY=VALUE ...]
                                        [--dry-run]

For every ``data.limit`` and contender it trains the shipped ``config.json`` (plus any --set) on the first
``limit`` images of the selection, at equal steps for all: ``--steps`` (default 12,000, the default run's
length when the README's tables were measured: 16,000 images × 12 epochs / batch 16; it trains 14 since
2026-12-03) rounded up to whole passes over the ``limit`` images (an epoch is one pass here,
``training.steps_per_epoch=null``, as when every table of the README was measured), with sample grids
and checkpoints at about 12 of those epochs and the training-time evaluation off; then ``python -m homogan evaluate`` scores the final
generator against the reference of the data **without the limit** (``evaluation.reference=unlimited``: the
distribution the small selection was drawn from, as StyleGAN2-ADA scores its subsets — a generator that
reproduces its 1,000 training images scores badly there, as it should). Contenders:

- ``default``: the config as shipped (ADA off since 2026-12-01: see the README's "Small data");
- ``no_ada``: ``training.ada_target=null`` (no adaptive augmentation, whatever the default);
- ``ada``: ADA at the paper's target, at any size (``training.ada_target=0.6``, ``training.ada_below_images=0``).

``--layout folder`` first writes the selection as a class-per-folder tree of PNGs (one folder per
combination of ``data.attributes``) and trains ``data.source=folder`` with ``class_conditional`` on it —
the layout of a user's own folder (no x-flip by default, one-hot classes, the folder classifier).
``--folder PATH`` trains on an existing class-per-folder tree instead (e.g. the digits of
``bench/make_glyph_folder.py``), in the same way; ``data.limit`` then picks from its images, and the reference is
all of them.

Prints the device block, then one row per run: D's accuracy on real images after warm-up (the max over
the epochs after the first quarter of the steps, and the last), r_t and p of the last epoch, how D scores real
images it never trains on in the last epoch (the share it calls real, and ADA's r_v: 0 = like its training images,
1 = like fakes; ``logging.memorisation_images``), FID / KID / precision / recall against the unlimited
reference, the fakes' spread (near 0: G has collapsed), the mean and the worst attribute's (class's) control
accuracy, and the wall time. Runs are kept in ``--dir``.
``--evals K`` also evaluates about K times during training (against the same unlimited reference) and prints
each run's FID and recall over the steps: whether a contender is still improving or already getting worse.

Every run's configuration is validated before the first one trains, so a mistyped ``--set`` stops the bench at
once, not hours in. ``--dry-run`` stops there: it prints each run's ``python -m homogan train`` command and
trains, writes and evaluates nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CONTENDERS = {"default": [], "no_ada": ["training.ada_target=null"],
              "ada": ["training.ada_target=0.6", "training.ada_below_images=0"]}
WARMUP = 0.25  # of the steps: ADA's p needs this long to rise from 0 where D is overconfident


def homogan(*argv: str) -> None:
    result = subprocess.run([sys.executable, "-m", "homogan", *argv], cwd=REPO)
    if result.returncode:
        raise SystemExit(f"python -m homogan {' '.join(argv)}: exit {result.returncode}")


def write_folder(overrides: list[str], out: Path) -> list[str]:
    """The selection of the config (``data.limit`` ignored) as ``out/<class>/<n>.png``, one class per
    combination of ``data.attributes``; returns the overrides that train on it."""
    import imageio.v3 as iio
    import numpy as np

    from homogan.config import load_config
    from homogan.data import pipeline, sources
    from homogan.data.cache import seeded_config

    config = load_config(REPO / "config.json", overrides)
    names = config.data.attributes
    done = out / "complete"
    if not done.is_file():
        cfg = seeded_config(config, limit=None)
        source = sources.open_source(cfg)
        count = 0
        for x, y in pipeline.decoded_images(cfg, source).as_numpy_iterator():
            label = "_".join(f"{n}{int(v > 0.5)}" for n, v in zip(names, y))
            path = out / label / f"{count:06d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            iio.imwrite(path, np.asarray(x, np.uint8))
            count += 1
        done.write_text(f"{count}\n")
        print(f"wrote {count} images in {len(list(out.iterdir())) - 1} class folders to {out}", flush=True)
    return folder_overrides(out)


def folder_overrides(root: Path) -> list[str]:
    """The overrides that train the shipped config on the class-per-folder tree at ``root``."""
    return ["data.source=folder", f"data.root={root}", "data.class_conditional=true", "data.attributes=[]",
            "data.filters={}", "data.balance=null"]


def history(run: Path) -> list[dict]:
    with open(run / "history.csv", newline="") as f:
        return [{k: float(v) if v not in ("", None) else None for k, v in row.items()} for row in csv.DictReader(f)]


def row(limit: int, name: str, run: Path, seconds: float) -> str:
    rows = history(run)
    after = [r for r in rows if r["epoch"] > WARMUP * len(rows)] or rows
    metrics = json.loads((run / "metrics.json").read_text())
    m = metrics.get("latest", metrics)
    control = [v for k, v in m.items() if k.startswith("attribute_accuracy_") and isinstance(v, (int, float))
               and not k.startswith("attribute_accuracy_real")]
    worst = min(control, default=float("nan"))
    mean = sum(control) / len(control) if control else float("nan")
    last = rows[-1]
    fmt = lambda v, f="{:.3f}": "–" if v is None else f.format(v)  # noqa: E731
    return (f"| {limit:,} | {name} | {fmt(max(r['d_acc_real'] for r in after))} | {fmt(last['d_acc_real'])} | "
            f"{fmt(last.get('ada_rt'))} | {fmt(last.get('ada_p'))} | {fmt(last.get('d_acc_unseen'))} | "
            f"{fmt(last.get('ada_rv'))} | {fmt(m.get('fid'), '{:.1f}')} | "
            f"{fmt(m.get('kid'), '{:.2f}')} | {fmt(m.get('precision'))} | {fmt(m.get('recall'))} | "
            f"{fmt(m.get('spread'), '{:.2f}')} | {fmt(mean)} | {fmt(worst)} | "
            f"{seconds:.0f} |")


def planned_runs(args: argparse.Namespace, layout: list[str], batch: int) -> list[tuple[int, str, str, list[str]]]:
    """(limit, contender, label, the ``--set`` overrides of its ``homogan train``) for every run, in order: equal
    steps for all, rounded up to whole passes over the ``limit`` images, grids and checkpoints at about 12 of those
    epochs."""
    runs = []
    for limit in args.limits:
        for name in args.contenders.split(","):
            label = f"{args.layout}-{limit}-{name}"
            epochs = -(-args.steps // (limit // batch))
            every = max(1, round(epochs / 12))
            sets = [*layout, *args.overrides, f"data.limit={limit}", "training.steps_per_epoch=null",
                    f"training.epochs={epochs}",
                    f"logging.samples_every_epochs={every}", f"logging.checkpoint_every_epochs={every}",
                    *([f"evaluation.every_epochs={max(1, round(epochs / args.evals))}", "evaluation.reference=unlimited"]
                      if args.evals else ["evaluation.every_epochs=0"]),
                    f"experiment.output_dir={args.dir}", f"experiment.name={label}",
                    *CONTENDERS[name]]
            runs.append((limit, name, label, sets))
    return runs


def train_argv(sets: list[str]) -> list[str]:
    """The arguments after ``python -m homogan`` that train one run: what ``--dry-run`` prints is what runs."""
    return ["train", *[a for s in sets for a in ("--set", s)]]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--limits", type=int, nargs="+", default=[1000, 2000])
    parser.add_argument("--contenders", default="no_ada,ada",
                        help=f"comma-separated, of {', '.join(CONTENDERS)} (default: no_ada,ada)")
    parser.add_argument("--steps", type=int, default=12000, help="training steps of every run (default 12000)")
    parser.add_argument("--evals", type=int, default=0,
                        help="in-training evaluations per run, for the FID/recall trend (default 0: only the final one)")
    parser.add_argument("--layout", choices=("celeba", "folder"), default="celeba")
    parser.add_argument("--folder", type=Path, help="an existing class-per-folder tree to train on (skips --layout)")
    parser.add_argument("--dir", type=Path, default=REPO / "runs" / "bench_small_data")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--dry-run", action="store_true",
                        help="validate every run's configuration, print its train command, run nothing")
    args = parser.parse_args(argv)
    unknown = [c for c in args.contenders.split(",") if c not in CONTENDERS]
    if unknown:
        parser.error(f"--contenders: unknown {unknown}; allowed: {', '.join(CONTENDERS)}")

    from homogan.config import load_config
    from homogan.errors import ConfigError

    args.dir = args.dir.resolve()
    if args.folder:
        args.layout = args.folder.name
        layout = folder_overrides(args.folder.resolve())
    elif args.layout == "folder":
        layout = folder_overrides(args.dir / "folder")
    else:
        layout = []
    try:
        batch = load_config(REPO / "config.json", args.overrides).training.batch_size
        if min(args.limits) < batch:
            parser.error(f"--limits: {min(args.limits)} images is less than one batch (training.batch_size={batch})")
        runs = planned_runs(args, layout, batch)
        for *_, sets in runs:
            load_config(REPO / "config.json", sets)
    except ConfigError as e:
        parser.error(str(e))
    if args.dry_run:
        if args.layout == "folder" and not args.folder:
            print(f"first: the selection written as a class-per-folder tree in {args.dir / 'folder'}")
        for *_, label, sets in runs:
            command = shlex.join(["python", "-m", "homogan", *train_argv(sets)])
            print(f"{label}: {command}")
        return

    from homogan import device

    for line in device.describe(device.read_facts()):
        print(line)
    if args.layout == "folder" and not args.folder:
        write_folder(args.overrides, args.dir / "folder")
    print(f"\nshipped config.json + {' '.join(args.overrides + layout) or 'nothing'}; {args.steps} steps of {batch} "
          f"each; FID/KID/precision/recall against evaluation.reference=unlimited\n", flush=True)
    table = ["| images | contender | D acc real, max after warm-up | D acc real, last | r_t, last | p, last | "
             "D acc unseen, last | r_v, last | FID | KID ×1e3 | precision | recall | spread | mean attribute | "
             "worst attribute | seconds |",
             "|" + "---|" * 16]
    trends = []
    for limit, name, label, sets in runs:
        per_epoch = limit // batch  # steps
        started = time.perf_counter()
        homogan(*train_argv(sets))
        seconds = time.perf_counter() - started
        run = sorted(args.dir.glob(f"{label}-*"))[-1]
        homogan("evaluate", str(run), "--set", "evaluation.reference=unlimited")
        table.append(row(limit, name, run, seconds))
        if args.evals:
            trend = [(r["epoch"] * per_epoch, r.get("fid"), r.get("recall")) for r in history(run)
                     if r.get("fid") is not None]
            trends.append(f"{label}: " + ", ".join(f"{int(st):,} steps FID {f:.1f} R {r:.3f}" for st, f, r in trend))
            print(trends[-1], flush=True)
        print("\n".join(table), flush=True)
    print("\n".join(["", *table, *([""] + trends if trends else [])]))


if __name__ == "__main__":
    main()
