"""Side effects of training, one small ``keras.callbacks.Callback`` each.

Every file is written under a temporary name and renamed (``homogan.atomic``), so a killed run
never leaves a half-written grid, history or plot behind.
"""

from __future__ import annotations

import csv
import io
import math
import signal
import sys
import threading
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from homogan import checkpoints, metrics, pixels, visualize
from homogan.atomic import atomic_path
from homogan.models import inference


def epoch_completed(model) -> bool:
    """False when training was stopped inside this epoch (a non-finite loss): Keras still calls
    ``on_epoch_end`` then, but the epoch is not complete and its weights are not to be kept."""
    return not getattr(model, "stop_training", False)


class SampleGrid(keras.callbacks.Callback):
    """Writes ``samples/epoch_XXXX.png`` from a fixed latent batch and fixed label rows.

    Column k uses the same z in every row and row r the same labels in every column, so reading
    down a column shows what the labels change, and reading the grids over epochs shows learning.
    The EMA generator is used when the GAN has one. ``epoch_0000.png`` is the untrained generator.
    """

    def __init__(self, samples_dir: Path, z: np.ndarray, labels: np.ndarray, rows: int, columns: int,
                 captions: list[str] | None, every: int, epochs: int, tensorboard_dir: Path | None = None):
        super().__init__()
        self.samples_dir, self.z, self.labels = Path(samples_dir), z, labels
        self.rows, self.columns, self.captions = rows, columns, captions
        self.every, self.epochs = every, epochs
        self.writer = tf.summary.create_file_writer(str(tensorboard_dir)) if tensorboard_dir else None

    def path(self, epoch: int) -> Path:
        return self.samples_dir / f"epoch_{epoch:04d}.png"

    def write(self, epoch: int) -> Path:
        generator = self.model.ema_generator if self.model.ema_generator is not None else self.model.generator
        images = inference.generate(generator, self.z, self.labels)
        grid = visualize.save_grid(self.path(epoch), images, self.rows, self.columns, self.captions, f"epoch {epoch}")
        if self.writer is not None:
            with self.writer.as_default():
                tf.summary.image("samples", grid[None], step=epoch)
            self.writer.flush()
        return self.path(epoch)

    def on_train_begin(self, logs=None):
        self.samples_dir.mkdir(parents=True, exist_ok=True)
        if not self.path(0).exists():
            self.write(0)

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        if epoch_completed(self.model) and (done % self.every == 0 or done == self.epochs):
            self.write(done)


class StandingStatistics(keras.callbacks.Callback):
    """At a completed epoch's end, before its sample grid, evaluation and checkpoint, recompute the EMA
    generator's batch-norm statistics from its own activations (``training.ema_batch_norm: "standing"``,
    :func:`homogan.models.inference.standing_statistics`; the README's "EMA and batch norm" says what it
    gained). Keep it before those callbacks in the list.

    Only at epochs where something reads them: a multiple of one of ``every`` (the cadences of the sample
    grid, the checkpoint and the evaluation) or the last epoch. The statistics never feed back
    into training and are drawn from a seed of the epoch, so skipping the other epochs changes nothing —
    and saves a second per epoch where epochs are short (a small dataset: 62 steps per epoch at 1,000
    images)."""

    def __init__(self, label_pool, num_labels: int, one_hot: bool, seed: int, every=(1,), epochs: int | None = None):
        super().__init__()
        self.label_pool, self.num_labels, self.one_hot, self.seed = label_pool, num_labels, one_hot, seed
        self.every, self.epochs = tuple(e for e in every if e > 0), epochs

    def due(self, epoch: int) -> bool:
        done = epoch + 1
        return self.epochs is None or done >= self.epochs or any(done % e == 0 for e in self.every)

    def on_epoch_end(self, epoch, logs=None):
        ema = self.model.ema_generator
        if ema is None or self.model.ema_batch_norm != "standing" or not epoch_completed(self.model):
            return
        if self.due(epoch):
            inference.standing_statistics(ema, self.label_pool, self.num_labels, self.one_hot,
                                          seed=self.seed * 1_000_003 + epoch + 1)


class HistoryCSV(keras.callbacks.Callback):
    """``history.csv``: one row per epoch with every metric, wall time and images/s.

    Rows of epochs after ``initial_epoch`` (left by an interrupted run) are dropped on resume, so
    the file never has a gap or a duplicate epoch.
    """

    def __init__(self, path: Path, images_per_epoch: int, initial_epoch: int = 0):
        super().__init__()
        self.path, self.images_per_epoch = Path(path), images_per_epoch
        self.rows = [r for r in visualize.read_history(self.path) if r["epoch"] <= initial_epoch]
        self.started = 0.0
        self._images_done_before = 0  # of the next epoch, by an interrupted run (not timed here)

    def resume_within_epoch(self, steps_done: int, batch_size: int) -> None:
        """The next epoch continues an interrupted one after ``steps_done`` steps: its images/s counts the rest."""
        self._images_done_before = steps_done * batch_size

    def new_phase(self, images_per_epoch: int) -> None:
        """A schedule phase with another batch size begins: epochs now hold ``images_per_epoch`` images."""
        self.images_per_epoch = images_per_epoch

    def on_epoch_begin(self, epoch, logs=None):
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if not epoch_completed(self.model):
            return
        # Time spent by the Evaluation callback (which runs before this one) is not training time.
        seconds = time.perf_counter() - self.started - float((logs or {}).get("eval_seconds", 0.0))
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()},
               "seconds": seconds,
               "images_per_second": (self.images_per_epoch - self._images_done_before) / max(seconds, 1e-9)}
        self._images_done_before = 0
        self.rows.append(row)
        self.write()

    def write(self) -> None:
        columns = list(dict.fromkeys(k for row in self.rows for k in row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({k: (int(v) if k == "epoch" else f"{v:.6g}") for k, v in row.items()})
        with atomic_path(self.path) as tmp:
            tmp.write_text(buffer.getvalue(), encoding="utf-8")


class HistoryPlots(keras.callbacks.Callback):
    """Redraws ``losses.png`` and ``accuracy.png`` (``critic.png`` for a Wasserstein critic, ``ada.png``) from
    ``history.csv`` after an epoch — at most every ``min_seconds`` (a redraw costs a few tenths of a second,
    which short epochs of a small dataset would pay every few seconds), and always after the last epoch."""

    def __init__(self, history_path: Path, out_dir: Path, min_seconds: float = 30.0, clock=time.monotonic):
        super().__init__()
        self.history_path, self.out_dir = Path(history_path), Path(out_dir)
        self.min_seconds, self.clock = min_seconds, clock
        self.drawn_at, self.stale = None, False

    def _draw(self) -> None:
        visualize.plot_history(visualize.read_history(self.history_path), self.out_dir)
        self.drawn_at, self.stale = self.clock(), False

    def on_epoch_end(self, epoch, logs=None):
        if not epoch_completed(self.model):
            return
        self.stale = True
        last = epoch + 1 >= self.params.get("epochs", 0)
        if last or self.drawn_at is None or self.clock() - self.drawn_at >= self.min_seconds:
            self._draw()

    def on_train_end(self, logs=None):
        if self.stale:  # stopped early (a signal, non-finite losses): the plots show every epoch written
            self._draw()


class Checkpoints(keras.callbacks.Callback):
    """Saves G, D, both optimizers, the EMA generator, the RNG state and the epoch counter.

    See :mod:`homogan.checkpoints` for the atomic write and the retention rule.
    """

    def __init__(self, checkpoint: tf.train.Checkpoint, directory: Path, epoch_var: tf.Variable, every: int,
                 epochs: int, keep: int, keep_every: int = 0):
        super().__init__()
        self.checkpoint, self.directory, self.epoch_var = checkpoint, Path(directory), epoch_var
        self.every, self.epochs, self.keep, self.keep_every = every, epochs, keep, keep_every

    def on_epoch_end(self, epoch, logs=None):
        if not epoch_completed(self.model):
            return
        done = epoch + 1
        self.epoch_var.assign(done)
        if done % self.every == 0 or done == self.epochs:
            checkpoints.save(self.checkpoint, self.directory, done, self.keep, self.keep_every)


class Memorisation(keras.callbacks.Callback):
    """After every completed epoch, how D scores real images it trains on (``seen``), real images of the same
    distribution it never sees (``unseen``: what ``data.limit`` left out) and G's fakes, into the epoch's logs
    (so ``history.csv``, the plots and TensorBoard): ``d_acc_seen`` and ``d_acc_unseen``, the share of each it
    calls real, and ADA's validation heuristic ``ada_rv`` (:func:`homogan.metrics.overfitting_rv`). Why: D's
    accuracy near 1 says D wins, not why; a D that calls its training images real and unseen ones fake has
    memorised them — the measurement Karras et al. (2020) use to show the small-data failure.

    D and G are called as in the train step (training mode, batches of ``batch_size``, so batch norm sees
    batches like those it trains on — under several replicas the whole global batch at once, where each
    replica trains on its share), on the same images and latents every epoch; every
    non-trainable variable the calls move (batch-norm moving statistics, noise and dropout seed states, a
    power iteration's vector) is put back, so a measured run trains exactly as an unmeasured one."""

    def __init__(self, seen: tuple[np.ndarray, np.ndarray], unseen: tuple[np.ndarray, np.ndarray], batch_size: int,
                 latent_dim: int, seed: int):
        super().__init__()
        count = min(len(seen[0]), len(unseen[0])) // batch_size * batch_size
        self.seen = (seen[0][:count], seen[1][:count])
        self.unseen = (unseen[0][:count], unseen[1][:count])
        self.batch_size = batch_size
        self.z = np.random.default_rng([seed, 47]).standard_normal((count, latent_dim)).astype(np.float32)
        self._score = self._score_fake = None

    def describe(self) -> str:
        count = len(self.z)
        return (f"after every epoch D scores {count} of its training images, {count} real images it never trains on "
                f"and {count} fakes: d_acc_seen, d_acc_unseen, ada_rv (r_v)")

    def _logits(self, images=None, labels=None, z=None) -> np.ndarray:
        if self._score is None:  # one graph each (fixed batch shape): eager calls would cost ~10% of a short epoch
            d, g = self.model.discriminator, self.model.generator
            self._score = tf.function(lambda x, y: d(pixels.to_unit_range(x), y, training=True))
            self._score_fake = tf.function(lambda z, y: d(g(z, y, training=True), y, training=True))
        out = []
        for i in range(0, len(labels), self.batch_size):
            y = labels[i:i + self.batch_size]
            logits = self._score(images[i:i + self.batch_size], y) if z is None else self._score_fake(z[i:i + self.batch_size], y)
            out.append(np.asarray(logits, np.float32))
        return np.concatenate(out)

    def measure(self) -> dict:
        """{ada_rv, d_acc_seen, d_acc_unseen} of the model as it is now, leaving it as it was."""
        moved = [(v, np.array(v.numpy(), copy=True)) for net in (self.model.discriminator, self.model.generator)
                 for v in net.variables if not v.trainable]
        try:
            seen, unseen = self._logits(*self.seen), self._logits(*self.unseen)
            fake = self._logits(labels=self.seen[1], z=self.z)
        finally:
            for variable, value in moved:
                variable.assign(value)
        measured = {"ada_rv": metrics.overfitting_rv(seen, unseen, fake)}
        threshold = self.model.adversarial.decision_threshold
        if threshold is not None:  # a Wasserstein critic's sign means nothing; its r_v is still a ratio of means
            measured.update(d_acc_seen=float(np.mean(seen > threshold)), d_acc_unseen=float(np.mean(unseen > threshold)))
        return measured

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and len(self.z) and epoch_completed(self.model):
            logs.update(self.measure())


class OverfitWarning(keras.callbacks.Callback):
    """One warning line when D's accuracy stays ≥ 0.99 on real *and* on fake images for ``patience`` epochs in
    a row: the textbook small-data failure (Karras et al. 2020) — D has memorised the training set, and G's
    loss rises while its samples stop improving. Nothing in a run said so before. The keys it names fit the
    run: ADA's when ADA runs, spectral norm in D only where D has none (``spectral_norm``)."""

    def __init__(self, echo=print, patience: int = 3, ada_active: bool = False, spectral_norm: bool = False):
        super().__init__()
        self.echo, self.patience, self.ada_active, self.spectral_norm = echo, patience, ada_active, spectral_norm
        self.streak, self.warned = 0, False

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if "d_acc_real" not in logs or not epoch_completed(self.model):
            return
        sure = float(logs["d_acc_real"]) >= 0.99 and float(logs["d_acc_fake"]) >= 0.99
        self.streak = self.streak + 1 if sure else 0
        if self.streak >= self.patience and not self.warned:
            self.warned = True
            measured = f", r_t {float(logs['ada_rt']):.2f}" if "ada_rt" in logs else ""
            if "d_acc_unseen" in logs:  # measured on images it never trains on (Memorisation): say so
                measured += (f"; it calls {float(logs['d_acc_seen']):.0%} of its training images real and "
                             f"{float(logs['d_acc_unseen']):.0%} of unseen ones, r_v {float(logs['ada_rv']):.2f}")
            helps = ("a lower training.ada_target or a smaller training.ada_speed_images" if self.ada_active else
                     "training.ada_target (ADA, 0.6 in the paper)")
            if not self.spectral_norm:  # measured: D's accuracy stays near 0.8 with it (README "Small data")
                helps = ("model.discriminator.spectral_norm=true with model.discriminator.normalization=none "
                         f"(Miyato et al. 2018), {helps}")
            self.echo(f"warning: the discriminator has overfit — its accuracy is ≥ 0.99 on real and on fake images "
                      f"for {self.streak} epochs (epoch {epoch + 1}{measured}); it memorises the training set. What helps: "
                      f"{helps}, training.augment (DiffAugment), model.discriminator.dropout, or more images — compare FID "
                      f"with and without: on the synthetic faces an overfit D still gave the best generator (README "
                      f"\"Small data\")",
                      file=sys.stderr)


class CollapseWarning(keras.callbacks.Callback):
    """One warning line the first time an in-training evaluation finds G collapsed (its images far closer to each
    other than real images are, at a high precision: :func:`homogan.metrics.collapse_warning`). A collapsed G scores
    a precision near 1 and can show every requested attribute or class, so the numbers a run prints would look
    good; only the sample grid and recall said otherwise. Reads the logs the Evaluation callback filled."""

    def __init__(self, echo=print):
        super().__init__()
        self.echo, self.warned = echo, False

    def on_epoch_end(self, epoch, logs=None):
        message = metrics.collapse_warning(logs or {})
        if message and not self.warned and epoch_completed(self.model):
            self.warned = True
            self.echo(f"warning: {message} (epoch {epoch + 1})", file=sys.stderr)


class StopOnNonFinite(keras.callbacks.Callback):
    """Stops training at the first step whose losses are NaN or infinite, and remembers which."""

    def __init__(self, steps_per_epoch: int):
        super().__init__()
        self.steps_per_epoch = steps_per_epoch
        self.epoch = 0
        self.problem: str | None = None
        self._batch_offset = 0  # steps of the epoch done before this fit (a resumed, interrupted epoch)

    def resume_within_epoch(self, steps_done: int) -> None:
        """The next fit continues an interrupted epoch after ``steps_done`` steps (step numbers count them)."""
        self._batch_offset = steps_done

    def new_phase(self, steps_per_epoch: int) -> None:
        """A schedule phase with another batch size begins: epochs now have ``steps_per_epoch`` steps."""
        self.steps_per_epoch = steps_per_epoch

    def on_train_end(self, logs=None):
        self._batch_offset = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        bad = {k: float(v) for k, v in (logs or {}).items() if not math.isfinite(float(v))}
        if bad:
            step = self.epoch * self.steps_per_epoch + self._batch_offset + batch + 1
            self.problem = f"non-finite loss at epoch {self.epoch + 1}, step {step}: " + ", ".join(
                f"{k}={v}" for k, v in bad.items())
            self.model.stop_training = True


class Evaluation(keras.callbacks.Callback):
    """Every ``every`` epochs (and after the last): FID, KID, precision/recall and attribute-control
    accuracy of the generator (the EMA one when the GAN has it), see :mod:`homogan.evaluation`.

    The values go into ``logs``, so this callback must come *before* :class:`HistoryCSV` (and
    TensorBoard) in the list: they then land in ``history.csv``, the TensorBoard events and the
    report. ``eval_seconds`` is logged too, and HistoryCSV leaves it out of the epoch's training
    time. The best checkpoint by ``best_metric`` is kept as ``checkpoints/best.{index,data-*}``
    with ``checkpoints/best.json`` (epoch, metric, value, every metric), each file written under a
    temporary name and renamed; on resume the recorded best is read back from ``best.json``.
    The evaluator (classifier, feature extractor, real statistics) is built on the first
    ``on_train_begin`` by ``make_evaluator`` — training the classifier if it is not cached yet — and
    its protocol (how every value is measured) is written to ``protocol_path`` (the run's
    ``evaluation.json``).
    """

    def __init__(self, make_evaluator, every: int, epochs: int, best_metric: str, checkpoint: tf.train.Checkpoint,
                 directory: Path, epoch_var: tf.Variable, seed: int = 0, protocol_path: Path | None = None):
        super().__init__()
        self.protocol_path = protocol_path
        self.make_evaluator, self.evaluator = make_evaluator, None
        self.every, self.epochs, self.best_metric, self.seed = every, epochs, best_metric, seed
        self.checkpoint, self.directory, self.epoch_var = checkpoint, Path(directory), epoch_var
        self.best: float | None = None
        self.history: list[dict] = []

    def on_train_begin(self, logs=None):
        if self.evaluator is None:
            self.evaluator = self.make_evaluator()
        if self.protocol_path is not None:  # how every in-training value is measured (evaluation.json)
            import json

            from homogan.atomic import write_text

            generator = "ema_generator" if self.model.ema_generator is not None else "generator"
            write_text(self.protocol_path, json.dumps({**self.evaluator.protocol(seed=self.seed), "generator": generator},
                                                      indent=2) + "\n")
        saved = checkpoints.best_record(self.directory)
        if saved is not None and saved.get("metric") == self.best_metric:
            self.best = saved.get("value")

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        if not epoch_completed(self.model) or not (done % self.every == 0 or done == self.epochs):
            return
        generator = self.model.ema_generator if self.model.ema_generator is not None else self.model.generator
        result = self.evaluator.evaluate(generator, seed=self.seed)
        values = metrics.numeric(result)
        self.history.append({"epoch": done, **values})
        if logs is not None:
            logs.update(values)
        value = values.get(self.best_metric)
        collapsed = metrics.collapse_warning(values) is not None  # never "best": its precision and control look perfect
        if (value is not None and math.isfinite(value) and not collapsed
                and metrics.is_better(self.best_metric, value, self.best)):
            self.best = value
            self.epoch_var.assign(done)
            checkpoints.save_best(self.checkpoint, self.directory, {
                "epoch": done, "metric": self.best_metric, "value": value,
                "feature_extractor": result.get("feature_extractor"), "metrics": values})


class StopOnSignal(keras.callbacks.Callback):
    """Ctrl-C (SIGINT) or SIGTERM: finish the step under way, stop, and leave ``train`` to save the
    state at that step boundary (:func:`homogan.checkpoints.save_interrupted`).

    The handlers are installed for the duration of ``with StopOnSignal(...)`` only. A second Ctrl-C
    interrupts at once (KeyboardInterrupt); the last saved checkpoint then stays the one to resume.
    A signal during the last step of an epoch lets the epoch finish normally (its checkpoint, grid and
    history row are written) and stops after it. Keep this callback last: it must not mark an epoch
    as cut short before the other callbacks have handled its end.
    """

    def __init__(self, echo=print):
        super().__init__()
        self.echo = echo
        self.signum: int | None = None
        self._batch_offset = 0  # steps of the epoch done before this fit (a resumed, interrupted epoch)
        self.steps_done = 0  # of the current epoch, counting the offset
        self._previous: dict = {}

    def resume_within_epoch(self, steps_done: int) -> None:
        """The next epoch continues an interrupted one after ``steps_done`` steps (``steps_done`` counts them)."""
        self._batch_offset = steps_done

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                if signal.getsignal(signum) is not signal.SIG_IGN:  # e.g. `python main.py &` in a script
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
        return False

    def _handle(self, signum, frame):
        if self.signum is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # the second Ctrl-C: stop now
        self.signum = signum
        self.echo(f"\n{signal.Signals(signum).name}: stopping after this step and saving it "
                  f"(Ctrl-C again to stop at once)", file=sys.stderr)

    def on_epoch_begin(self, epoch, logs=None):
        self.steps_done = self._batch_offset

    def on_train_batch_end(self, batch, logs=None):
        self.steps_done = self._batch_offset + batch + 1
        if self.signum is not None and batch + 1 < self.params.get("steps", batch + 2):
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        self._batch_offset = 0
        if self.signum is not None:
            self.model.stop_training = True


class RestoreEpochMetrics(keras.callbacks.Callback):
    """Puts back the metric sums of an interrupted epoch when its resumed part begins, so the epoch's
    history row averages all its steps, as in an uninterrupted run (Keras resets metrics just before
    ``on_epoch_begin``)."""

    def __init__(self, states: dict):
        super().__init__()
        self.states = dict(states)

    def on_epoch_begin(self, epoch, logs=None):
        for metric in self.model.metrics:
            for variable, value in zip(metric.variables, self.states.pop(metric.name, [])):
                variable.assign(value)
        self.states.clear()  # only the first (the interrupted) epoch
