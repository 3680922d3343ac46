"""Command line: ``python -m homogan COMMAND`` (and ``python main.py`` = ``train``).

Bad input of any kind ends as one line on stderr and exit code 2, with no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from homogan.errors import UserError, WriteError

DEFAULT_CONFIG = "config.json"


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def add_set_argument(p: argparse.ArgumentParser, help: str, metavar: str = "KEY.PATH=VALUE") -> None:
    """The repeatable ``--set KEY.PATH=VALUE`` override, collected into ``args.overrides``."""
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar=metavar, help=help)


def add_config_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, metavar="PATH",
                   help=f"config file (default: {DEFAULT_CONFIG} in the current folder if present, else built-in defaults)")
    add_set_argument(p, "override one config value, parsed as JSON where possible "
                        "(e.g. --set training.epochs=2 --set data.attributes='[\"Bald\"]'); repeatable")


def resolve_config(args):
    from homogan.config import load_config

    path = args.config
    if path is None and Path(DEFAULT_CONFIG).is_file():
        path = DEFAULT_CONFIG
    return load_config(path, args.overrides)


def cmd_train(args) -> int:
    from homogan.train import train

    if args.resume:
        from homogan.config import load_config
        from homogan.experiment import open_run_dir

        run = open_run_dir(args.resume)
        own = args.config is None or Path(args.config).resolve() == run.config.resolve()  # the run's config.json
        config = load_config(args.config or run.config, args.overrides, written_out=own)
    else:
        config = resolve_config(args)
    return exit_code(train(config, resume=args.resume, force=args.force))


def exit_code(result) -> int:
    """0 done; 3 stopped by a non-finite loss; 4 a file could not be written (full disk, I/O error);
    128 + signal number when SIGINT/SIGTERM stopped it (saved)."""
    if result.interrupted:
        return 128 + result.interrupted
    if result.write_failed:
        return 4
    return 3 if result.stopped else 0


def cmd_freeze(args) -> int:
    from homogan.freeze import freeze

    folder = freeze(args.source, args.name, args.experiments_dir, args.parent, args.notes or "", tuple(args.overrides),
                    echo=print)
    print(f"froze {folder}: re-run with `python {folder}/main.py`")
    return 0


def cmd_sweep(args) -> int:
    from homogan.sweep import sweep

    _, stopped = sweep(args.base, args.overrides, args.prefix, args.experiments_dir, dry_run=args.dry_run)
    return 0 if stopped is None else exit_code(stopped)


def cmd_reproduce(args) -> int:
    from homogan.reproduce import reproduce

    return 0 if reproduce(args.experiment_dir, epochs=args.epochs, tolerance=args.tolerance).reproduced else 1


def cmd_run_experiment(args) -> int:
    from homogan.config import load_config
    from homogan.errors import DataError
    from homogan.freeze import load_frozen, results_dir
    from homogan.train import train

    folder = Path(args.experiment_dir).resolve()
    frozen = load_frozen(folder)
    config = load_config(folder / "config.json", args.overrides, written_out=True)
    os.chdir(folder.parents[1])  # relative data paths mean the same as from the project root
    out, resume = results_dir(folder, args.overwrite)
    if resume:
        print(f"{out.name} is unfinished: resuming it (use --overwrite to start again)")
    try:
        result = train(config, resume=out if resume else None, run_dir=None if resume else out)
    except DataError as e:
        if frozen.data.source == "celeba" and config.data.source == "celeba":
            raise DataError(f"{e} — {folder.name} needs a local CelebA copy (see README); smoke-run it offline "
                            f"with --set data.source=synthetic --set data.root=data/synthetic") from None
        raise
    return exit_code(result)


def cmd_prepare(args) -> int:
    from homogan.data import prepared

    config = resolve_config(args)
    folder, manifest, fresh = prepared.prepare(config, echo=print)
    if not fresh:
        print(f"already prepared: {prepared.describe(folder, manifest)}; nothing to do")
        return 0
    print(f"prepared {manifest['count']} images ({'x'.join(map(str, manifest['image_shape']))} uint8, "
          f"{len(manifest['label_names'])} labels) in {manifest['seconds']:.1f} s "
          f"({manifest['images_per_second']:.0f} images/s) into {folder}")
    if config.data.prepared == "off":
        print("note: data.prepared is \"off\", so training will still decode the images")
    return 0


def cmd_report(args) -> int:
    from homogan.report import build

    paths = args.folders
    if not paths:
        root = Path("experiments")
        paths = sorted(str(p) for p in root.iterdir() if (p / "config.json").is_file()) if root.is_dir() else []
    html_path, md_path = build(paths, args.out, sort=args.sort)
    print(f"wrote {html_path} and {md_path} ({len(paths)} experiments); open {html_path} in a browser")
    return 0


def cmd_gif(args) -> int:
    from homogan.experiment import open_run_dir
    from homogan.visualize import make_gif

    run = open_run_dir(args.run_dir)
    frames = run.frames()[:: args.every]
    if not frames:
        raise UserError(f"{args.run_dir}: no sample grids in {run.samples}")
    if run.frames()[-1] not in frames:
        frames.append(run.frames()[-1])
    out = make_gif(frames, Path(args.out) if args.out else run.gif, args.fps)
    print(f"wrote {out} ({len(frames)} frames)")
    return 0


def cmd_plot(args) -> int:
    from homogan.experiment import open_run_dir
    from homogan.visualize import plot_history, read_history

    run = open_run_dir(args.run_dir)
    rows = read_history(run.history)
    if not rows:
        raise UserError(f"{args.run_dir}: no history.csv rows to plot")
    for path in plot_history(rows, run.path):
        print(f"wrote {path}")
    return 0


def cmd_train_classifier(args) -> int:
    from homogan import classifier

    config = resolve_config(args)
    clf = classifier.ensure(config, echo=print, retrain=args.retrain)
    if clf is None:
        raise UserError(f"data.root: {config.data.root!r} has no labels to train an attribute classifier on (a folder "
                        f"without class subfolders); FID/KID fall back to InceptionV3 or a random CNN's features")
    if not clf.fresh:
        print("reusing the cached classifier (pass --retrain to train it again)")
    for line in classifier.format_accuracy(clf):
        print(line)
    return 0


def cmd_evaluate(args) -> int:
    from homogan.evaluation import evaluate_run, format_report

    metrics = evaluate_run(args.run_dir, per_combination=args.n, num_samples=args.num_samples,
                           overrides=tuple(args.overrides), seed=args.seed, checkpoint=args.checkpoint)
    ev = metrics["evaluated"]
    print(f"{args.run_dir}: epoch {ev['epoch']} ({ev['checkpoint']}, {ev['generator']})")
    for line in format_report(metrics):
        print(line)
    print(f"wrote {metrics['written']}")
    return 0


def cmd_generate(args) -> int:
    from homogan.generate import generate

    paths = generate(args.run_dir, n=args.n, attributes=args.attributes, seed=args.seed, out=args.out,
                     separate=args.separate, interpolate=args.interpolate, sweep=args.sweep, steps=args.steps,
                     unspecified=args.unspecified, checkpoint=args.checkpoint)
    if args.separate:
        print(f"wrote {len(paths)} images into {paths[0].parent}")
    else:
        for path in paths:
            print(f"wrote {path}")
    return 0


def cmd_doctor(args) -> int:
    from homogan.doctor import run_doctor

    run_doctor(resolve_config(args), steps=args.steps, rounds=args.rounds)
    return 0


def cmd_export(args) -> int:
    from homogan.export import export

    export(args.run_dir, checkpoint=args.checkpoint, out=args.out, formats=args.formats, overwrite=args.overwrite,
           tflite_float16=args.tflite_float16)
    return 0


def markdown_key_table() -> str:
    from homogan.config import describe

    lines = ["| key | default | allowed | meaning |", "|---|---|---|---|"]
    for key, default, allowed, doc in describe():
        lines.append(f"| `{key}` | `{default}` | {allowed} | {doc} |".replace("|`", "| `"))
    return "\n".join(lines)


def cmd_config(args) -> int:
    import json

    if args.keys:
        print(markdown_key_table())
        return 0
    print(json.dumps(resolve_config(args).to_dict(), indent=2))
    return 0


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m homogan", description="Train, inspect and compare face GANs.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a GAN from a config (what `python main.py` runs)",
                       description="Train a GAN; every run gets a new folder under experiment.output_dir.")
    add_config_arguments(p)
    p.add_argument("--resume", metavar="RUN_DIR", help="continue this run folder from its last checkpoint")
    p.add_argument("--force", action="store_true", help="with --resume: accept a config that differs from the run's")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("freeze", help="freeze a run folder or config as experiments/NAME/",
                       description="Create experiments/NAME/ with the frozen config.json, a main.py that re-runs "
                                   "it, and a README.md with the computed diff versus --parent and the hyperparameters.")
    p.add_argument("source", metavar="RUN_DIR|CONFIG")
    p.add_argument("--name", required=True, help="experiment name, e.g. Experiment17")
    p.add_argument("--parent", help="the experiment this one changes (its diff goes in the README)")
    p.add_argument("--notes", help="why this experiment exists (goes into the README)")
    p.add_argument("--experiments-dir", default="experiments", help="where experiments live (default: experiments)")
    add_set_argument(p, "change a value before freezing; repeatable")
    p.set_defaults(func=cmd_freeze)

    p = sub.add_parser("run-experiment", help="re-run a frozen experiment (what its main.py calls)",
                       description="Train a frozen experiment; results go to EXPERIMENT_DIR/results/ (then results-2/, ...). "
                                   "An unfinished results folder is resumed.")
    p.add_argument("experiment_dir", metavar="EXPERIMENT_DIR")
    add_set_argument(p, "override a value for this run only (e.g. a smoke run on synthetic data); repeatable")
    p.add_argument("--overwrite", action="store_true", help="replace results/ instead of writing results-N/")
    p.set_defaults(func=cmd_run_experiment)

    p = sub.add_parser("sweep", help="freeze, train and report one experiment per combination of values",
                       description="Freeze one experiment per combination of the --set lists (e.g. --set "
                                   "training.d_steps=1,3,5 --set training.d_optimizer.learning_rate=1e-4,2e-4), train "
                                   "them one after the other into their results/ folders, and write "
                                   "<experiments-dir>/<prefix>_report.html. Started again, it skips what is trained, "
                                   "resumes what is unfinished and goes on. --dry-run lists what it would create.")
    p.add_argument("base", metavar="BASE", help="a frozen experiment (then the parent of every member), a run folder or "
                                                "a config file")
    add_set_argument(p, "a key and its values, comma-separated (JSON where possible; commas inside [] or {} do not "
                        "split); repeatable: the sweep is every combination", metavar="KEY.PATH=V1,V2,…")
    p.add_argument("--prefix", required=True, help="the members' name prefix, e.g. Ratio → Ratio_d_steps3")
    p.add_argument("--experiments-dir", default="experiments", help="where the members go (default: experiments)")
    p.add_argument("--dry-run", action="store_true", help="list the members and their state; write nothing")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("reproduce", help="re-run a frozen experiment and check it against its recorded result",
                       description="Train EXPERIMENT_DIR again (all of it, or its first --epochs K) into a fresh "
                                   "results folder and compare with the record kept when it was frozen from a run: "
                                   "with the same code, device class and precision every logged value must be "
                                   "identical; otherwise the last compared epoch's values must agree within a "
                                   "tolerance per metric. Exit code 0 reproduced, 1 not, 2 bad input.")
    p.add_argument("experiment_dir", metavar="EXPERIMENT_DIR")
    p.add_argument("--epochs", type=positive_int, default=None, help="compare only the first K epochs (re-run K)")
    p.add_argument("--tolerance", metavar="METRIC=AMOUNT,...",
                   help="change allowed differences, e.g. fid=0.1,recall=0.05 (fid is relative, recall absolute; "
                        "see python -m homogan reproduce --help and the README)")
    p.set_defaults(func=cmd_reproduce)

    p = sub.add_parser("prepare", help="decode, crop and resize the configured data once into shards training reads",
                       description="Decode the selected images of the configured data (data.source, root, split, "
                                   "filters, balance, limit, attributes) once with the training pipeline's own "
                                   "decode, centre crop and resize, and write them as raw uint8 .npy shards with "
                                   "their labels and a manifest.json into <evaluation.cache_dir or "
                                   "data.root/.homogan>/prepared/<key>/ (written to a temporary folder, renamed when "
                                   "complete). Training with data.prepared \"auto\" then reads these shards in "
                                   "parallel instead of decoding, with the same images in the same per-epoch order. "
                                   "The key covers the data, selection, seed-dependent order, crop, size and "
                                   "channels: run prepare again after changing any of them (a second run with the "
                                   "same config does nothing).")
    add_config_arguments(p)
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("report", help="compare experiments or runs side by side (HTML + Markdown)",
                       description="Write one HTML page (and a Markdown twin beside it) laying experiments side by "
                                   "side: changes versus the parent, differing settings, metrics, plots, grids, GIFs.")
    p.add_argument("folders", nargs="*", metavar="FOLDER",
                   help="experiment folders or run folders (default: every folder in experiments/)")
    p.add_argument("--out", default="report.html", help="output HTML file (default report.html); the .md twin goes beside it")
    p.add_argument("--sort", default="auto", help="rank the summary by the best value of this metric: fid, kid, precision, "
                                                "recall, attribute_accuracy (default: fid when any experiment has it)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("config", help="print the resolved config (or the table of every key)",
                       description="Validate a config with its --set overrides and print it resolved, "
                                   "with every default filled in; --keys prints the documentation table.")
    add_config_arguments(p)
    p.add_argument("--keys", action="store_true", help="print every key's default, allowed values and meaning (Markdown)")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("gif", help="build the progress GIF of a run from its sample grids",
                       description="Build progress.gif from RUN_DIR/samples/epoch_*.png.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--fps", type=positive_float, default=4.0, help="frames per second (default 4)")
    p.add_argument("--every", type=positive_int, default=1, help="use every K-th grid (the last is always kept)")
    p.add_argument("--out", metavar="FILE", help="output file (default RUN_DIR/progress.gif)")
    p.set_defaults(func=cmd_gif)

    p = sub.add_parser("plot", help="redraw a run's loss and accuracy plots from history.csv",
                       description="Redraw RUN_DIR/losses.png and accuracy.png from RUN_DIR/history.csv.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("train-classifier", help="train (or show) the attribute classifier for a config's data",
                       description="Train a small CNN on the real training images of the configured data (one sigmoid "
                                   "per attribute, or a softmax over class folders) and report its accuracy per "
                                   "attribute on held-out real images. It is cached under evaluation.cache_dir "
                                   "(default <data.root>/.homogan/classifiers/<key>/) and reused by evaluate, the "
                                   "training-time evaluation and the benchmark.")
    add_config_arguments(p)
    p.add_argument("--retrain", action="store_true", help="train again even when a cached classifier exists")
    p.set_defaults(func=cmd_train_classifier)

    p = sub.add_parser("evaluate", help="FID, KID, precision/recall and attribute-control accuracy of a run",
                       description="Load RUN_DIR's config and latest checkpoint (the EMA generator when the run has "
                                   "one), generate N images for every combination of the conditioning attributes "
                                   "(every class) and report how often the attribute classifier sees the requested "
                                   "value beside its real-image accuracy; then FID, KID and precision/recall against "
                                   "the cached real statistics. Merged into RUN_DIR/metrics.json.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--n", type=positive_int, default=None,
                   help="images per attribute combination (default: evaluation.per_combination)")
    p.add_argument("--num-samples", type=positive_int, default=None,
                   help="generated images for FID/KID/precision/recall (default: evaluation.num_samples)")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent vectors and sampled labels (default 0)")
    p.add_argument("--checkpoint", choices=("latest", "best"), default="latest",
                   help="which checkpoint: the latest, or checkpoints/best kept by the training-time evaluation")
    add_set_argument(p, "override an evaluation.* key for this evaluation (e.g. --set evaluation.feature_extractor="
                        "classifier); repeatable", metavar="evaluation.KEY=VALUE")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("generate", help="images from a trained run: grid, single files, latent walk, attribute sweep",
                       description="Generate from RUN_DIR's latest checkpoint (EMA weights when the run has them). "
                                   "Default: a PNG grid of N images in RUN_DIR/generated/. Attributes not given with "
                                   "--attributes follow the training data (--unspecified data: the attribute vector "
                                   "of a random training image with the requested values) or are 0 "
                                   "(--unspecified zero).")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--n", type=positive_int, default=64, help="how many images (default 64; --sweep: latent vectors)")
    p.add_argument("--attributes", metavar="NAME=0|1,...",
                   help="fix conditioning attributes, e.g. Eyeglasses=1,Bald=0 (class runs: CLASS=1)")
    p.add_argument("--seed", type=int, default=None, help="seed of the latent vectors (default: the run's experiment.seed)")
    p.add_argument("--out", metavar="PATH", help="output file (--separate: folder; --interpolate: the strip, the GIF "
                                                  "goes beside it)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--separate", action="store_true", help="one PNG per image into a folder instead of a grid")
    mode.add_argument("--interpolate", action="store_true",
                      help="a latent walk from seed S to seed S+1 (spherical), as a strip PNG and a GIF")
    mode.add_argument("--sweep", metavar="ATTRIBUTE",
                      help="the same latent vectors with ATTRIBUTE off and on, row above row (class runs: "
                           "--sweep class shows every class)")
    p.add_argument("--steps", type=positive_int, default=10, help="--interpolate: number of images (default 10)")
    p.add_argument("--unspecified", choices=("data", "zero"), default="data",
                   help="attributes not given: drawn from the training data (default) or 0")
    p.add_argument("--checkpoint", choices=("latest", "best"), default="latest",
                   help="which checkpoint: the latest, or checkpoints/best kept by the training-time evaluation")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("export", help="write a run's generator as a SavedModel, a .keras archive and TFLite",
                       description="Export RUN_DIR's generator (EMA weights when the run has them) so that it runs "
                                   "without homogan: saved_model/ (signatures serving_default: z[, labels] → uint8 "
                                   "images, and sample: n, seed[, labels] → images), generator.keras, "
                                   "generator.tflite and export.json, into RUN_DIR/export/ unless --out says "
                                   "otherwise. Written to a temporary folder and renamed when complete.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--checkpoint", choices=("latest", "best"), default="latest",
                   help="which checkpoint: the latest, or checkpoints/best kept by the training-time evaluation")
    p.add_argument("--out", metavar="DIR", help="output folder (default RUN_DIR/export)")
    p.add_argument("--formats", default="savedmodel,keras,tflite",
                   help="comma-separated, of savedmodel, keras, tflite (default all three; tflite needs savedmodel, "
                        "which it then writes too)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    p.add_argument("--tflite-float16", action="store_true", help="store the TFLite weights as float16 (half the size)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("doctor", help="this machine's facts, and which precision and update mode train fastest here",
                       description="Print the device (CPU model and the flags that matter, GPUs and their compute "
                                   "capability, TensorFlow/Keras versions, threads), then time a few steps of the "
                                   "configured GAN's train step in every precision and update mode that applies "
                                   "here, and say which is fastest, what training.precision \"auto\" picks, and how "
                                   "the step as configured compares. About a minute on 2 CPU cores.")
    add_config_arguments(p)
    p.add_argument("--steps", type=positive_int, default=5, help="timed steps per contender per round (default 5)")
    p.add_argument("--rounds", type=positive_int, default=2, help="rounds, contenders in rotated order (default 2)")
    p.set_defaults(func=cmd_doctor)
    return parser


def main(argv: list[str] | None = None) -> int:
    _quiet_tensorflow()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except WriteError as e:  # the machine refused a write (full disk, I/O error): nothing half-written stays
        print(f"error: {e}", file=sys.stderr)
        return 4
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `python -m homogan config | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
