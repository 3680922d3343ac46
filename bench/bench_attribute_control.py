"""The bar: does a trained run draw the attributes it is asked for? Attribute-control accuracy of RUN_DIR.

Usage: python bench/bench_attribute_control.py RUN_DIR [--config config.json] [--set KEY=VALUE ...]
                                                [--n 200] [--num-samples 2000] [--seed 0]

1. Trains (or reuses from the cache) the attribute classifier on the data of the default config
   (``config.json``, plus any --set): a small CNN, one sigmoid per attribute, learnt on the real
   training-partition images and measured on the held-out ``valid`` + ``test`` images.
2. Loads RUN_DIR's latest checkpoint (EMA generator when the run has one), generates ``--n``
   images for every combination of the run's conditioning attributes, and prints per attribute
   how often the classifier sees the requested value beside the classifier's own balanced
   accuracy on real held-out images (the ceiling: a perfect generator scores about that).
3. Precision and recall (Kynkäänniemi et al. 2019, k = 3) — and FID/KID — in the classifier's
   penultimate feature space, of ``--num-samples`` generated images (labels drawn from the
   training labels) against the run's real training images.

Writes nothing into RUN_DIR (``python -m homogan evaluate`` does that). The image size and channels
of the classifier's data must match the run's.
"""

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from homogan.errors import UserError  # noqa: E402


def measure(args) -> list[str]:
    from homogan import classifier
    from homogan.config import load_config
    from homogan.evaluation import Evaluator, format_report
    from homogan.experiment import load_run

    started = time.perf_counter()
    config = load_config(args.config, args.overrides)
    clf = classifier.ensure(config, echo=print)
    if clf is None:
        raise UserError(f"{config.data.root}: no labels to train the attribute classifier on")
    run = load_run(args.run_dir, echo=print)
    rc = run.config
    if (rc.data.image_size, rc.data.channels) != (config.data.image_size, config.data.channels):
        raise UserError(f"{args.run_dir}: the run makes {rc.data.image_size}px images with {rc.data.channels} channels "
                        f"but the classifier's data is {config.data.image_size}px/{config.data.channels}; pass "
                        f"--set data.image_size={rc.data.image_size} (and the run's data) to match")
    missing = [n for n in run.label_names if n not in clf.names]
    if not run.label_names or missing:
        raise UserError(f"{args.run_dir}: the classifier cannot judge {missing or 'an unconditional run'}; it knows "
                        f"{', '.join(clf.names)}")
    # Precision/recall/FID in the classifier's feature space, whatever the run's config says.
    rc = replace(rc, evaluation=replace(rc.evaluation, feature_extractor="classifier", num_real=args.num_real))
    evaluator = Evaluator(rc, run.label_names, echo=print, classifier=clf)
    metrics = evaluator.evaluate(run.generator, num_samples=args.num_samples, per_combination=args.n, seed=args.seed)
    details = metrics.pop("details")
    info = clf.info
    lines = ["", f"== attribute control of {run.run.path} (epoch {run.epoch}, {run.generator_name}) =="]
    lines += format_report({**metrics, "evaluated": details})
    control = details["attribute_control"]
    lines += ["", "per requested value (how often the classifier agrees when the attribute is asked for as 1 / as 0):"]
    for name, a in control["attributes"].items():
        real = info["accuracy"][name]
        if clf.one_hot:
            lines.append(f"  {name:<14} {a['accuracy']:.3f}   (real: {real['accuracy']:.3f} of {real['n']} held-out images)")
            continue
        lines.append(f"  {name:<14} =1: {a['when_1']:.3f}   =0: {a['when_0']:.3f}   "
                     f"(real: accuracy {real['accuracy']:.3f}, balanced {real['balanced_accuracy']:.3f}, "
                     f"{real['positives']}/{real['n']} held-out images have it)")
    lines += ["", "how it was measured:",
              f"  classifier {clf.key}: {info['n_train']} real training images of {config.data.source} "
              f"{config.data.root} at {config.data.image_size}px, {config.evaluation.classifier_epochs} epochs, width "
              f"{config.evaluation.classifier_width}; accuracy on {info['n_heldout']} held-out images "
              f"({info['heldout']}); cached in {clf.folder}",
              f"  generated: {control['n_per_combination']} images x {control['combinations']} combinations of "
              f"{', '.join(run.label_names)} (z ~ N(0, I), seed {args.seed}), uint8-quantised in memory, "
              f"classified at threshold 0.5; 'generated' = balanced accuracy over requests",
              f"  precision/recall/FID/KID: {metrics['pr_n_fake']} generated images (labels drawn from the training "
              f"labels) vs {metrics['fid_n_real']} real training images, classifier penultimate features "
              f"({clf.feature_model.output.shape[-1]} dims), k={metrics['pr_k']}",
              f"  took {time.perf_counter() - started:.0f} s"]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", metavar="RUN_DIR")
    parser.add_argument("--config", default=str(REPO / "config.json"), help="config whose data trains the classifier")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE")
    parser.add_argument("--n", type=int, default=200, help="generated images per attribute combination (default 200)")
    parser.add_argument("--num-samples", type=int, default=2000, help="generated images for precision/recall")
    parser.add_argument("--num-real", type=int, default=5000, help="real images for precision/recall")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from homogan import device

    try:
        for line in device.describe(device.read_facts()):
            print(line)
        for line in measure(args):
            print(line)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
