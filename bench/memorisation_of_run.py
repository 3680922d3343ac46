"""Has a trained run's discriminator memorised its training images? D's scores of them, of real images it never
trained on (what ``data.limit`` left out) and of G's fakes, from the run's latest checkpoint.

Usage: python bench/memorisation_of_run.py RUN_DIR_OR_FOLDER [...] [--images 992]

A folder that is not a run folder stands for every run folder in it (a bench's ``--dir``).

The rule of the runs' own per-epoch measurement (:class:`homogan.callbacks.Memorisation`, ``logging.memorisation_images``)
with more images: D and G in training mode at the run's batch size, in float32, on ``--images`` training images,
as many unseen ones and as many fakes. For runs that trained before that measurement existed, and for a closer
look at the last checkpoint. Prints, per run, the share of each set D calls real, its mean logit, and ADA's r_v
(0: unseen images score like training images; 1: like fakes).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def measure(run: Path, images: int) -> str:
    import tensorflow as tf

    from homogan import checkpoints
    from homogan.config import load_config
    from homogan.data import sources
    from homogan.train import build_gan, memorisation_callback, with_precision

    config = load_config(run / "config.json", [f"logging.memorisation_images={images}"], written_out=True)
    data = sources.training_data(config, sources.open_source(config))
    callback = memorisation_callback(config, data)
    if callback is None:
        return f"{run}: no images left out of training (data.limit is null or covers the selection)"
    gan = build_gan(with_precision(config, "float32"), len(data.label_names))
    path = checkpoints.latest(run / "checkpoints")
    tf.train.Checkpoint(**checkpoints.network_weights(gan.generator, gan.discriminator)).read(str(path)).expect_partial()
    callback.set_model(gan)
    m = callback.measure()
    count = len(callback.z)
    acc = (f"D calls real {m['d_acc_seen']:.3f} of {count} training images and {m['d_acc_unseen']:.3f} of {count} "
           f"unseen ones; " if "d_acc_seen" in m else "")
    return f"{run.name} ({path.name}): {acc}r_v {m['ada_rv']:.3f}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("runs", nargs="+", type=Path, help="run folders, or folders of run folders")
    parser.add_argument("--images", type=int, default=992, help="images of each set (default: 992)")
    args = parser.parse_args(argv)
    runs = [r for given in args.runs
            for r in ([given] if (given / "config.json").is_file() else sorted(given.glob("*/config.json")))]
    if not runs:
        parser.error(f"no run folder (one with config.json) in {' '.join(map(str, args.runs))}")
    for run in runs:
        run = run.parent if run.name == "config.json" else run
        print(measure(run.resolve(), args.images), flush=True)


if __name__ == "__main__":
    main()
