"""Measure the input pipeline against the training step: raw JPEGs vs prepared shards, at 64 and 128 px.

Usage: python bench/bench_pipeline.py [--data CELEBA_DIR] [--num-images 5000] [--sizes 64 128]
                                      [--train-steps 20] [--config config.json] [--dir DIR]

For every size it measures, in one process:

* **raw JPEGs**: one first epoch of ``pipeline.make_dataset`` with ``data.prepared: "off"`` (read + decode + crop
  + resize + shuffle + batch, as uint8: the scaling to [-1, 1] is part of the train step; nothing cached yet),
  in images/s;
* **prepare**: ``homogan.data.prepared.prepare`` on the same selection, reported as seconds per 10,000 images;
* **prepared shards**: the same first epoch, now read from the shards (``data.prepared: "auto"``);
* **train step**: images/s the default model's train step consumes at that size (the model and update rules of
  ``--config``, default ``config.json`` if present, else the built-in defaults), on one fixed in-memory batch after
  a short warm-up, so the input pipeline is not part of it;
* the ratios input/train-step (the issue's targets: prepared ≥ 3,000 img/s at 128 px and ≥ 10× the train step;
  raw first epoch not slower than the train step).

Without ``--data`` it draws ``--num-images`` synthetic faces (CelebA layout, all used: split "all") into a temporary
folder inside ``--dir`` (default: the repository, the file system ``data/synthetic`` lives on), deleted afterwards.
The JPEGs were just written, so they are read from the page cache: the raw figure is decode-bound, not disk-bound.
The load average is printed before and after: other processes on the machine depress every figure.
"""

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from homogan.config import load_config  # noqa: E402
from homogan.data import prepared, sources  # noqa: E402
from homogan.runtime import import_tensorflow  # noqa: E402


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" on {os.cpu_count()} CPUs"


def with_data(config, **changes):
    return replace(config, data=replace(config.data, **changes))


def cpu_seconds() -> float:
    """CPU time of this process, all threads: unlike wall time, hardly affected by other processes' load."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def epoch_speed(config) -> tuple[float, int, float, float]:
    """(images/s, images, seconds, CPU seconds per image) of one first epoch of the training input pipeline,
    iterator creation included."""
    from homogan.data import pipeline

    source = sources.open_source(config)
    data = sources.training_data(config, source)
    cpu, started = cpu_seconds(), time.perf_counter()
    n = 0
    for images, _ in pipeline.make_dataset(config, data, 0, 1):
        n += int(images.shape[0])
    seconds = time.perf_counter() - started
    return n / seconds, n, seconds, (cpu_seconds() - cpu) / n


def train_step_speed(config, steps: int, warmup: int) -> tuple[float, float]:
    """(images/s, CPU seconds per image) consumed by the GAN's train step (built as homogan.train builds it) on
    one fixed batch."""
    import keras

    from homogan import device, precision
    from homogan.data import pipeline
    from homogan.train import ada_decision, build_gan, with_precision

    tf = import_tensorflow()
    source = sources.open_source(config)
    data = sources.training_data(config, source)
    keras.utils.set_random_seed(config.experiment.seed)
    resolved = precision.resolve(config.training.precision, device.read_facts())  # "auto", as training resolves it
    ada = ada_decision(config, data.num_images)[0]  # and ADA, as training decides it for this data
    gan = build_gan(with_precision(config, resolved.precision), len(data.label_names), ada=ada)
    batch = next(iter(pipeline.make_dataset(config, data, 0, 1)))
    fixed = tf.data.Dataset.from_tensors(batch).repeat()
    gan.fit(fixed, epochs=1, steps_per_epoch=warmup, verbose=0, shuffle=False)  # trace + first steps
    cpu, started = cpu_seconds(), time.perf_counter()
    gan.fit(fixed, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
    n = steps * data.batch_size
    return n / (time.perf_counter() - started), (cpu_seconds() - cpu) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a CelebA-layout folder (default: draw synthetic faces)")
    parser.add_argument("--num-images", type=int, default=5000, help="synthetic faces to draw (default 5000)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--batch-size", type=int, help="default: the config's training.batch_size")
    parser.add_argument("--train-steps", type=int, default=20, help="timed train steps per size (default 20)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed train steps first (default 3)")
    parser.add_argument("--config", default=str(REPO / "config.json"),
                        help="the default model's config (default: config.json, else built-in defaults)")
    parser.add_argument("--dir", type=Path, default=REPO, help="where the temporary data and shards go")
    args = parser.parse_args()

    from homogan import device

    for line in device.describe(device.read_facts()):
        print(line)
    print(f"start: {load()}", flush=True)
    import_tensorflow()
    work = Path(tempfile.mkdtemp(prefix=".bench-pipeline-", dir=args.dir))
    try:
        if args.data is None:
            from homogan.data import synthetic

            started = time.perf_counter()
            synthetic.generate(work / "data", args.num_images, sources.SYNTHETIC_SEED, progress=False)
            print(f"drew {args.num_images} synthetic faces in {time.perf_counter() - started:.1f} s", flush=True)
            data_sets = ["data.source=synthetic", f"data.root={work / 'data'}",
                         f"data.synthetic_images={args.num_images}"]
        else:
            data_sets = ["data.source=celeba", f"data.root={args.data.resolve()}"]
        config_path = args.config if Path(args.config).is_file() else None
        base = load_config(config_path, data_sets + [
            "data.split=all", "data.filters={}", "data.balance=null", "data.limit=null",
            "training.steps_per_epoch=null", "training.epochs=1", f"evaluation.cache_dir={work / 'cache'}",
            "logging.progress=none"] + ([f"training.batch_size={args.batch_size}"] if args.batch_size else []))
        rows = []
        for size in args.sizes:
            config = with_data(base, image_size=size)
            raw, n, raw_s, raw_cpu = epoch_speed(with_data(config, prepared="off"))
            print(f"{size}px raw JPEGs: {n} images in {raw_s:.1f} s", flush=True)
            folder, manifest, _ = prepared.prepare(config, echo=lambda *a: None)
            per_10k = manifest["seconds"] / manifest["count"] * 10_000
            print(f"{size}px prepare: {manifest['count']} images in {manifest['seconds']:.1f} s "
                  f"({len(manifest['shards'])} shards)", flush=True)
            assert prepared.find(config, sources.open_source(config)) is not None
            shards, n, shards_s, shards_cpu = epoch_speed(config)
            print(f"{size}px prepared shards: {n} images in {shards_s:.2f} s", flush=True)
            try:
                step, step_cpu = train_step_speed(config, args.train_steps, args.warmup)
            except Exception as e:  # the GAN is being changed elsewhere: report, do not hide the pipeline figures
                print(f"{size}px train step: failed ({type(e).__name__}: {e})", flush=True)
                step = step_cpu = float("nan")
            print(f"{size}px train step: {step:.0f} img/s ({load()})", flush=True)
            rows.append((size, raw, shards, step, per_10k, raw_cpu, shards_cpu, step_cpu))
            shutil.rmtree(folder)
        print()
        print(f"images: {n} per epoch ({'synthetic' if args.data is None else args.data}), batch {base.training.batch_size}, "
              f"model of {config_path or 'built-in defaults'}; {load()} at the end")
        print("wall-clock img/s, and in brackets CPU ms per image (all threads; 1000 / it = img/s per busy core)")
        print("| size | raw JPEGs, 1st epoch | prepared shards, 1st epoch | train step | shards / step "
              "| raw / step | prepare (s per 10k images) |")
        print("|---|---|---|---|---|---|---|")
        for size, raw, shards, step, per_10k, raw_cpu, shards_cpu, step_cpu in rows:
            print(f"| {size} px | {raw:,.0f} ({1e3 * raw_cpu:.2f}) | {shards:,.0f} ({1e3 * shards_cpu:.2f}) "
                  f"| {step:,.0f} ({1e3 * step_cpu:.1f}) | {shards / step:.1f}× | {raw / step:.1f}× "
                  f"| {per_10k:.1f} |")
        print()
        for size, raw, shards, step, *_ in rows:
            checks = [(f"prepared ≥ 10× train step ({shards / step:.1f}×)", shards >= 10 * step),
                      (f"raw 1st epoch ≥ train step ({raw / step:.1f}×)", raw >= step)]
            if size == 128:
                checks.insert(0, (f"prepared ≥ 3,000 img/s ({shards:,.0f})", shards >= 3000))
            print(f"{size} px: " + "; ".join(f"{'met' if ok else 'MISSED'}: {text}" for text, ok in checks))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
