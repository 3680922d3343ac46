"""One training run: validate → open the data → make the run folder → build → fit → artifacts.

Order matters for trust: the config and the data are checked *before* the run folder exists, so a
bad input leaves nothing behind; the resolved config is the first file in the folder.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from homogan import checkpoints, device, precision, provenance
from homogan.config import Config, diff, doubts, mirror_symmetric
from homogan.data import sources
from homogan.errors import UserError, WriteError
from homogan.experiment import LOCK_FILE, RunDir, new_run_dir, open_run_dir, write_config
from homogan.runtime import import_tensorflow


@dataclass
class TrainResult:
    run: RunDir
    epochs_done: int
    history: list[dict]
    stopped: str | None = None  # why training stopped early (a non-finite loss), if it did
    interrupted: int | None = None  # the signal (SIGINT, SIGTERM) that stopped it at a step boundary, if any
    write_failed: str | None = None  # a file that could not be written (full disk, I/O error), and why


def sample_rows(label_names: list[str], one_hot: bool, columns: int, latent_dim: int, seed: int):
    """The fixed (z, labels, captions, rows) of the sample grid.

    Rows: every combination of up to 4 attributes (8 rows for 3), one row per class (up to 16) for
    one-hot classes, 8 fixed random combinations otherwise; no labels → 8 rows of fresh z.
    """
    from homogan.visualize import row_caption

    k = len(label_names)
    rng = np.random.default_rng(seed)
    if k == 0:
        rows, labels, captions = 8, np.zeros((8, 0), np.float32), None
    elif one_hot:
        rows = min(k, 16)
        labels = np.eye(k, dtype=np.float32)[:rows]
        captions = label_names[:rows]
    else:
        combos = list(itertools.product([0.0, 1.0], repeat=k)) if k <= 4 else rng.integers(0, 2, (8, k)).tolist()
        labels = np.asarray(combos, np.float32)
        rows = len(labels)
        captions = [row_caption(label_names, row) for row in labels]
    z_columns = rng.standard_normal((rows if k == 0 else 1, columns, latent_dim)).astype(np.float32)
    z = np.broadcast_to(z_columns, (rows, columns, latent_dim)).reshape(-1, latent_dim)
    return z, np.repeat(labels, columns, axis=0), captions, rows


@dataclass(frozen=True)
class Phase:
    """Epochs [start, end) (0-based) trained with one learning rate pair and one batch size."""

    start: int
    end: int
    g_learning_rate: float
    d_learning_rate: float
    batch_size: int


def schedule_phases(t, initial_epoch: int = 0) -> list[Phase]:
    """Split training into phases at ``training.schedule``'s epochs; each phase inherits the values of
    the phases before it (including those before ``initial_epoch``, so a resume picks up the
    schedule where it was)."""
    g_lr, d_lr, batch = t.g_optimizer.learning_rate, t.d_optimizer.learning_rate, t.batch_size
    starts = [0] + [p.epoch - 1 for p in t.schedule if 1 < p.epoch <= t.epochs] + [t.epochs]
    values = {0: (g_lr, d_lr, batch)}
    for p in t.schedule:
        g_lr = p.g_learning_rate or g_lr
        d_lr = p.d_learning_rate or d_lr
        batch = p.batch_size or batch
        values[p.epoch - 1] = (g_lr, d_lr, batch)
    phases = [Phase(a, b, *values[a]) for a, b in zip(starts, starts[1:]) if a < b]
    return [Phase(max(p.start, initial_epoch), p.end, p.g_learning_rate, p.d_learning_rate, p.batch_size)
            for p in phases if p.end > initial_epoch]


def _strategy(name: str):
    """The tf.distribute strategy for ``training.distribute`` (one-line UserError when it cannot exist here)."""
    import os

    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        try:
            cluster = json.loads(os.environ["TF_CONFIG"])
            cluster["cluster"], cluster["task"]["type"], cluster["task"]["index"]  # noqa: B018 (presence check)
        except (KeyError, TypeError, ValueError):
            raise UserError("training.distribute: \"multi_worker\" needs the TF_CONFIG environment variable as JSON "
                            "with \"cluster\" and \"task\" ({\"type\": \"worker\", \"index\": i}) for every worker "
                            "process; got " + (repr(os.environ["TF_CONFIG"][:60]) if "TF_CONFIG" in os.environ else "none"))
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except Exception as e:  # no TPU: ValueError, NotFoundError, RuntimeError… depending on the host
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
            raise UserError(f"training.distribute: \"tpu\" found no TPU on this machine ({first}); "
                            f"allowed here: \"none\", \"mirrored\", \"multi_worker\"") from None
        return tf.distribute.TPUStrategy(resolver)
    return tf.distribute.get_strategy()


def is_chief(strategy) -> bool:
    """True unless this process is a non-chief worker of a multi-worker cluster (TF_CONFIG): the chief is
    task ``chief``, or worker 0 when the cluster has no ``chief`` task."""
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    if not task_type:
        return True
    if task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and resolver.task_id == 0 and not has_chief


def _verbosity(progress: str) -> int:
    if progress == "auto":
        return 1 if sys.stdout.isatty() else 2
    return {"bar": 1, "epoch": 2, "none": 0}[progress]


def train(config: Config, resume: str | Path | None = None, force: bool = False, run_dir: Path | None = None,
          echo=print) -> TrainResult:
    """Train ``config``; with ``resume``, continue that run folder from its last checkpoint.

    The story, in named steps: check the resume → open the data → set up the device (strategy and
    precision) → open the run folder → build the GAN and restore it → fit the phases → finish. The run
    folder is locked (:meth:`homogan.experiment.RunDir.lock`) from the moment it is opened to the end.
    """
    with contextlib.ExitStack() as held:
        return _train(config, resume, force, run_dir, echo, held)


def _train(config: Config, resume, force: bool, run_dir, echo, held: contextlib.ExitStack) -> TrainResult:
    run = _check_resume(config, resume, force) if resume is not None else None
    source = sources.open_source(config)
    data = sources.training_data(config, source)
    t = config.training

    tf = import_tensorflow()
    import keras

    keras.utils.set_random_seed(config.experiment.seed)
    strategy = _strategy(t.distribute)
    # Resolved once, for the device this process trains on; the run folder's config keeps "auto".
    facts = device.read_facts(t.distribute)
    resolved = precision.resolve(t.precision, facts)
    run = _open_run_folder(config, run, run_dir, is_chief(strategy), held, echo)

    ada, ada_reason = ada_decision(config, data.num_images)
    with strategy.scope():
        gan = build_gan(with_precision(config, resolved.precision), len(data.label_names), ada=ada)
        epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        parts = checkpoints.training_parts(gan, epoch_var)
        checkpoint = tf.train.Checkpoint(**parts)
        if resume is not None:
            checkpoints.restore_training(parts, checkpoints.latest(run.checkpoints), echo)
    initial_epoch = int(epoch_var.numpy())
    # An interrupted run saved the state after `resume_step` steps of the next epoch, and its metric sums.
    resume_step, epoch_metrics = checkpoints.latest_step(run.checkpoints) if resume is not None else (0, {})
    if initial_epoch >= t.epochs:
        echo(f"{run.path}: already trained {initial_epoch} of {t.epochs} epochs; nothing to do")
        return TrainResult(run, initial_epoch, [])

    cbs = _make_callbacks(config, data, run, checkpoint, epoch_var, initial_epoch, echo, ada)
    _print_summary(echo, config, run, data, source, gan.generator, gan.discriminator, initial_epoch, resolved)
    echo(f"augment      {_mirror_summary(config)}; ADA {ada_reason}")
    if cbs.memorisation is not None:
        echo(f"memorisation {cbs.memorisation.describe()}")
    earlier = run.sessions()
    if earlier and earlier[-1]["precision"] != resolved.precision:
        echo(f"note: this run trained in {earlier[-1]['precision']} before (on {earlier[-1]['device']['device_class']}); "
             f"it continues in {resolved.summary()}")
    run.record_session({"initial_epoch": initial_epoch, "precision": resolved.precision,
                        "precision_reason": resolved.reason, "device": facts.to_dict(),
                        "code": provenance.code_version(), "ada": {"active": ada, "reason": ada_reason}})
    if resume_step:
        echo(f"resuming epoch {initial_epoch + 1} after step {resume_step} (interrupted there)")
    failed = None
    try:
        with cbs.stop:
            _fit_phases(gan, config, source, data, cbs, initial_epoch, resume_step, epoch_metrics, echo)
            if cbs.stop.signum is not None and not cbs.nonfinite.problem and int(epoch_var.numpy()) < t.epochs:
                _save_interrupted(cbs.stop, checkpoint, run, epoch_var, gan, data.steps_per_epoch, config.logging, echo)
    except WriteError as e:
        failed = e  # a full disk or an I/O error: stop at once; the last complete checkpoint stays the one to resume
    except Exception as e:
        if run.path.is_dir():
            raise
        raise WriteError(run.path, "the run folder no longer exists (removed while training?), so nothing more can "
                                   "be saved in it; train again") from e
    except KeyboardInterrupt:
        echo(f"\ninterrupted: {int(epoch_var.numpy())} of {t.epochs} epochs are saved in {run.checkpoints}; "
             f"continue with `python main.py --resume {run.path}`", file=sys.stderr)
        raise
    finally:
        frames = run.frames()
        if config.logging.gif and len(frames) > 1 and failed is None:
            from homogan.visualize import make_gif
            try:
                make_gif(frames, run.gif, config.logging.gif_fps)
            except WriteError as e:
                failed = e
    if failed is not None:
        saved = checkpoints.latest_epoch(run.checkpoints)
        then = (f"the last complete checkpoint (epoch {saved}) is in {run.checkpoints}; free space, then `python "
                f"main.py --resume {run.path}`" if saved is not None else
                "no checkpoint was written yet; free space, then train again")
        echo(f"stopped: {failed}; {then}", file=sys.stderr)
        return TrainResult(run, int(epoch_var.numpy()), cbs.history.rows, write_failed=str(failed))
    return _finish(run, t.epochs, int(epoch_var.numpy()), cbs, echo)


def _check_resume(config: Config, resume: str | Path, force: bool) -> RunDir:
    """The run folder to resume, refused when the config changed (unless ``force``) or nothing was saved.
    Read-only: a refused resume leaves the folder as it was."""
    run = open_run_dir(resume)
    saved = run.load_config()
    changes = [c for c in diff(saved.to_dict(), config.to_dict()) if c[0] != "training.epochs"]
    if changes and not force:
        shown = ", ".join(f"{k}: {json.dumps(a)} → {json.dumps(b)}" for k, a, b in changes[:3])
        raise UserError(f"--resume {str(resume)!r}: the config differs from the run's ({shown}); "
                        f"resume without changes, or pass --force")
    if checkpoints.latest(run.checkpoints) is None:
        raise UserError(f"--resume {str(resume)!r}: the run has no checkpoint to resume from")
    return run


def _prepare_resume(run: RunDir, echo) -> None:
    """Make the (locked, or private) run folder ready to continue: fall back from a damaged newest checkpoint
    (setting aside what came after it), then remove what a killed process left half-written (never the
    checkpoint the pointer names)."""
    fallback = checkpoints.fall_back_if_damaged(run.checkpoints, echo)
    if fallback is not None:
        moved = run.discard_after(fallback)
        echo(f"note: continuing after epoch {fallback}" + (f"; moved {', '.join(moved)}" if moved else ""))
    for f in run.remove_stale_temporaries() + checkpoints.remove_orphans(run.checkpoints):
        echo(f"removed {f.relative_to(run.path)} (left by an interrupted write)")


def _open_run_folder(config: Config, resumed: RunDir | None, run_dir: Path | None, chief: bool,
                     held: contextlib.ExitStack, echo) -> RunDir:
    """The folder this process writes, locked (:meth:`homogan.experiment.RunDir.lock`): the resumed run, a new
    run folder (config written first), or — on a non-chief worker of a multi-worker cluster — a private
    scratch folder removed at exit (a copy of the resumed run). Every worker runs the same callbacks
    (checkpoints and samples involve the replicated variables), but only the chief keeps a run folder."""
    if not chief:
        import atexit
        import shutil
        import tempfile

        scratch = Path(tempfile.mkdtemp(prefix="homogan-worker-"))
        atexit.register(shutil.rmtree, scratch, True)
        if resumed is not None:
            shutil.copytree(resumed.path, scratch / "run", ignore=shutil.ignore_patterns(LOCK_FILE))
            run = RunDir(scratch / "run")
            _prepare_resume(run, lambda *a, **k: None)  # the same fallback as the chief's, on the copy
            return run
        run = RunDir(scratch / "run")
    elif resumed is not None:
        held.enter_context(resumed.lock("training (resumed)", echo))
        _prepare_resume(resumed, echo)
        return resumed
    else:
        run = RunDir(run_dir) if run_dir is not None else new_run_dir(config.experiment.output_dir, config.experiment.name)
        run.path.mkdir(parents=True, exist_ok=True)
        held.enter_context(run.lock("training", echo))
    run.path.mkdir(parents=True, exist_ok=True)
    write_config(run, config)
    return run


@dataclass
class _Callbacks:
    """The callbacks of one training run, by role (the ones the training loop talks to are named)."""

    nonfinite: object  # homogan.callbacks.StopOnNonFinite
    history: object  # homogan.callbacks.HistoryCSV
    stop: object  # homogan.callbacks.StopOnSignal
    memorisation: object  # homogan.callbacks.Memorisation, or None
    all: list


def _make_callbacks(config: Config, data, run: RunDir, checkpoint, epoch_var, initial_epoch: int, echo,
                    ada: bool = False) -> _Callbacks:
    import keras

    from homogan import callbacks as cb

    t, lg = config.training, config.logging
    z, labels, captions, rows = sample_rows(data.label_names, config.data.class_conditional, lg.sample_columns,
                                            config.model.latent_dim, config.experiment.seed)
    nonfinite = cb.StopOnNonFinite(data.steps_per_epoch)
    history = cb.HistoryCSV(run.history, data.steps_per_epoch * data.batch_size, initial_epoch)
    stop = cb.StopOnSignal(echo)
    memorisation = memorisation_callback(config, data)
    every = [
        nonfinite,
        # Before the grid, the evaluation and the checkpoint: they all see the EMA generator's standing statistics.
        cb.StandingStatistics(data.source.labels, len(data.label_names), config.data.class_conditional,
                              config.experiment.seed, every=(lg.samples_every_epochs, lg.checkpoint_every_epochs,
                                                             config.evaluation.every_epochs), epochs=t.epochs),
        *_evaluation_callbacks(config, data, run, checkpoint, epoch_var, echo),  # before HistoryCSV: see there
        *([memorisation] if memorisation is not None else []),  # before HistoryCSV, which writes the row from the same logs
        history,
        cb.OverfitWarning(echo, ada_active=ada, spectral_norm=config.model.discriminator.spectral_norm),
        cb.CollapseWarning(echo),
        cb.HistoryPlots(run.history, run.path),
        cb.SampleGrid(run.samples, z, labels, rows, lg.sample_columns, captions, lg.samples_every_epochs, t.epochs,
                      run.tensorboard / "samples" if lg.tensorboard else None),
        cb.Checkpoints(checkpoint, run.checkpoints, epoch_var, lg.checkpoint_every_epochs, t.epochs,
                       lg.keep_checkpoints, lg.keep_every_epochs),
    ]
    if lg.tensorboard:
        every.append(keras.callbacks.TensorBoard(str(run.tensorboard), write_graph=False))
    every.append(stop)  # last: see there
    return _Callbacks(nonfinite, history, stop, memorisation, every)


def _fit_phases(gan, config: Config, source, data, cbs: _Callbacks, initial_epoch: int, resume_step: int,
                epoch_metrics: dict, echo) -> None:
    """``gan.fit`` over the schedule's phases (a phase = epochs with one batch size and learning rates), the
    rest of an interrupted epoch first, as its own fit of fewer steps."""
    from homogan import callbacks as cb  # TensorFlow-heavy: imported when training starts, not with the module
    from homogan.data import pipeline

    t = config.training

    def fit(start: int, end: int, skip: int = 0):
        """Epochs [start, end); the first ``skip`` steps of epoch ``start`` were trained before an
        interruption: its dataset skips those batches (same order, seeded by epoch)."""
        extra = []
        if skip:
            cbs.stop.resume_within_epoch(skip)
            cbs.nonfinite.resume_within_epoch(skip)
            cbs.history.resume_within_epoch(skip, data.batch_size)
            extra = [cb.RestoreEpochMetrics(epoch_metrics)]
        dataset = pipeline.make_dataset(config, data, start, end).skip(skip)
        gan.fit(dataset, epochs=end, initial_epoch=start, steps_per_epoch=data.steps_per_epoch - skip,
                callbacks=extra + cbs.all, verbose=_verbosity(config.logging.progress), shuffle=False)

    for phase in schedule_phases(t, initial_epoch):
        if t.schedule:
            data = sources.training_data(config, source, phase.batch_size)
            gan.set_global_batch_size(phase.batch_size)
            gan.g_optimizer.learning_rate = phase.g_learning_rate
            gan.d_optimizer.learning_rate = phase.d_learning_rate
            cbs.history.new_phase(data.steps_per_epoch * data.batch_size)
            cbs.nonfinite.new_phase(data.steps_per_epoch)
            echo(f"epochs {phase.start + 1}..{phase.end}: batch {phase.batch_size}, learning rates "
                 f"G {phase.g_learning_rate:g} D {phase.d_learning_rate:g}")
        start = phase.start
        if resume_step and start == initial_epoch:
            fit(start, start + 1, skip=min(resume_step, data.steps_per_epoch - 1))
            start += 1
            if gan.stop_training:
                return
        if start < phase.end:
            fit(start, phase.end)
        if gan.stop_training:
            return


def _finish(run: RunDir, epochs: int, done: int, cbs: _Callbacks, echo) -> TrainResult:
    """The result and the last line: done (where to look), stopped on a non-finite loss, or interrupted."""
    nonfinite, stop = cbs.nonfinite, cbs.stop
    if stop.signum is not None and not nonfinite.problem and done < epochs:
        return TrainResult(run, done, cbs.history.rows, interrupted=stop.signum)
    if nonfinite.problem:
        echo(f"stopped: {nonfinite.problem}; the last good checkpoint (epoch {done}) is in {run.checkpoints}",
             file=sys.stderr)
    else:
        plots = " / ".join(p.name for p in sorted(run.path.glob("*.png")))
        echo(f"done: {done} epochs; open {run.samples} and {run.gif.name}, plots {plots}, "
             f"`tensorboard --logdir {run.path.parent}`")
    return TrainResult(run, done, cbs.history.rows, nonfinite.problem)


def ada_decision(config: Config, num_images: int) -> tuple[bool, str]:
    """Whether adaptive discriminator augmentation runs for this data, and why (the run summary's line and
    ``run.json``): on when ``training.ada_target`` is set, the loss gives D's output a sign (not a Wasserstein
    critic) and the selection is small (fewer than ``training.ada_below_images``; 0 = always)."""
    from homogan import losses  # TensorFlow: not with the module (bad-input errors answer before it loads)

    t = config.training
    if t.ada_target is None:
        return False, "off (training.ada_target is null)"
    if losses.get(t.loss).decision_threshold is None:
        return False, "off: a Wasserstein critic's sign means nothing, so r_t cannot steer it"
    if t.ada_below_images and num_images >= t.ada_below_images:
        return False, f"off: {num_images:,} images, ADA is for fewer than training.ada_below_images {t.ada_below_images:,}"
    return True, (f"on: r_t steered to {t.ada_target:g}, p 0 → 1 over {t.ada_speed_images:,} images, every "
                  f"{t.ada_interval} D updates" + (f" ({num_images:,} images < {t.ada_below_images:,})"
                                                    if t.ada_below_images else ""))


def with_precision(config: Config, resolved: str) -> Config:
    """``config`` with ``training.precision`` replaced by the resolved value (what the networks are built in)."""
    return replace(config, training=replace(config.training, precision=resolved))


def build_gan(config: Config, num_labels: int, ada: bool = False):
    """The compiled GAN exactly as training runs it — G, D, the EMA copy, both optimizers (built) and the
    update rules of ``config`` — in ``training.precision`` (the global policy is set only while the
    networks are built, then restored) and under the current distribution scope. ``precision`` must be
    resolved (:func:`with_precision`); ``"auto"`` is refused. ``ada``: whether ADA runs
    (:func:`ada_decision` for the data)."""
    import keras

    from homogan.gan import GAN, rules_from_config
    from homogan.models import build_models
    from homogan.models.inference import ema_copy

    t = config.training
    if t.precision not in precision.PRECISIONS:
        raise ValueError(f"build_gan needs a resolved training.precision (one of {', '.join(precision.PRECISIONS)}). "
                         f"Received: {t.precision!r}")
    with precision.policy(t.precision):
        generator, discriminator = build_models(config, num_labels)
        ema = ema_copy(generator) if t.ema_decay is not None else None
    gan = GAN(generator, discriminator, ema_generator=ema, seed=config.experiment.seed)

    def adam(o):
        opt = keras.optimizers.Adam(o.learning_rate, beta_1=o.beta_1, beta_2=o.beta_2)
        return keras.optimizers.LossScaleOptimizer(opt) if t.precision == "mixed_float16" else opt

    g_opt, d_opt = adam(t.g_optimizer), adam(t.d_optimizer)
    # Built before fit (inside the strategy scope): lazily created slots fail inside a distributed step.
    g_opt.build(generator.trainable_variables)
    d_opt.build(discriminator.trainable_variables)
    gan.compile(g_opt, d_opt, **rules_from_config(t, mirror_symmetric(config), ada=ada), jit_compile=t.jit_compile)
    return gan


def _save_interrupted(stop, checkpoint, run, epoch_var, gan, steps_per_epoch, lg, echo) -> None:
    """After SIGINT/SIGTERM: save the state at the step boundary where training stopped, say how to resume."""
    done = int(epoch_var.numpy())
    if 0 < stop.steps_done < steps_per_epoch:
        path = checkpoints.save_interrupted(checkpoint, run.checkpoints, done, stop.steps_done,
                                            checkpoints.metric_states(gan))
        where = f"epoch {done + 1}, step {stop.steps_done} of {steps_per_epoch}"
    else:  # stopped at an epoch's end, which checkpoint_every_epochs may not have saved
        if checkpoints.latest_epoch(run.checkpoints) != done or checkpoints.latest_step(run.checkpoints)[0]:
            checkpoints.save(checkpoint, run.checkpoints, done, lg.keep_checkpoints, lg.keep_every_epochs)
        path, where = checkpoints.latest(run.checkpoints), f"the end of epoch {done}"
    echo(f"interrupted: saved {path} ({where}); continue with `python main.py --resume {run.path}`",
         file=sys.stderr)


def _discriminator_form(disc) -> str:
    """D's normalisation and spectral norm in words: null in the config means the labels decided them
    (``homogan.config``), so the summary is where a user sees which D trains."""
    norm = {"batch": "batch norm", "layer": "layer norm", "none": "no normalisation"}[disc.normalization]
    return f"{norm}, {'spectral norm' if disc.spectral_norm else 'no spectral norm'}"


def _passes(data) -> str:
    """How much of the selection an epoch covers, where that is not one pass: a small selection at a fixed
    ``training.steps_per_epoch`` is gone through several times an epoch, a large one only in part."""
    if data.passes_per_epoch == 1.0:
        return ""
    return f" ({data.passes_per_epoch:.3g} passes of the selection per epoch; training.steps_per_epoch)"


def _total_steps(t, data) -> str:
    """The steps of the whole run, where every epoch has the same number (no batch-size schedule)."""
    return "" if t.schedule else f" ({t.epochs * data.steps_per_epoch:,} steps in all)"


def _print_summary(echo, config, run, data, source, generator, discriminator, initial_epoch, resolved):
    tf = import_tensorflow()

    t, d = config.training, config.data
    gpus = tf.config.list_logical_devices("GPU")
    device = f"{len(gpus)} GPU(s)" if gpus else f"CPU ({len(tf.config.list_logical_devices('CPU'))} logical device(s))"
    labels = (f"{', '.join(data.label_names)}; D by {config.model.discriminator.conditioning}, G by "
              f"{config.model.generator.conditioning}" if data.label_names else "none (unconditional)")
    lines = [
        f"run folder   {run.path}",
        f"data         {d.source} {d.root}: {data.num_images} images at {d.image_size}px, "
        f"{data.steps_per_epoch} steps/epoch × {data.batch_size} images{_passes(data)}",
        f"selection    {'; '.join(source.log)}",
        f"conditioning {labels}",
        f"generator    {generator.count_params():,} parameters; discriminator {discriminator.count_params():,} "
        f"({_discriminator_form(config.model.discriminator)})",
        f"training     {t.loss} loss, G:D steps {t.g_steps}:{t.d_steps}, batch {t.batch_size}, "
        f"epochs {initial_epoch + 1}..{t.epochs}{_total_steps(t, data)}",
        f"device       {device}, precision {resolved.summary()}, XLA {'on' if t.jit_compile else 'off'}, "
        f"distribute {t.distribute}",
    ]
    lines += [f"warning      {line}" for line in doubts(config)]
    for line in lines:
        echo(line)


def _mirror_summary(config: Config) -> str:
    from homogan.data import pipeline

    if config.data.mirror is not None:
        return f"mirror {'on' if config.data.mirror else 'off'} (data.mirror)"
    return "mirror on (faces)" if pipeline.mirrored(config) else "mirror off (not assumed for this data; data.mirror)"


def memorisation_callback(config: Config, data):
    """The Memorisation callback when ``logging.memorisation_images`` > 0 and ``data.limit`` leaves real images out
    of training to score (:func:`homogan.data.sources.unseen_source`), with those images and as many training
    images decoded once here; else None."""
    count = config.logging.memorisation_images
    batch = config.training.batch_size
    unseen = sources.unseen_source(config, data.source, count) if count else None
    n = min(unseen.count, data.num_images) if unseen is not None else 0  # unseen_source returns at most `count`
    if n < batch:
        return None
    from homogan import callbacks as cb
    from homogan.data import pipeline

    def decoded(source) -> tuple[np.ndarray, np.ndarray]:
        images, labels = zip(*pipeline.decoded_images(config, source).as_numpy_iterator())
        return np.stack(images), np.stack(labels).astype(np.float32)

    seen = sources.Source(n, data.source.label_names, [], data.source.paths[:n], data.source.labels[:n])
    return cb.Memorisation(decoded(seen), decoded(unseen), batch, config.model.latent_dim, config.experiment.seed)


def _evaluation_callbacks(config, data, run, checkpoint, epoch_var, echo) -> list:
    """The Evaluation callback when ``evaluation.every_epochs`` > 0 (it must precede HistoryCSV, whose
    row is written from the same ``logs``)."""
    e = config.evaluation
    if e.every_epochs <= 0:
        return []
    from homogan import callbacks as cb
    from homogan.evaluation import Evaluator

    return [cb.Evaluation(lambda: Evaluator(config, data.label_names, echo=echo), e.every_epochs,
                          config.training.epochs, e.best_metric, checkpoint, run.checkpoints, epoch_var,
                          protocol_path=run.evaluation_protocol)]
