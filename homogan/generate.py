"""Images from a trained run: grids, single files, latent walks and attribute sweeps.

``python -m homogan generate RUN_DIR [--n 64] [--attributes Eyeglasses=1,Bald=0] [--seed S] [--out FILE]
[--separate] [--interpolate] [--sweep ATTRIBUTE]``

The run's latest checkpoint is loaded (the EMA generator when the run has one). Latent vectors
come from ``numpy.random.default_rng(seed)`` (default: the run's ``experiment.seed``), so the same
command draws the same images.

**Unspecified attributes** (``--unspecified data``, the default): each image takes the attribute
vector of a random training image that has the requested values (when no training image has them,
a random training image's vector with the requested values written over it) — so unrequested
attributes follow the data's distribution, including how they go together with the requested
ones. ``--unspecified zero`` sets them to 0 instead (for class-per-folder runs: a uniformly drawn
class). When the training data is not on this machine, ``data`` falls back to ``zero`` with a note.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from homogan.atomic import atomic_path
from homogan.data import sources
from homogan.data.labels import label_names
from homogan.errors import DataError, UserError
from homogan.experiment import LoadedRun, load_run, open_run_dir
from homogan.models import inference
from homogan.visualize import make_gif, save_grid, tile

# --------------------------------------------------------------------------------------------
# Labels


def parse_attributes(text: str | None, names: list[str], one_hot: bool) -> dict[str, int]:
    """``"Eyeglasses=1,Bald=0"`` → {"Eyeglasses": 1, "Bald": 0}, checked against the run's labels."""
    if not text:
        return {}
    if not names:
        raise UserError(f"--attributes {text!r}: the run is unconditional (no data.attributes or classes)")
    fixed: dict[str, int] = {}
    for item in text.split(","):
        name, sep, value = item.strip().partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            raise UserError(f"--attributes {text!r}: expected NAME=0 or NAME=1, comma-separated "
                            f"(e.g. {names[0]}=1), got {item.strip()!r}")
        if name not in names:
            raise UserError(f"--attributes: {name!r} is not a {'class' if one_hot else 'conditioning attribute'} of "
                            f"this run; allowed: {', '.join(names)}")
        if value not in ("0", "1"):
            raise UserError(f"--attributes: {name}={value!r} is not allowed; allowed values: 0, 1")
        if name in fixed:
            raise UserError(f"--attributes: {name} is given twice")
        fixed[name] = int(value)
    if one_hot:
        if list(fixed.values()) != [1]:
            raise UserError(f"--attributes {text!r}: the run is conditioned on one class at a time; name exactly one "
                            f"class with =1 (e.g. {names[0]}=1)")
    return fixed


def label_pool(config, echo=print) -> np.ndarray | None:
    """The training selection's label vectors (None when the data is not available here)."""
    try:
        source = sources.open_source(config)
    except DataError as e:
        echo(f"note: training labels unavailable ({e}); unspecified attributes are set to 0")
        return None
    if source.labels is not None:
        return np.asarray(source.labels, np.float32)
    labels = [y.numpy() for _, y in source.encoded.take(20000)]
    return np.asarray(labels, np.float32).reshape(len(labels), -1)


def make_labels(n: int, names: list[str], one_hot: bool, fixed: dict[str, int], pool: np.ndarray | None,
                rng: np.random.Generator) -> np.ndarray:
    """(n, len(names)) label vectors: ``fixed`` values, the rest per the module docstring."""
    k = len(names)
    if k == 0:
        return np.zeros((n, 0), np.float32)
    if one_hot:
        if fixed:
            index = np.full(n, names.index(next(iter(fixed))))
        elif pool is not None and len(pool):
            index = pool[rng.integers(0, len(pool), n)].argmax(1)
        else:
            index = rng.integers(0, k, n)
        return np.eye(k, dtype=np.float32)[index]
    if pool is not None and len(pool):
        matching = pool
        if fixed:
            columns = [names.index(a) for a in fixed]
            values = np.asarray(list(fixed.values()), np.float32)
            hit = np.all(pool[:, columns] == values, axis=1)
            if hit.any():
                matching = pool[hit]
        labels = matching[rng.integers(0, len(matching), n)].astype(np.float32)
    else:
        labels = np.zeros((n, k), np.float32)
    for name, value in fixed.items():
        labels[:, names.index(name)] = value
    return labels


def slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation between latent vectors (stays on the Gaussian's typical shell)."""
    cos = np.clip(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)), -1.0, 1.0)
    omega = np.arccos(cos)
    if omega < 1e-6:
        return np.outer(1 - t, a) + np.outer(t, b)
    return (np.outer(np.sin((1 - t) * omega), a) + np.outer(np.sin(t * omega), b)) / np.sin(omega)


# --------------------------------------------------------------------------------------------
# Outputs


def _images(loaded: LoadedRun, z: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return inference.generate(loaded.generator, z, labels)


def _slug(fixed: dict[str, int]) -> str:
    return "".join(f"-{re.sub(r'[^A-Za-z0-9_]', '', k)}{v}" for k, v in fixed.items())


def _save_png(path: Path, image: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, tile(image[None], 1, 1, pad=0), extension=".png")


def generate(run_dir, n: int = 64, attributes: str | None = None, seed: int | None = None, out: str | None = None,
             separate: bool = False, interpolate: bool = False, sweep: str | None = None, steps: int = 10,
             unspecified: str = "data", fps: float = 6.0, checkpoint: str = "latest", echo=print) -> list[Path]:
    """Write the requested pictures; returns the written paths (see the module docstring)."""
    if sum([separate, interpolate, sweep is not None]) > 1:
        raise UserError("generate: choose one of --separate, --interpolate, --sweep")
    if n < 1:
        raise UserError(f"--n {n}: must be >= 1")
    if unspecified not in ("data", "zero"):
        raise UserError(f"--unspecified {unspecified!r}: allowed: data, zero")
    if out and not separate and Path(out).suffix.lower() != ".png":
        raise UserError(f"--out {out!r}: the output is a PNG; use a name ending in .png"
                        + (" (the GIF is written beside it)" if interpolate else ""))
    # The request is checked against the run's config before anything slow (loading TensorFlow, models).
    config = open_run_dir(run_dir).load_config()
    names, one_hot = label_names(config), config.data.class_conditional
    fixed = parse_attributes(attributes, names, one_hot)
    if sweep is not None:
        if not names:
            raise UserError(f"--sweep {sweep!r}: the run is unconditional (no data.attributes or classes)")
        if one_hot and sweep != "class" and sweep not in names:
            raise UserError(f"--sweep {sweep!r}: this run is conditioned on classes; use --sweep class (or a class "
                            f"name) to show every class; classes: {', '.join(names)}")
        if not one_hot and sweep not in names:
            raise UserError(f"--sweep {sweep!r} is not a conditioning attribute of this run; allowed: {', '.join(names)}")
        if sweep in fixed or (one_hot and fixed):
            raise UserError(f"--sweep {sweep}: do not also fix it with --attributes")
    loaded = load_run(run_dir, echo=echo, checkpoint=checkpoint)
    seed = config.experiment.seed if seed is None else seed
    rng = np.random.default_rng(seed)
    pool = label_pool(config, echo) if unspecified == "data" and names else None
    latent = config.model.latent_dim
    gen_dir = loaded.run.path / "generated"
    what = f"{loaded.run.path.name} epoch {loaded.epoch}" + (" (EMA)" if loaded.generator_name == "ema_generator" else "")
    shown = " ".join(f"{k}={v}" for k, v in fixed.items())
    written: list[Path] = []

    if interpolate:
        z_a = np.random.default_rng(seed).standard_normal(latent)
        z_b = np.random.default_rng(seed + 1).standard_normal(latent)
        z = slerp(z_a, z_b, np.linspace(0.0, 1.0, steps)).astype(np.float32)
        labels = np.repeat(make_labels(1, names, one_hot, fixed, pool, rng), steps, axis=0)
        images = _images(loaded, z, labels)
        strip = Path(out) if out else gen_dir / f"interpolate-seed{seed}-{seed + 1}{_slug(fixed)}.png"
        strip.parent.mkdir(parents=True, exist_ok=True)
        save_grid(strip, images, 1, steps, None, f"{what}: seed {seed} → {seed + 1} {shown}".strip())
        frames_dir = strip.with_name(f".{strip.stem}-frames")
        frames_dir.mkdir(exist_ok=True)
        try:
            frames = []
            for i, image in enumerate(images):
                frames.append(frames_dir / f"{i:04d}.png")
                save_grid(frames[-1], image[None], 1, 1, None, f"step {i + 1}/{steps}")
            gif = make_gif(frames + frames[-2:0:-1], strip.with_suffix(".gif"), fps)
        finally:
            for f in frames_dir.glob("*.png"):
                f.unlink()
            frames_dir.rmdir()
        written += [strip, gif]
    elif sweep is not None:
        columns = min(n, 8)
        chunks = math.ceil(n / columns)
        z = rng.standard_normal((chunks * columns, latent)).astype(np.float32)
        base = make_labels(chunks * columns, names, one_hot, fixed, pool, rng)
        variants = ([(f"{c}", np.eye(len(names), dtype=np.float32)[i]) for i, c in enumerate(names)] if one_hot
                    else [(f"{sweep}={v}", v) for v in (0, 1)])
        zs, labels, captions = [], [], []
        for c in range(chunks):
            for caption, value in variants:
                row = base[c * columns:(c + 1) * columns].copy()
                if one_hot:
                    row[:] = value
                else:
                    row[:, names.index(sweep)] = value
                zs.append(z[c * columns:(c + 1) * columns])
                labels.append(row)
                captions.append(caption)
        images = _images(loaded, np.concatenate(zs), np.concatenate(labels))
        path = Path(out) if out else gen_dir / f"sweep-{re.sub(r'[^A-Za-z0-9_]', '', sweep)}-seed{seed}{_slug(fixed)}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        title = f"{what}: {'every class' if one_hot else sweep + ' off / on'}, same z per column {shown}".strip()
        save_grid(path, images, len(captions), columns, captions, title)
        written.append(path)
    else:
        z = rng.standard_normal((n, latent)).astype(np.float32)
        labels = make_labels(n, names, one_hot, fixed, pool, rng)
        images = _images(loaded, z, labels)
        if separate:
            folder = Path(out) if out else gen_dir / f"seed{seed}{_slug(fixed)}"
            folder.mkdir(parents=True, exist_ok=True)
            for i, image in enumerate(images):
                _save_png(folder / f"{i:04d}.png", image)
                written.append(folder / f"{i:04d}.png")
        else:
            columns = math.ceil(math.sqrt(n))
            rows = math.ceil(n / columns)
            path = Path(out) if out else gen_dir / f"grid-seed{seed}-n{n}{_slug(fixed)}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            if not names:
                title = f"{what}: seed {seed}"
            elif shown:
                title = f"{what}: {shown}; others {'from the data' if pool is not None else '0'}"
            else:
                title = f"{what}: labels {'from the data' if pool is not None else '0'}"
            save_grid(path, images, rows, columns, None, title)
            written.append(path)
    return written
