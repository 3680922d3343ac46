"""Prepared shards: the selected images of a data config, decoded, cropped and resized once, stored as raw uint8.

Why: the first epoch of every run decodes, crops and resizes every JPEG again (CelebA: 200k JPEGs, minutes of
CPU per run). ``python -m homogan prepare`` runs the training pipeline's own :func:`homogan.data.decode.decode`
once and stores exactly what it produced, so later runs only read bytes.

**Format**: raw uint8 ``.npy`` shards (``images-00000.npy``: shape (n, size, size, channels), one 128-byte header)
with the labels beside them (``labels-00000.npy``), read by ``tf.data.FixedLengthRecordDataset``. That is the
cheapest thing tf.data can stream: a record boundary is arithmetic (no length prefix, no CRC, no protobuf to
parse, unlike TFRecord + ``tf.train.Example``), a record *is* the image (``decode_raw`` is one copy), the reads
are large and sequential, and the files stay plain NumPy arrays (``np.load(..., mmap_mode="r")`` to inspect).

**Order**: the shards hold the images in the source's fixed order (:func:`homogan.data.sources.open_source`), cut
into blocks of ``BLOCK`` images dealt round-robin to the shards; :func:`read` reads whole blocks and interleaves
the shards' blocks round-robin, in parallel with ``deterministic=True``, which restores exactly that order. So the
per-epoch shuffle of :func:`homogan.data.pipeline.make_dataset` (order depends only on (seed, epoch)) sees the same
sequence from shards as from JPEGs, and a resumed run sees the same batches either way.

**Key**: :func:`homogan.data.cache.dataset_identity` (source, size, crop, channels, contents), the selection keys, a
fingerprint of the selected files in their order (named relative to ``data.root``) with their labels (so the
seed-dependent order, balance and limit are covered exactly), the modification times of the image folders, the
source code of ``decode`` (and what it calls) and the TensorFlow version: a prepared folder is used only if it holds
exactly what decoding would give.

**Atomic**: written into ``.<key>.tmp-<pid>/`` and renamed to ``<key>/`` when complete, with ``manifest.json``
written last; a folder without a valid manifest, or with a shard of the wrong size, is never used.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import os
import shutil
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np

from homogan.atomic import write_text
from homogan.data import sources
from homogan.runtime import import_tensorflow
from homogan.data.cache import cache_dir, dataset_identity, selection, short_hash

#: Bump when the layout or the meaning of the files changes: old folders are then simply not found.
PREPARED_VERSION = 1
FORMAT = "npy-uint8-round-robin-blocks"
#: Consecutive images of the source order kept together in one shard (the interleave block length): long
#: sequential reads, few hand-overs between reader threads.
BLOCK = 64
#: Shards are sized to about this many bytes, between MIN_SHARDS and MAX_SHARDS of them (parallel reads).
SHARD_BYTES = 256 << 20
MIN_SHARDS, MAX_SHARDS = 2, 16
#: Every shard's .npy header is padded to this fixed size, so it can be written last (the count is known at the
#: end) and the reader skips the same number of bytes in every file.
HEADER_BYTES = 128
MANIFEST = "manifest.json"
DECODE_FILE = Path(__file__).with_name("decode.py")

_announced: set[str] = set()


def prepared_root(config) -> Path:
    """``<evaluation.cache_dir or <data.root>/.homogan>/prepared``: beside the other per-dataset caches."""
    return cache_dir(config) / "prepared"


def decode_fingerprint() -> str:
    """Hash of the source of :func:`homogan.data.decode.decode` and the module functions it calls (read with
    ``ast``, no TensorFlow import): a change to decoding invalidates the shards, a change elsewhere does not.
    (It moved from pipeline.py to decode.py unchanged, so shards prepared before the move stay valid.)"""
    text = DECODE_FILE.read_text(encoding="utf-8")
    functions = {n.name: n for n in ast.parse(text).body if isinstance(n, ast.FunctionDef)}
    todo, seen, parts = ["decode"], set(), []
    while todo:
        name = todo.pop()
        if name in seen or name not in functions:
            continue
        seen.add(name)
        parts.append(ast.get_source_segment(text, functions[name]) or "")
        todo.extend(n.id for n in ast.walk(functions[name]) if isinstance(n, ast.Name))
    return hashlib.sha1("\n".join(sorted(parts)).encode()).hexdigest()[:12]


def _tensorflow_version() -> str:
    try:
        return metadata.version("tensorflow")
    except metadata.PackageNotFoundError:
        return "unknown"


def _files_fingerprint(source, root) -> dict | None:
    """The selected files in their order, their labels, and their folders' modification times (a file added,
    removed or renamed changes its folder's mtime). None for tfds records (their order is fixed by tfds).

    Names are taken relative to ``data.root``, as :func:`homogan.data.cache.dataset_identity` takes them: a
    project moved elsewhere (its cache moves with ``data.root``) keeps its prepared shards, where its absolute
    paths made every move a rebuild."""
    if source.paths is None:
        return None
    names = [os.path.relpath(p, root) for p in source.paths]
    h = hashlib.sha1("\n".join(names).encode())
    labels = np.ascontiguousarray(source.labels)
    h.update(str((labels.shape, labels.dtype.str)).encode())
    h.update(labels.tobytes())
    folders = sorted({os.path.dirname(p) for p in source.paths})
    mtimes = hashlib.sha1("\n".join(f"{os.path.relpath(f, root)}:{os.stat(f).st_mtime_ns}"
                                     for f in folders).encode()).hexdigest()[:12]
    return {"paths_and_labels": h.hexdigest()[:16], "folders": len(folders), "folder_mtimes": mtimes}


def spec(config, source) -> dict:
    """Everything that determines the prepared images, their labels and their order."""
    return {"dataset": dataset_identity(config), "selection": selection(config), "count": source.count,
            "label_names": list(source.label_names), "files": _files_fingerprint(source, config.data.root),
            "decode": decode_fingerprint(), "tensorflow": _tensorflow_version(), "version": PREPARED_VERSION}


def key(config, source) -> str:
    d = config.data
    return f"{d.source}-{d.image_size}px-{d.channels}ch-n{source.count}-{short_hash(spec(config, source))}"


def _npy_header(shape: tuple, dtype: str) -> bytes:
    """A version 1.0 .npy header for a C-order array, padded with spaces to exactly HEADER_BYTES."""
    text = f"{{'descr': '{dtype}', 'fortran_order': False, 'shape': {shape!r}, }}"
    pad = HEADER_BYTES - 10 - len(text) - 1
    if pad < 0:
        raise ValueError(f"shape {shape} does not fit a {HEADER_BYTES}-byte header")
    header = text + " " * pad + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode("latin1")


def _valid(folder: Path, expected_key: str) -> dict | None:
    """The manifest of a complete prepared folder for ``expected_key``, else None."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("key") != expected_key or manifest.get("format") != FORMAT:
        return None
    try:
        record = int(np.prod(manifest["image_shape"]))
        width = int(np.prod(manifest["label_shape"])) * np.dtype(manifest["label_dtype"]).itemsize
        for shard in manifest["shards"]:
            if (folder / shard["images"]).stat().st_size != HEADER_BYTES + shard["count"] * record:
                return None
            if (folder / shard["labels"]).stat().st_size != shard["labels_header_bytes"] + shard["count"] * width:
                return None
    except (OSError, KeyError, TypeError, ValueError):  # a file missing, or a manifest not written by this module
        return None
    return manifest


def find(config, source) -> tuple[Path, dict] | None:
    """(folder, manifest) of the complete prepared shards for ``config``'s data and ``source``'s selection, or
    None (also with ``data.prepared: "off"``). No TensorFlow needed."""
    if config.data.prepared == "off":
        return None
    k = key(config, source)
    folder = prepared_root(config) / k
    manifest = _valid(folder, k)
    return None if manifest is None else (folder, manifest)


def describe(folder: Path, manifest: dict) -> str:
    return (f"prepared shards {folder} ({manifest['count']} images, {len(manifest['shards'])} shards, written in "
            f"{manifest['seconds']:.0f} s on {manifest['created'][:10]})")


def announce(folder: Path, manifest: dict, echo=print) -> None:
    """Say once per process and folder that training reads prepared shards instead of decoding images."""
    if str(folder) not in _announced:
        _announced.add(str(folder))
        echo(f"input: {describe(folder, manifest)}; no image decoding (data.prepared: \"off\" to decode)")


# --------------------------------------------------------------------------------------------
# Reading (TensorFlow)


def read(folder: Path, manifest: dict):
    """(uint8 image, label) in the source's order, read from the shards in parallel.

    Each shard is read as whole blocks (``BLOCK`` records batched, then one ``decode_raw`` per block), the shards'
    blocks are interleaved round-robin in parallel, and only then split into images: handing single images between
    the interleave's reader threads cost about 3.5x the wall time (measured: 1,900 vs 6,700 images/s at 128 px)."""
    import tensorflow as tf

    shape = tuple(manifest["image_shape"])
    label_shape = tuple(manifest["label_shape"])
    label_dtype = tf.as_dtype(np.dtype(manifest["label_dtype"]))
    record = int(np.prod(shape))
    label_bytes = int(np.prod(label_shape)) * label_dtype.size
    block = manifest["block"]
    shards = manifest["shards"]
    files = tf.data.Dataset.from_tensor_slices((
        [str(folder / s["images"]) for s in shards], [str(folder / s["labels"]) for s in shards],
        tf.constant([s["labels_header_bytes"] for s in shards], tf.int64)))

    # Plain graph code, no Python control flow on tensors: AutoGraph has nothing to convert.
    plain = tf.autograph.experimental.do_not_convert

    @plain
    def image_block(raw):
        return tf.reshape(tf.io.decode_raw(raw, tf.uint8), (-1,) + shape)

    @plain
    def label_block(raw):
        return tf.reshape(tf.io.decode_raw(raw, label_dtype), (-1,) + label_shape)

    @plain
    def blocks(images_file, labels_file, labels_header):
        # Every block of a shard but its last is full, so batching its records by BLOCK gives back its blocks.
        images = tf.data.FixedLengthRecordDataset(images_file, record, header_bytes=HEADER_BYTES).batch(block)
        images = images.map(image_block)
        if label_bytes == 0:
            return images
        labels = tf.data.FixedLengthRecordDataset(labels_file, label_bytes, header_bytes=labels_header).batch(block)
        return tf.data.Dataset.zip((images, labels.map(label_block)))

    interleaved = files.interleave(blocks, cycle_length=len(shards), block_length=1,
                                   num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).unbatch()
    if label_bytes == 0:  # zero-width labels join after unbatch: unbatching an (n, 0) tensor segfaults TF 2.21
        no_labels = tf.data.Dataset.from_tensors(tf.zeros(label_shape, label_dtype)).repeat()
        return tf.data.Dataset.zip((interleaved, no_labels))
    return interleaved


# --------------------------------------------------------------------------------------------
# Writing


def _num_shards(count: int, image_bytes: int) -> int:
    blocks = max(1, math.ceil(count / BLOCK))
    wanted = math.ceil(count * image_bytes / SHARD_BYTES)
    return max(1, min(blocks, MAX_SHARDS, max(MIN_SHARDS, wanted)))


def _progress_verbosity(config) -> int:
    mode = config.logging.progress
    if mode == "auto":
        return 1 if sys.stdout.isatty() else 2
    return {"bar": 1, "epoch": 2, "none": 0}[mode]


def prepare(config, echo=print, num_shards: int | None = None) -> tuple[Path, dict, bool]:
    """Write the prepared shards of ``config``'s data unless a complete folder exists: (folder, manifest, fresh).

    Raises DataError for missing or malformed data before anything is written."""
    source = sources.open_source(config)  # DataError here: nothing written yet
    k = key(config, source)
    root = prepared_root(config)
    final = root / k
    manifest = _valid(final, k)
    if manifest is not None:
        return final, manifest, False

    tf = import_tensorflow()
    import keras

    from homogan.data import decode  # TensorFlow: only when shards are written (find() and the key need none)

    d = config.data
    shape = (d.image_size, d.image_size, d.channels)
    record = int(np.prod(shape))
    shards = num_shards or _num_shards(source.count, record)
    # The pipeline's own decode, in the source's order: the shards hold exactly what training would decode.
    batches = decode.decoded_dataset(config, source).batch(BLOCK).prefetch(tf.data.AUTOTUNE)

    echo(f"preparing {source.count} images ({d.image_size}x{d.image_size}x{d.channels}, {len(source.label_names)} "
         f"labels) into {final} ({shards} shards)")
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{k}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    started = time.perf_counter()
    try:
        names = [f"images-{j:05d}.npy" for j in range(shards)]
        files = [open(tmp / name, "wb") for name in names]
        counts, labels = [0] * shards, [[] for _ in range(shards)]
        try:
            for f in files:
                f.write(b"\0" * HEADER_BYTES)  # the real header (with the count) is written at the end
            bar = keras.utils.Progbar(source.count, unit_name="image", verbose=_progress_verbosity(config))
            done = 0
            for block, (x, y) in enumerate(batches):
                j = block % shards
                x = x.numpy()
                files[j].write(np.ascontiguousarray(x, np.uint8).tobytes())
                counts[j] += len(x)
                labels[j].append(y.numpy())
                done += len(x)
                bar.update(done)
            for f, n in zip(files, counts):
                f.seek(0)
                f.write(_npy_header((n,) + shape, "|u1"))
                f.flush()
                os.fsync(f.fileno())
        finally:
            for f in files:
                f.close()
        label_shape = tuple(batches.element_spec[1].shape[1:])
        label_dtype = np.dtype(batches.element_spec[1].dtype.as_numpy_dtype)
        entries = []
        for j, name in enumerate(names):
            lab = np.concatenate(labels[j]) if labels[j] else np.zeros((0,) + label_shape, label_dtype)
            lab_name = f"labels-{j:05d}.npy"
            np.save(tmp / lab_name, np.ascontiguousarray(lab, label_dtype.newbyteorder("<")))
            with open(tmp / lab_name, "rb") as f:
                np.lib.format.read_magic(f)
                np.lib.format.read_array_header_1_0(f)
                header = f.tell()
            entries.append({"images": name, "labels": lab_name, "count": counts[j], "labels_header_bytes": header})
        seconds = time.perf_counter() - started
        total = sum(counts)
        manifest = {"key": k, "format": FORMAT, "count": total, "image_shape": list(shape), "image_dtype": "uint8",
                    "label_names": list(source.label_names), "label_shape": list(label_shape),
                    "label_dtype": label_dtype.newbyteorder("<").str, "block": BLOCK, "shards": entries,
                    "seconds": round(seconds, 3), "images_per_second": round(total / max(seconds, 1e-9), 1),
                    "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "selection_log": list(source.log), "spec": spec(config, source)}
        write_text(tmp / MANIFEST, json.dumps(manifest, indent=2))  # last (fsynced): marks the folder complete
        if final.exists():  # left by an older, broken write (a valid one returned above): replace it
            shutil.rmtree(final)
        try:
            os.rename(tmp, final)
        except OSError:
            if _valid(final, k) is None:  # not a concurrent `prepare` that finished first
                raise
        return final, _valid(final, k) or manifest, True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
