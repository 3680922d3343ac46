"""Under load: 2,000 tiny training steps with every epoch-end side effect (grid, plots, history,
checkpoint, TensorBoard) and no growth in memory, figures or open files."""

import os

import pytest

from homogan import callbacks as cb
from homogan.train import train


def rss_bytes() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))


def open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads RSS from /proc (Linux)")
def test_two_thousand_steps_do_not_grow_memory_figures_or_file_handles(tiny_config, monkeypatch):
    import matplotlib.pyplot as plt

    samples = []
    original = cb.HistoryPlots.on_epoch_end

    def measure(self, epoch, logs=None):
        original(self, epoch, logs)
        samples.append((epoch + 1, rss_bytes(), open_files(), len(plt.get_fignums())))

    monkeypatch.setattr(cb.HistoryPlots, "on_epoch_end", measure)
    config = tiny_config('data.attributes=["Eyeglasses", "Bald"]', "training.batch_size=4",
                         "training.steps_per_epoch=null", "training.epochs=34", "logging.tensorboard=true",
                         "logging.keep_checkpoints=2")
    result = train(config, echo=lambda *a, **k: None)
    steps = sum(1 for _ in range(34)) * 60
    assert result.epochs_done == 34 and steps >= 2000
    assert len(samples) == 34
    # Warm-up (tracing, the data cache, first plots) ends within the first epochs; compare after it.
    baseline = max(s[1] for s in samples[3:6])
    final = max(s[1] for s in samples[-5:])
    report = ", ".join(f"{e}: {r / 2**20:.0f} MB/{fd} fds" for e, r, fd, _ in samples[::6])
    assert final <= baseline * 1.05, f"RSS grew {final / baseline - 1:.1%} ({report})"
    assert max(s[2] for s in samples[3:]) - samples[3][2] <= 2, f"open files grew ({report})"
    assert all(s[3] == 0 for s in samples), "matplotlib figures left open"
