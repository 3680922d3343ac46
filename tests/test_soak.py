"""Under load: 2,040 tiny training steps over 60 epochs with every epoch-end side effect (sample grid,
plots, history, checkpoint with retention, TensorBoard), and no growth in memory, figures or open files.

Measured while writing this test (tiny config, RSS at each epoch end): RSS rises by about 8 % over
the first ~28 epochs — one-off caches filling as the plots' axes grow, the same with
MALLOC_ARENA_MAX=2 or malloc_trim, and absent when the plots are off — then stays flat: +0.3 %
from epoch 30 to epoch 90. A leak grows without end, so the test compares the second half of the
run with its start (epoch 30): growth must stay under 5 %.
"""

import gc
import os

import pytest

from homogan import callbacks as cb
from homogan.train import train

EPOCHS = 60


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))


def open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


def live_figures() -> int:
    from matplotlib.figure import Figure

    gc.collect()
    return sum(isinstance(o, Figure) for o in gc.get_objects())


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads RSS from /proc (Linux)")
def test_two_thousand_steps_do_not_grow_memory_figures_or_file_handles(tiny_config, monkeypatch):
    samples = []
    original = cb.HistoryPlots.on_epoch_end

    def measure(self, epoch, logs=None):
        original(self, epoch, logs)
        samples.append((epoch + 1, rss_bytes(), open_files(), live_figures() if epoch % 10 == 9 else 0))

    monkeypatch.setattr(cb.HistoryPlots, "on_epoch_end", measure)
    config = tiny_config('data.attributes=["Eyeglasses", "Bald"]', "data.split=all", "training.batch_size=7",
                         "training.steps_per_epoch=null", f"training.epochs={EPOCHS}", "logging.tensorboard=true",
                         "logging.keep_checkpoints=2")
    result = train(config, echo=lambda *a, **k: None)
    assert result.epochs_done == EPOCHS and len(samples) == EPOCHS
    assert (240 // 7) * EPOCHS >= 2000
    half = EPOCHS // 2
    start = samples[half - 1][1]
    worst = max(s[1] for s in samples[half:])
    report = ", ".join(f"epoch {e}: {r / 2**20:.0f} MB, {fd} fds" for e, r, fd, _ in samples[::10])
    assert worst <= start * 1.05, f"RSS grew {worst / start - 1:.1%} after epoch {half} ({report})"
    assert max(s[2] for s in samples[half:]) <= samples[half - 1][2] + 2, f"open files grew ({report})"
    assert all(s[3] == 0 for s in samples), "matplotlib figures left alive"


def test_plots_are_redrawn_at_most_every_half_minute_and_after_the_last_epoch(tmp_path, monkeypatch):
    """Short epochs (a small dataset) must not pay a redraw each; the last epoch and an early stop always draw."""
    drawn, now = [], [0.0]
    monkeypatch.setattr(cb.visualize, "plot_history", lambda rows, out: drawn.append(now[0]))
    monkeypatch.setattr(cb.visualize, "read_history", lambda path: [])
    plots = cb.HistoryPlots(tmp_path / "history.csv", tmp_path, min_seconds=30, clock=lambda: now[0])
    plots.set_model(type("M", (), {"stop_training": False})())
    plots.set_params({"epochs": 10})
    for epoch in range(10):
        now[0] = 10.0 * epoch
        plots.on_epoch_end(epoch)
    assert drawn == [0.0, 30.0, 60.0, 90.0]  # the first, every 30 s, and the last (epoch 10 at t = 90)
    plots.on_train_end()
    assert len(drawn) == 4  # nothing new to draw
    plots.set_params({"epochs": 20})
    now[0] = 100.0
    plots.on_epoch_end(10)
    plots.on_train_end()  # stopped before epoch 20: the epoch written since is drawn
    assert drawn[-1] == 100.0 and len(drawn) == 5
