"""Measure how fast ``homogan.data.synthetic.generate`` makes a dataset (render + JPEG + lists).

Usage: python bench/bench_synthetic.py [--num-images 2000] [--workers 2] [--dir DIR]

Prints wall-clock images/s, and the CPU time spent per image (if the machine is busy with other
work, wall-clock speed drops while CPU time per image stays about the same). The dataset goes to
a temporary folder, deleted afterwards, inside DIR: by default the repository folder, i.e. the
file system the real ``data/synthetic`` cache lives on (creating thousands of small files costs
very different amounts on different file systems, e.g. /tmp is much slower on some machines).
"""

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from homogan.data.synthetic import generate  # noqa: E402


def _cpu_seconds() -> float:
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-images", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dir", type=Path, default=REPO, help="where to put the temporary dataset")
    args = parser.parse_args()
    from homogan import device

    for line in device.describe(device.read_facts(accelerators=False)):
        print(line)
    with tempfile.TemporaryDirectory(prefix=".bench-synthetic-", dir=args.dir) as root:
        cpu, start = _cpu_seconds(), time.perf_counter()
        generate(root, args.num_images, args.seed, workers=args.workers, progress=False)
        seconds, cpu = time.perf_counter() - start, _cpu_seconds() - cpu
    print(f"synthetic: {args.num_images} images, {args.workers} workers: {seconds:.2f} s wall, "
          f"{args.num_images / seconds:.0f} images/s ({1000 * cpu / args.num_images:.2f} ms CPU per image)")


if __name__ == "__main__":
    main()
