"""Pictures a person judges a run by: labelled sample grids, loss/accuracy plots, the progress GIF."""

from __future__ import annotations

import csv
from pathlib import Path

import imageio.v3 as iio
import numpy as np
# Figure objects, never pyplot: no global figure registry to leak into, no GUI backend to pick — a
# figure is freed when it goes out of scope (pyplot's create/close cycle grew RSS by ~2 MB per epoch).
from matplotlib.figure import Figure

from homogan.atomic import atomic_path


def tile(images: np.ndarray, rows: int, columns: int, pad: int = 2) -> np.ndarray:
    """(rows*columns, H, W, C) floats in [-1, 1] → one uint8 (H', W', 3) image with a white grid."""
    images = np.clip((np.asarray(images, np.float32) + 1.0) * 127.5, 0, 255).astype(np.uint8)
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    n, h, w, c = images.shape
    out = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad, c), 255, np.uint8)
    for i in range(min(n, rows * columns)):
        r, k = divmod(i, columns)
        out[pad + r * (h + pad): pad + r * (h + pad) + h, pad + k * (w + pad): pad + k * (w + pad) + w] = images[i]
    return out


def row_caption(label_names: list[str], labels: np.ndarray) -> str:
    """'Eyeglasses=1 No_Beard=0 Bald=1' (or the class name for one-hot class labels)."""
    return "  ".join(f"{n}={int(v > 0.5)}" for n, v in zip(label_names, labels))


def save_grid(path: Path, images: np.ndarray, rows: int, columns: int, captions: list[str] | None,
              title: str) -> np.ndarray:
    """Save a labelled grid PNG (each row's caption at its left); returns the tiled pixels."""
    grid = tile(images, rows, columns)
    cell = grid.shape[0] / rows
    scale = max(1.0, 512 / grid.shape[1])
    label_width = 0.0 if not captions else 0.075 * max(len(c) for c in captions) + 0.3
    fig_w = grid.shape[1] * scale / 100 + label_width
    fig_h = grid.shape[0] * scale / 100 + 0.45
    fig = Figure(figsize=(fig_w, fig_h), dpi=100)
    ax = fig.add_axes([label_width / fig_w, 0.0, 1 - label_width / fig_w, 1 - 0.45 / fig_h])
    ax.imshow(grid, interpolation="nearest")
    ax.set_xticks([])
    if captions:
        ax.set_yticks([cell * (r + 0.5) for r in range(rows)], captions, fontsize=8)
    else:
        ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    fig.suptitle(title, fontsize=11, y=1 - 0.12 / fig_h, va="top")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return grid


def read_history(path: Path) -> list[dict]:
    if not Path(path).is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: float(v) if v not in ("", None) else float("nan") for k, v in row.items()} for row in csv.DictReader(f)]


PLOTS = {
    "losses.png": ("Losses", [("g_loss", "G loss"), ("d_loss_real", "D loss on real"), ("d_loss_fake", "D loss on fake")]),
    "accuracy.png": ("Discriminator accuracy", [("d_acc_real", "D accuracy on real"), ("d_acc_fake", "D accuracy on fake"),
                                                ("d_acc_unseen", "D accuracy on unseen real")]),
    # A Wasserstein critic has no decision threshold (a constant added to f changes no loss), so its runs
    # show the critic's mean score on real minus on fake instead of accuracies.
    "critic.png": ("Critic: mean score on real − on fake", [("critic_gap", "E f(real) − E f(fake)")]),
    # ADA's overfitting measures — r_t (near 1: D is sure of every real image) and, where the run has images it
    # never trains on, r_v (near 1: D scores those like fakes: memorised) — and, with ADA, its augmentation p.
    "ada.png": ("Overfitting: r_t, r_v and ADA's p", [("ada_rt", "r_t = E[sign D(real)]"),
                                                      ("ada_rv", "r_v (unseen real images)"), ("ada_p", "ADA's p")]),
}


def plot_history(rows: list[dict], out_dir: Path) -> list[Path]:
    """Redraw the plots of :data:`PLOTS` whose series the history has (one row per epoch)."""
    written = []
    if not rows:
        return written
    epochs = [r["epoch"] for r in rows]
    for name, (title, series) in PLOTS.items():
        if not any(key in rows[0] for key, _ in series):
            continue
        fig = Figure(figsize=(7, 4), dpi=100)
        ax = fig.subplots()
        for key, label in series:
            if key in rows[0]:
                ax.plot(epochs, [r[key] for r in rows], marker="o" if len(rows) < 30 else None, label=label)
        ax.set_xlabel("epoch")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
        if name in ("accuracy.png", "ada.png"):
            ax.set_ylim(-0.02 if name == "accuracy.png" else -1.02, 1.02)
        fig.tight_layout()
        with atomic_path(out_dir / name) as tmp:
            fig.savefig(tmp, format="png")
        written.append(out_dir / name)
    return written


def make_gif(frames: list[Path], out: Path, fps: float = 4.0) -> Path:
    """A looping GIF of the sample grids (each already captioned with its epoch); last frame held longer."""
    if not frames:
        raise ValueError("`frames` should not be empty.")
    images = [iio.imread(f)[..., :3] for f in frames]
    h = max(i.shape[0] for i in images)
    w = max(i.shape[1] for i in images)
    images = [np.pad(i, ((0, h - i.shape[0]), (0, w - i.shape[1]), (0, 0)), constant_values=255) for i in images]
    durations = [1000.0 / fps] * len(images)
    durations[-1] = max(durations[-1], 1500.0)
    with atomic_path(out) as tmp:
        iio.imwrite(tmp, np.stack(images), extension=".gif", duration=durations, loop=0)
    return out
