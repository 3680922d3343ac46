"""Everything about a run's checkpoints, in one place: what one holds, how it is written, read and kept.

**What a checkpoint holds** (:func:`training_parts`; the names are ``tf.train.Checkpoint`` keyword
arguments and stay stable, so old runs keep loading): ``generator``, ``discriminator``,
``g_optimizer``, ``d_optimizer`` (Adam slots and ``iterations``), ``rng`` (the GAN's seed state),
``last_g_loss``, ``epoch``, ``ema_generator`` (when EMA is on), ``*_weights`` (every weight of every
network, trainable or not: Keras 3 layers held in a plain list are not checkpoint dependencies, so
without these lists batch-norm statistics and the EMA generator were missing) and ``layer_rng`` (the
seed states of G's noise and D's dropout layers, which ``Layer.weights`` leaves out) and ``ada`` (ADA's p and
its interval's sums, when ADA is on). Readers restore
what an older checkpoint has and say what it lacks (:func:`restore_training`, :func:`restore_generator`).

**Writing.** ``tf.train.Checkpoint.write`` stores tensors by object path — no pickle — as
``checkpoints/epoch_XXXX.{index,data-*}``, and the ``latest.json`` pointer is renamed into place only
after a checkpoint is completely written, so a kill at any moment leaves the previous checkpoint as
the one a resume will load. Retention keeps the last ``keep`` plus every checkpoint whose epoch is a
multiple of ``keep_every`` (0 = none).

An interrupted run (Ctrl-C, SIGTERM) saves ``interrupted_eXXXX_sYYYYYY``: the state after step Y of
epoch X+1, with the epoch's metric sums in the pointer (:func:`metric_states`), so a resume continues
at that step with the same batches and the same epoch means as an uninterrupted run. The next epoch
checkpoint replaces it.

**The best checkpoint** (training-time evaluation): ``best.{index,data-*}`` plus ``best.json``
(epoch, metric, value, every metric), each file written under a temporary name and renamed
(:func:`save_best`).

TensorFlow is imported inside the functions that need it: listing or pruning checkpoints (``freeze``,
``--help``) stays free of it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

from homogan.atomic import write_text
from homogan.errors import UserError, WriteError

POINTER = "latest.json"
BEST = "best"


def prefix(directory: Path, epoch: int) -> Path:
    return Path(directory) / f"epoch_{epoch:04d}"


def saved_epochs(directory: Path) -> list[int]:
    found = {int(m.group(1)) for p in Path(directory).glob("epoch_*.index")
             if (m := re.fullmatch(r"epoch_(\d+)\.index", p.name))}
    return sorted(found)


def _pointer(directory: Path) -> dict | None:
    """``latest.json``: {"checkpoint": name, "epoch": n[, "step": k, "metrics": {...}]} of the last
    complete checkpoint, or None."""
    pointer = Path(directory) / POINTER
    if not pointer.is_file():
        return None
    return json.loads(pointer.read_text(encoding="utf-8"))


def latest(directory: Path) -> Path | None:
    """The prefix of the last completely written checkpoint, or None."""
    pointer = _pointer(directory)
    return None if pointer is None else Path(directory) / pointer["checkpoint"]


def latest_epoch(directory: Path) -> int | None:
    """The epoch of the last completely written checkpoint, or None."""
    pointer = _pointer(directory)
    return None if pointer is None else int(pointer["epoch"])


def latest_step(directory: Path) -> tuple[int, dict]:
    """(steps done of the epoch after ``latest_epoch``, that epoch's metric states) — (0, {}) unless
    the last checkpoint was written by an interrupted run."""
    pointer = _pointer(directory) or {}
    return int(pointer.get("step", 0)), dict(pointer.get("metrics", {}))


def saved_parts(path: Path | str) -> set[str]:
    """The top-level names (``tf.train.Checkpoint`` keyword arguments) a written checkpoint holds, so
    that readers can tell a checkpoint written before a part existed and restore what it has."""
    import tensorflow as tf

    return {key.split("/", 1)[0] for key in tf.train.load_checkpoint(str(path)).get_variable_to_shape_map()}


# --------------------------------------------------------------------------------------------
# Checksums: damage is found before TensorFlow reads a checkpoint


SIDECAR = ".sha256.json"


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(path: Path) -> list[Path]:
    """The files TensorFlow wrote for the checkpoint prefix ``path`` (index and data shards)."""
    return sorted(f for f in path.parent.glob(f"{path.name}.*") if not f.name.endswith(SIDECAR))


def _write(checkpoint, path: Path) -> dict:
    """``checkpoint.write(path)`` plus a sidecar with the SHA-256 of every file written; {name: digest}.

    A write that fails (a full disk, an I/O error) removes what it wrote and raises WriteError."""
    import tensorflow as tf

    try:
        checkpoint.write(str(path))
        files = {f.name: _digest(f) for f in _files(path)}
        write_text(path.with_name(path.name + SIDECAR), json.dumps({"files": files}, indent=1) + "\n")
    except (OSError, tf.errors.OpError) as e:
        for f in path.parent.glob(f"{path.name}.*"):
            f.unlink()
        if isinstance(e, WriteError):
            raise
        reason = getattr(e, "strerror", None) or str(getattr(e, "message", e)).strip().splitlines()[0][:200]
        raise WriteError(path, reason) from e
    return files


def damage(path: Path) -> str | None:
    """Why the checkpoint at prefix ``path`` cannot be trusted — a missing file, a file that does not match
    the checksum recorded when it was written, or TensorFlow failing to read a tensor — or None."""
    import tensorflow as tf

    path = Path(path)
    if not Path(f"{path}.index").is_file():
        return f"{path.name}.index is missing"
    sidecar = path.with_name(path.name + SIDECAR)
    if sidecar.is_file():
        for name, digest in json.loads(sidecar.read_text(encoding="utf-8"))["files"].items():
            f = path.parent / name
            if not f.is_file():
                return f"{name} is missing"
            if _digest(f) != digest:
                return f"{name} does not match its checksum"
    try:  # checkpoints from before the checksums: let TensorFlow read every tensor
        reader = tf.train.load_checkpoint(str(path))
        for key in reader.get_variable_to_shape_map():
            reader.get_tensor(key)
    except Exception as e:  # noqa: BLE001 (any failure to read means: do not resume from it)
        return "TensorFlow cannot read it (" + str(e).strip().splitlines()[0][:120] + ")"
    return None


def fall_back_if_damaged(directory: Path, echo=print) -> int | None:
    """Before a resume: if the checkpoint ``latest.json`` names is damaged, point it at the newest epoch
    checkpoint that is whole and return that epoch (the caller discards what came after); None when the
    latest is whole. One line says what was found; a run with no whole checkpoint is a UserError."""
    directory = Path(directory)
    pointer = _pointer(directory)
    named = directory / pointer["checkpoint"]
    why = damage(named)
    if why is None:
        return None
    for epoch in reversed(saved_epochs(directory)):
        candidate = prefix(directory, epoch)
        if candidate == named or (epoch >= int(pointer["epoch"]) and named.name.startswith("epoch_")):
            continue
        if damage(candidate) is None:
            write_text(directory / POINTER, json.dumps({"checkpoint": candidate.name, "epoch": epoch}) + "\n")
            echo(f"note: checkpoint {named.name} is damaged ({why}); resuming from {candidate.name} instead")
            return epoch
    raise UserError(f"{named}: the checkpoint is damaged ({why}) and no earlier checkpoint of the run is whole; "
                    f"the run cannot be resumed (start it again)")


def save_interrupted(checkpoint, directory: Path, epoch: int, step: int, metrics: dict) -> Path:
    """Write the mid-epoch state after ``step`` steps of epoch ``epoch + 1`` and point ``latest`` at it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"interrupted_e{epoch:04d}_s{step:06d}"
    _write(checkpoint, path)
    write_text(directory / POINTER, json.dumps({"checkpoint": path.name, "epoch": epoch, "step": step,
                                                "metrics": metrics}) + "\n")
    _remove_interrupted(directory, keep=path.name)
    return path


def _remove_interrupted(directory: Path, keep: str | None = None) -> None:
    for f in Path(directory).glob("interrupted_*"):
        if keep is None or not f.name.startswith(keep + "."):
            f.unlink()


def save(checkpoint, directory: Path, epoch: int, keep: int, keep_every: int = 0) -> Path:
    """Write the checkpoint for ``epoch``, point ``latest`` at it, then prune old ones."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = prefix(directory, epoch)
    _write(checkpoint, path)
    write_text(directory / POINTER, json.dumps({"checkpoint": path.name, "epoch": epoch}) + "\n")
    _remove_interrupted(directory)  # superseded: the pointer no longer names it
    epochs = saved_epochs(directory)
    kept = set(epochs[-keep:]) | {e for e in epochs if keep_every and e % keep_every == 0}
    for old in epochs:
        if old not in kept:
            for f in directory.glob(f"{prefix(directory, old).name}.*"):
                f.unlink()
    return path


def remove_orphans(directory: Path) -> list[Path]:
    """Delete what a killed run left in ``directory`` that no pointer names: checkpoints of epochs after the
    latest complete one (written when the kill came), a superseded interrupted one, TF's temporary
    folders. The pointer's own checkpoint is never touched. Returns what was removed."""
    directory = Path(directory)
    pointer = _pointer(directory)
    if pointer is None:
        return []
    named, epoch = pointer["checkpoint"], int(pointer["epoch"])
    removed = []
    for f in directory.iterdir():
        stem = f.name.split(".")[0]
        m = re.fullmatch(r"epoch_(\d+)", stem)
        orphan = ((m is not None and int(m.group(1)) > epoch) or (stem.startswith("interrupted_") and stem != named)
                  or "_temp" in f.name)
        if orphan and stem != named:
            if f.is_dir():
                shutil.rmtree(f)
            else:
                f.unlink()
            removed.append(f)
    return removed


# --------------------------------------------------------------------------------------------
# What a checkpoint holds


def network_weights(generator, discriminator=None, ema=None) -> dict:
    """``tf.train.Checkpoint`` parts holding every weight (trainable or not) of each network, by position:
    ``generator_weights``, ``discriminator_weights``, ``ema_generator_weights``."""
    parts = {"generator_weights": list(generator.weights)}
    if discriminator is not None:
        parts["discriminator_weights"] = list(discriminator.weights)
    if ema is not None:
        parts["ema_generator_weights"] = list(ema.weights)
    return parts


def random_layer_states(*networks) -> list:
    """The seed states of the networks' random layers (G's Gaussian noise, D's dropout), by position.

    ``Layer.weights`` leaves seed generators out, so checkpoints hold them separately (``layer_rng``):
    without them a resumed run would replay those layers' draws from step 0 instead of continuing.
    """
    states = []
    for net in networks:
        weights = {id(w) for w in net.weights}
        states += [v for v in net.variables if id(v) not in weights]
    return states


def training_parts(gan, epoch_var) -> dict:
    """Everything an exact resume needs, as ``tf.train.Checkpoint`` keyword arguments (see the module docstring)."""
    g, d, ema = gan.generator, gan.discriminator, gan.ema_generator
    parts = dict(generator=g, discriminator=d, g_optimizer=gan.g_optimizer, d_optimizer=gan.d_optimizer,
                 rng=gan.seed_generator.state, last_g_loss=gan.last_g_loss, epoch=epoch_var)
    if ema is not None:
        parts["ema_generator"] = ema
    parts.update(network_weights(g, d, ema))
    layer_rng = random_layer_states(g, d)
    if layer_rng:
        parts["layer_rng"] = layer_rng
    if gan.ada_target is not None:  # ADA's p and its interval's sums: a resume continues the adaptation
        parts["ada"] = [gan.ada_p, gan.ada_sign_sum, gan.ada_seen, gan.ada_updates]
    return parts


def restore_training(parts: dict, path: Path | str, echo=print) -> None:
    """Restore ``parts`` (:func:`training_parts`) from the checkpoint at ``path``, or from an older one what it
    holds, saying in one line each what starts afresh."""
    import tensorflow as tf

    saved = saved_parts(path)
    readable = dict(parts)
    if "generator_weights" not in saved:
        # Written before checkpoints listed every weight: restore what it holds (the trainable weights).
        readable = {k: v for k, v in readable.items() if not k.endswith("_weights")}
        echo(f"note: {path} predates full-weight checkpoints: batch-norm statistics"
             f"{' and the EMA generator' if 'ema_generator' in parts else ''} start afresh")
    if "layer_rng" in parts and "layer_rng" not in saved:
        del readable["layer_rng"]
        echo(f"note: {path} predates saved noise/dropout states: those draws restart from the seed")
    if "ada" in parts and "ada" not in saved:
        del readable["ada"]
        echo(f"note: {path} holds no ADA state (trained without ADA): p starts at 0")
    tf.train.Checkpoint(**readable).read(str(path)).assert_existing_objects_matched()


def restore_generator(path: Path | str, generator, ema=None, echo=print):
    """Restore the generator (and its EMA copy) from the checkpoint at ``path``; returns (ema or None, epoch).

    A checkpoint written before full-weight checkpoints holds only G's trainable weights (through G's
    optimizer): those are restored, the EMA is dropped, and one line says so."""
    import keras
    import tensorflow as tf

    epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
    if "generator_weights" in saved_parts(path):
        parts = {"generator": generator, **network_weights(generator, ema=ema), "epoch": epoch}
        if ema is not None:
            parts["ema_generator"] = ema
        status = tf.train.Checkpoint(**parts).read(str(path)).expect_partial()
        try:
            status.assert_existing_objects_matched()
        except AssertionError as e:
            raise UserError(f"{path}: the checkpoint does not match the run's config.json "
                            f"({str(e).splitlines()[0][:160]})") from None
        return ema, int(epoch.numpy())
    optimizer = keras.optimizers.Adam()
    optimizer.build(generator.trainable_variables)
    tf.train.Checkpoint(generator=generator, g_optimizer=optimizer, epoch=epoch).read(str(path)).expect_partial()
    echo(f"note: {path} predates full-weight checkpoints: restored the generator's trainable weights only "
         f"(no batch-norm statistics{', no EMA weights' if ema is not None else ''}); images may differ from "
         f"the run's sample grids")
    return None, int(epoch.numpy())


def metric_states(model) -> dict:
    """{metric name: [variable values]} of ``model``'s metrics: what an interrupted checkpoint's pointer holds."""
    import numpy as np

    return {m.name: [np.asarray(v).tolist() for v in m.variables] for m in model.metrics}


def find(directory: Path, which: str, run_name: str = "the run") -> Path:
    """The prefix of the ``latest`` or the ``best`` checkpoint in ``directory``, or a one-line UserError."""
    directory = Path(directory)
    if which == "best":
        path = directory / BEST
        if not Path(f"{path}.index").is_file():
            raise UserError(f"{run_name}: no best checkpoint ({path}.index); it is kept only when the run trains "
                            f"with evaluation.every_epochs > 0 (use the latest checkpoint instead)")
        return path
    if which == "latest":
        path = latest(directory)
        if path is None or not Path(f"{path}.index").is_file():
            raise UserError(f"{run_name}: no checkpoint in {directory} (train the run first, or wait for its "
                            f"first checkpoint)")
        return path
    raise UserError(f"--checkpoint {which!r}: allowed: latest, best")


# --------------------------------------------------------------------------------------------
# The best checkpoint


def best_record(directory: Path) -> dict | None:
    """``best.json`` of ``directory`` (epoch, metric, value, checkpoint, feature extractor, metrics), or None."""
    path = Path(directory) / f"{BEST}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def save_best(checkpoint, directory: Path, record: dict) -> None:
    """Write ``checkpoint`` as ``best.*`` and ``record`` as ``best.json``, each atomically (index file last)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f"{BEST}.tmp-{os.getpid()}"
    checkpoint.write(str(tmp))
    written = sorted(directory.glob(f"{tmp.name}.*"), key=lambda p: p.suffix == ".index")  # index last
    targets = [directory / (BEST + f.name[len(tmp.name):]) for f in written]
    for f, target in zip(written, targets):
        os.replace(f, target)
    for stale in directory.glob(f"{BEST}.data-*"):
        if stale not in targets:
            stale.unlink()
    write_text(directory / f"{BEST}.json", json.dumps({**record, "checkpoint": BEST}, indent=2) + "\n")
