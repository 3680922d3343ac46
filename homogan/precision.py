"""Which compute precision a run trains in: ``training.precision`` ``"auto"`` resolved for the device.

The rule (:func:`resolve`), from what is native where (measured on this project's CPUs; NVIDIA's and
Google's documentation for the accelerators):

* TPU → ``mixed_bfloat16`` (bf16 is the TPU's native matmul type).
* NVIDIA GPU: compute capability ≥ 8.0 (A100, L4, H100) → ``mixed_bfloat16``; 7.x (V100, T4) →
  ``mixed_float16`` with loss scaling (bf16 is not native there); older or unknown → ``float32``.
  With several GPUs the weakest decides.
* CPU with bf16 units (``avx512_bf16`` or ``amx_bf16``) → ``mixed_bfloat16`` (1.3–2× float32);
  any other CPU → ``float32`` (bf16 is emulated: ~8× slower on an AVX2-only EPYC); flags unreadable
  → ``float32``, which is never the slow path.

An explicit value is used as given. The decision is made once, when training starts, and recorded
in the run folder (``run.json``); the run's ``config.json`` keeps ``"auto"``, so a resume on other
hardware is not a config change. Networks are built under :func:`policy` only; evaluation networks
(classifier, feature extractors) are always float32 (:func:`float32`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from homogan.device import DeviceFacts

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
AUTO = "auto"


@dataclass(frozen=True)
class Resolved:
    precision: str
    reason: str  # e.g. "auto: CPU without bf16 units"

    def summary(self) -> str:
        return f"{self.precision} ({self.reason})"


def resolve(requested: str, facts: DeviceFacts) -> Resolved:
    """The precision to train in for ``training.precision = requested`` on the device of ``facts``."""
    if requested != AUTO:
        if requested not in PRECISIONS:
            raise ValueError(f"`requested` should be one of {AUTO}, {', '.join(PRECISIONS)}. Received: {requested!r}")
        return Resolved(requested, "set in the config")
    if facts.kind == "tpu":
        return Resolved("mixed_bfloat16", "auto: TPU")
    if facts.kind == "gpu":
        caps = [g.compute_capability for g in facts.gpus]
        if not caps or any(c is None for c in caps):
            return Resolved("float32", "auto: GPU of unknown compute capability")
        weakest = min(caps)
        shown = f"{weakest[0]}.{weakest[1]}"
        if weakest >= (8, 0):
            return Resolved("mixed_bfloat16", f"auto: GPU compute capability {shown} >= 8.0, native bf16")
        if weakest >= (7, 0):
            return Resolved("mixed_float16", f"auto: GPU compute capability {shown} (7.x): float16 tensor cores, "
                                             f"loss scaling")
        return Resolved("float32", f"auto: GPU compute capability {shown} < 7.0, no fast half precision")
    if facts.cpu_flags is None:
        return Resolved("float32", "auto: CPU flags unreadable")
    if facts.bf16_units:
        return Resolved("mixed_bfloat16", f"auto: CPU with bf16 units ({', '.join(facts.bf16_units)})")
    return Resolved("float32", "auto: CPU without bf16 units")


def applicable(facts: DeviceFacts) -> list[str]:
    """The precisions worth timing on this device (``doctor``): float32 always; bf16 on CPU (native or
    emulated, so the cost shows), TPU and GPUs of compute capability >= 8.0; float16 on GPUs >= 7.0."""
    out = ["float32"]
    if facts.kind == "gpu":
        caps = [g.compute_capability or (0, 0) for g in facts.gpus]
        weakest = min(caps) if caps else (0, 0)
        if weakest >= (8, 0):
            out.append("mixed_bfloat16")
        if weakest >= (7, 0):
            out.append("mixed_float16")
        return out
    return out + ["mixed_bfloat16"]


@contextlib.contextmanager
def policy(name: str):
    """Keras's global dtype policy set to ``name`` inside the block only (layers take it when built)."""
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def float32():
    """The policy for evaluation networks, whatever the training precision (see the module docstring)."""
    return policy("float32")
