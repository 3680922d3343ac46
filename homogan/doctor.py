"""``python -m homogan doctor``: what this machine is, and which precision and update mode train fastest here.

Why: the fast path depends on the hardware (bf16 is 1.3–2× faster than float32 on CPUs with bf16
units and ~8× slower where it is emulated), so a speed claim made on one machine is not the user's.
Doctor prints the device block, times a few steps of the configured GAN's own train step (built as
training builds it, on one in-memory batch, one device) in every applicable precision and update
mode, and says which is fastest, what ``auto`` picks and how the step as configured compares.
"""

from __future__ import annotations

import sys

from homogan import device, precision, steptime
from homogan.config import Config
from homogan.data.labels import label_names


def run_doctor(config: Config, steps: int = 5, rounds: int = 2, warmup: int = 2, echo=lambda *a: print(*a, flush=True),
               progress=lambda *a, **k: print(*a, **k, file=sys.stderr)) -> dict:
    """Print the report; return {"fastest", "configured", "auto", "rows"} for callers and tests."""
    facts = device.read_facts(config.training.distribute)
    for line in device.describe(facts):
        echo(line)
    auto = precision.resolve(precision.AUTO, facts)
    configured = precision.resolve(config.training.precision, facts)
    echo(f"auto picks   {auto.summary()}")
    echo(f"configured   training.precision {config.training.precision!r} → {configured.summary()}, "
         f"update_mode {config.training.update_mode}")
    num_labels = len(label_names(config))
    batch = steptime.config_batch(config, num_labels)
    variants = steptime.config_variants(config, configured.precision, precision.applicable(facts))
    echo(f"timing the configured train step (batch {batch.batch}, {batch.size} px, {num_labels} labels, one "
         f"device, no input pipeline): {warmup} warm-up + {rounds} × {steps} timed steps per contender")
    items = [(name, steptime.config_step(c, num_labels)) for name, c in variants]
    rows = steptime.time_steps(items, batch, warmup, steps, rounds, echo=progress)
    fastest = max(rows, key=lambda r: r.images_per_second)
    width = max(len(r.name) for r in rows)
    echo(f"| {'contender':<{width}} | img/s | × fastest |")
    echo(f"|{'-' * (width + 2)}|------:|----------:|")
    for r in rows:
        echo(f"| {r.name:<{width}} | {r.images_per_second:5.1f} | {r.images_per_second / fastest.images_per_second:9.2f} |")
    mine = rows[0]
    echo(f"fastest      {fastest.name} ({fastest.images_per_second:.1f} img/s); the step as configured runs at "
         f"{mine.images_per_second / fastest.images_per_second:.2f}× it (±15 % between short windows on a shared host)")
    return {"fastest": fastest.name, "configured": mine.name, "auto": auto.precision, "rows": rows}
