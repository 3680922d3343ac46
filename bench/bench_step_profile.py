"""Where a train step spends its time, op type by op type: homogan's float32 DCGAN-64 step beside the plain-Keras
reference of bench_train_step.py, from a TensorFlow profiler trace.

    python bench/bench_step_profile.py                  # DCGAN-64, float32, simultaneous, 5 traced steps
    python bench/bench_step_profile.py --mode alternating --precision mixed_bfloat16

It prints the device block, then for each contender the kernel time per step summed over TensorFlow's
threads (so about twice the wall time on 2 cores) and the share of convolution and matmul kernels:
what bounds the step when that share is high is the convolutions themselves, not overhead.
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def arguments() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--precision", choices=("float32", "mixed_bfloat16"), default="float32")
    p.add_argument("--mode", choices=("alternating", "simultaneous"), default="simultaneous")
    p.add_argument("--steps", type=int, default=5, help="traced steps (after 3 untraced warm-up steps)")
    p.add_argument("--top", type=int, default=8, help="op types to list per contender")
    return p


def kernel_times(step, real, labels, steps: int) -> collections.Counter:
    """{op type: picoseconds} of the kernels run in ``steps`` calls of ``step``."""
    import numpy as np
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    for _ in range(3):
        np.asarray(step(real, labels))
    logdir = tempfile.mkdtemp(prefix="homogan-profile-")
    try:
        tf.profiler.experimental.start(logdir)
        for _ in range(steps):
            np.asarray(step(real, labels))
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        space.ParseFromString(Path(glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)[0]).read_bytes())
    finally:
        shutil.rmtree(logdir, ignore_errors=True)
    times: collections.Counter = collections.Counter()
    for plane in space.planes:
        names = {k: v.name for k, v in plane.event_metadata.items()}
        for line in plane.lines:
            for event in line.events:
                name = names.get(event.metadata_id, "")
                if ":" in name and "/" in name:  # "<op path>:<kernel type>", the kernels of the step
                    times[name.rsplit(":", 1)[1]] += event.duration_ps
    return times


def main(argv=None) -> None:
    args = arguments().parse_args(argv)
    import numpy as np
    import tensorflow as tf

    import bench_train_step as bts
    from homogan import device

    for line in device.describe(device.read_facts()):
        print(line)
    s = bts.SPECS["dcgan64"]
    rng = np.random.default_rng(1)
    real = tf.constant(rng.uniform(-1, 1, (s["batch"], s["size"], s["size"], 3)).astype("float32"))
    labels = tf.zeros((s["batch"], 0))
    contenders = [(f"ours {args.precision} {args.mode}", bts.ours_step(s, args.precision, False, args.mode)),
                  ("reference (plain Keras, fp32, 2 tapes)", bts.reference_step(s))]
    print(f"DCGAN-64, batch {s['batch']}: kernel time per step over {args.steps} traced steps")
    for name, step in contenders:
        times = kernel_times(step, real, labels, args.steps)
        total = sum(times.values())
        conv = sum(v for k, v in times.items() if "Conv" in k or "MatMul" in k)
        print(f"\n{name}: {total / 1e9 / args.steps:.0f} ms of kernels per step (all threads); convolution and "
              f"matmul kernels {100 * conv / total:.0f} %")
        for kind, ps in times.most_common(args.top):
            print(f"  {kind:44s} {ps / 1e9 / args.steps:7.1f} ms  {100 * ps / total:5.1f} %")


if __name__ == "__main__":
    arguments().parse_args()  # --help and bad arguments answer before TensorFlow loads
    main()
