"""Command line: ``python -m homogan COMMAND`` (and ``python main.py`` = ``train``).

Bad input of any kind ends as one line on stderr and exit code 2, with no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from homogan.errors import UserError

DEFAULT_CONFIG = "config.json"


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def add_config_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, metavar="PATH",
                   help=f"config file (default: {DEFAULT_CONFIG} in the current folder if present, else built-in defaults)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                   help="override one config value, parsed as JSON where possible "
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
        config = load_config(args.config or run.config, args.overrides)
    else:
        config = resolve_config(args)
    result = train(config, resume=args.resume, force=args.force)
    return 3 if result.stopped else 0


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
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `python -m homogan config | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
