"""The facts of the machine training runs on: CPU model and the flags that matter, accelerators, versions.

Why a module of its own: hardware decides what is fast (bf16 is 1.3–2× faster than float32 on CPUs
with bf16 units and about 8× slower where it is emulated), and every figure homogan prints must say
which machine it belongs to. :func:`read_facts` gathers the facts once; :func:`describe` turns them
into the device block that ``doctor``, the run summary and every bench print. Decisions made from
the facts live elsewhere (:mod:`homogan.precision`) and take the facts as an argument, so each
branch is tested with injected facts instead of the test machine's.

``HOMOGAN_MASK_CPU_FLAGS`` (comma-separated, e.g. ``avx512_bf16,amx_bf16``) hides flags from the
detection only — nothing else changes — to exercise the other branch on a machine that has them.
TensorFlow is imported lazily (``--help`` and bad-input errors stay fast).
"""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path

from homogan.runtime import import_tensorflow

#: CPU flags that decide which precision is fast (bf16 units) or how wide the vector units are.
CPU_FLAGS_THAT_MATTER = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_fp16")
#: Either of these means the CPU computes bfloat16 natively (AVX512-BF16 dot products or AMX tiles).
BF16_UNITS = ("avx512_bf16", "amx_bf16")
MASK_ENV = "HOMOGAN_MASK_CPU_FLAGS"


@dataclass(frozen=True)
class GPU:
    name: str
    compute_capability: tuple[int, int] | None  # (major, minor); None when TensorFlow does not say


@dataclass(frozen=True)
class DeviceFacts:
    """What training will run on. ``cpu_flags`` is None when the flags cannot be read (not Linux)."""

    kind: str  # "cpu", "gpu" or "tpu"
    cpu_model: str
    cpu_flags: frozenset[str] | None
    gpus: tuple[GPU, ...] = ()
    masked: tuple[str, ...] = ()
    versions: dict = field(default_factory=dict)
    threads: dict = field(default_factory=dict)

    @property
    def bf16_units(self) -> tuple[str, ...]:
        return tuple(f for f in BF16_UNITS if self.cpu_flags and f in self.cpu_flags)

    @property
    def device_class(self) -> str:
        """A short name for the class of machine a result depends on (what ``reproduce`` compares)."""
        if self.kind == "gpu":
            caps = sorted({g.compute_capability for g in self.gpus if g.compute_capability})
            return "gpu-cc" + "+".join(f"{a}.{b}" for a, b in caps) if caps else "gpu"
        if self.kind == "tpu":
            return "tpu"
        if self.cpu_flags is None:
            return "cpu-unknown"
        if self.bf16_units:
            return "cpu-bf16"
        return "cpu-avx512" if "avx512f" in self.cpu_flags else ("cpu-avx2" if "avx2" in self.cpu_flags else "cpu")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["cpu_flags"] = sorted(self.cpu_flags) if self.cpu_flags is not None else None
        d["device_class"] = self.device_class
        return d


def read_cpu(cpuinfo: str | None = None, env: dict | None = None) -> tuple[str, frozenset[str] | None, tuple[str, ...]]:
    """(model name, the flags that matter, flags masked by HOMOGAN_MASK_CPU_FLAGS) from /proc/cpuinfo.

    Flags are None when ``/proc/cpuinfo`` is absent or has no ``flags`` line (macOS, Windows): the
    callers then choose what is safe everywhere."""
    env = os.environ if env is None else env
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            cpuinfo = ""
    model, flags = None, None
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        name = name.strip()
        if name == "model name" and model is None:
            model = value.strip()
        elif name in ("flags", "Features") and flags is None:  # x86; aarch64 says Features
            flags = frozenset(value.split())
    model = model or platform.processor() or "unknown CPU"
    masked = tuple(f.strip() for f in env.get(MASK_ENV, "").split(",") if f.strip())
    if flags is not None:
        flags = frozenset(f for f in flags if f in CPU_FLAGS_THAT_MATTER and f not in masked)
    return model, flags, masked


def read_facts(distribute: str = "none", accelerators: bool = True) -> DeviceFacts:
    """The facts of this machine, for a run with ``training.distribute`` = ``distribute``. With
    ``accelerators=False`` TensorFlow is not imported (no GPUs are listed): for measurements of CPU-only
    work, such as drawing the synthetic faces."""
    model, flags, masked = read_cpu()
    if not accelerators:
        from importlib import metadata

        def version(name):
            try:
                return metadata.version(name)
            except metadata.PackageNotFoundError:
                return "not installed"

        return DeviceFacts("cpu", model, flags, (), masked,
                           {"tensorflow": version("tensorflow"), "keras": version("keras"),
                            "python": platform.python_version()}, {"cores": os.cpu_count()})
    tf = import_tensorflow()
    import keras

    gpus = []
    for device in tf.config.list_physical_devices("GPU"):
        try:
            details = tf.config.experimental.get_device_details(device)
        except Exception:  # noqa: BLE001 (a driver that cannot answer: the name alone)
            details = {}
        cc = details.get("compute_capability")
        gpus.append(GPU(details.get("device_name", device.name), tuple(cc) if cc else None))
    kind = "tpu" if distribute == "tpu" else ("gpu" if gpus else "cpu")
    versions = {"tensorflow": tf.__version__, "keras": keras.__version__, "python": platform.python_version()}
    threads = {"cores": os.cpu_count(), "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
               "inter_op": tf.config.threading.get_inter_op_parallelism_threads()}
    return DeviceFacts(kind, model, flags, tuple(gpus), masked, versions, threads)


def describe(facts: DeviceFacts) -> list[str]:
    """The device block: which machine a figure belongs to (printed first by doctor and every bench)."""
    if facts.cpu_flags is None:
        flags = "flags unreadable"
    else:
        shown = [f for f in CPU_FLAGS_THAT_MATTER if f in facts.cpu_flags]
        flags = ("flags " + " ".join(shown) if shown else "none of " + " ".join(CPU_FLAGS_THAT_MATTER))
        flags += f"; bf16 units: {', '.join(facts.bf16_units) or 'none'}"
    if facts.masked:
        flags += f" (masked for detection by {MASK_ENV}: {', '.join(facts.masked)})"
    t = facts.threads
    lines = [f"CPU          {facts.cpu_model}, {t.get('cores', '?')} cores; {flags}"]
    if facts.gpus:
        for g in facts.gpus:
            cc = f"compute capability {g.compute_capability[0]}.{g.compute_capability[1]}" if g.compute_capability \
                else "compute capability unknown"
            lines.append(f"GPU          {g.name}, {cc}")
    else:
        lines.append("GPU          none")
    v = facts.versions
    lines.append(f"software     TensorFlow {v.get('tensorflow', '?')}, Keras {v.get('keras', '?')}, Python "
                 f"{v.get('python', '?')}; TF threads intra-op {t.get('intra_op', '?')}, inter-op {t.get('inter_op', '?')} "
                 f"(0 = TensorFlow's choice)")
    lines.append(f"trains on    {facts.kind.upper()} (device class {facts.device_class})")
    return lines
