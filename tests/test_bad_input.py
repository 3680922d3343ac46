"""The bad-input catalogue, in one place: every case goes through the command line (``homogan.cli.main``)
and must be answered by ONE line that names the file / key / value and what is allowed, exit code 2,
no traceback, and nothing written.

``python tests/test_bad_input.py`` prints the catalogue as Markdown with the real messages
(docs/bad-input.md is that output; a test keeps it current).
"""

from __future__ import annotations

import io
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import ROOT  # noqa: E402

TINY = ["data.synthetic_images=240", "data.image_size=32", "model.latent_dim=16", "model.generator.width=8",
        "model.discriminator.width=8", "training.batch_size=8", "training.epochs=1", "training.steps_per_epoch=2",
        "logging.progress=none", "logging.tensorboard=false"]


@dataclass
class Ctx:
    """What a case may use: a scratch folder, the synthetic data's parent, a CelebA-layout copy maker, a run."""

    tmp: Path
    synthetic_root: Path
    celeba_dir: Path
    run: Path

    def sets(self, *items: str) -> list[str]:
        return [a for item in items for a in ("--set", item)]

    def train(self, *items: str, root: Path | None = None, source: str = "synthetic") -> list[str]:
        root = root or self.synthetic_root
        return ["train", *self.sets(f"data.source={source}", f"data.root={root}",
                                    f"experiment.output_dir={self.tmp / 'runs'}", *TINY, *items)]

    def celeba_copy(self) -> Path:
        dest = self.tmp / "celeba"
        if not dest.exists():
            shutil.copytree(self.celeba_dir, dest)
        return dest

    def edit_line(self, path: Path, line_no: int, change: Callable[[str], str]) -> None:
        lines = path.read_text().splitlines()
        lines[line_no] = change(lines[line_no])
        path.write_text("\n".join(lines) + "\n")


@dataclass
class Case:
    id: str
    what: str  # the bad input, for the catalogue
    argv: Callable[[Ctx], list[str]]
    fragments: tuple[str, ...]  # every one must be in the message


def _folder(ctx: Ctx, files: dict[str, bytes]) -> Path:
    root = ctx.tmp / "folder"
    root.mkdir(exist_ok=True)
    for name, data in files.items():
        (root / name).write_bytes(data)
    return root


def _truncate_jpegs(ctx: Ctx, n: int) -> Path:
    root = ctx.celeba_copy()
    for p in sorted((root / "img_align_celeba").glob("*.jpg"))[:n]:
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    return root


def _experiment(ctx: Ctx, config_text: str | None) -> Path:
    folder = ctx.tmp / "experiments" / "ExperimentBroken"
    folder.mkdir(parents=True)
    shutil.copy(next((ROOT / "experiments").glob("*/main.py")), folder / "main.py")
    if config_text is not None:
        (folder / "config.json").write_text(config_text)
    return folder


def _run_copy_without_checkpoints(ctx: Ctx) -> Path:
    dest = ctx.tmp / "run-without-checkpoints"
    dest.mkdir()
    shutil.copy(ctx.run / "config.json", dest / "config.json")
    return dest


CASES = [
    # --- configuration: keys, types, ranges, choices
    Case("unknown-key", "a misspelt key in --set", lambda c: c.train("training.epohcs=2"),
         ("training.epohcs", "did you mean 'training.epochs'")),
    Case("unknown-section", "a misspelt section in config.json",
         lambda c: (c.tmp.joinpath("bad.json").write_text('{"trainig": {"epochs": 2}}'),
                    ["train", "--config", str(c.tmp / "bad.json")])[1],
         ("trainig", "did you mean 'training'")),
    Case("wrong-type-int", "a word where a number belongs", lambda c: c.train("training.epochs=five"),
         ("training.epochs", "five", "integer")),
    Case("wrong-type-bool", "a word where true/false belongs", lambda c: c.train("logging.gif=maybe"),
         ("logging.gif", "maybe", "true or false")),
    Case("zero-batch", "batch size 0", lambda c: c.train("training.batch_size=0"),
         ("training.batch_size", "0", ">= 1")),
    Case("negative-rate", "a negative learning rate", lambda c: c.train("training.d_optimizer.learning_rate=-0.001"),
         ("training.d_optimizer.learning_rate", "-0.001", "> 0")),
    Case("image-size", "an image size the architecture cannot make", lambda c: c.train("data.image_size=48"),
         ("data.image_size", "48", "64")),
    Case("unknown-choice", "a loss that is not in the registry", lambda c: c.train("training.loss=wgan"),
         ("training.loss", "wgan", "wasserstein")),
    Case("unknown-attribute", "an attribute CelebA does not have", lambda c: c.train('data.attributes=["Glasses"]'),
         ("Glasses", "Eyeglasses")),
    Case("filter-vs-condition", "the same attribute filtered and used as a condition",
         lambda c: c.train('data.filters={"Bald": 1}', 'data.attributes=["Bald"]'),
         ("data.filters.Bald", "conditioning")),
    Case("conditional-bn-without-labels", "class-conditional batch norm in G for an unconditional config",
         lambda c: c.train("model.generator.conditioning=conditional_bn", "data.attributes=[]"),
         ("model.generator.conditioning", "conditional_bn", "needs labels", "concat")),
    Case("penalty-vs-batchnorm", "gradient penalty with batch-normalised D",
         lambda c: c.train("training.gradient_penalty=10"), ("training.gradient_penalty", "batch")),
    Case("wasserstein-unconstrained", "a Wasserstein critic with neither a gradient penalty nor spectral norm",
         lambda c: c.train("training.loss=wasserstein"),
         ("training.loss", "wasserstein", "Lipschitz", "training.gradient_penalty", "spectral_norm")),
    Case("name-escapes-folder", "a run name that would leave experiment.output_dir",
         lambda c: c.train("experiment.name=../../../tmp/evilrun"), ("experiment.name", "../../../tmp/evilrun", "letters")),
    Case("parent-is-a-path", "freeze --parent given a path instead of an experiment name",
         lambda c: ["freeze", str(c.run), "--name", "Child", "--parent", "../../etc", "--experiments-dir",
                    str(c.tmp / "exps")], ("--parent", "../../etc", "not a path")),
    Case("credential-key", "a key that looks like a credential", lambda c: c.train('data.kaggle_token="abc"'),
         ("data.kaggle_token", "credential")),
    Case("malformed-set", "--set without '='", lambda c: ["train", "--set", "training.epochs"],
         ("training.epochs", "malformed", "KEY.PATH=VALUE")),
    Case("malformed-set-json", "--set with broken JSON", lambda c: ["train", "--set", "data.attributes=[Bald"],
         ("data.attributes",)),
    Case("config-missing", "--config naming no file", lambda c: ["train", "--config", str(c.tmp / "nope.json")],
         ("nope.json",)),
    Case("config-invalid-json", "config.json that is not JSON",
         lambda c: (c.tmp.joinpath("broken.json").write_text('{"training": {"epochs": 2,}}'),
                    ["train", "--config", str(c.tmp / "broken.json")])[1],
         ("broken.json", "line 1")),
    # --- data
    Case("data-folder-missing", "data.root that does not exist",
         lambda c: c.train(root=c.tmp / "nowhere", source="celeba"), ("data.root", "nowhere", "not a folder")),
    Case("data-folder-empty", "an empty image folder",
         lambda c: c.train(root=_folder(c, {}), source="folder"), ("data.root", "holds no images")),
    Case("data-no-images", "a folder without image files",
         lambda c: c.train(root=_folder(c, {"a.txt": b"x", "b.csv": b"1,2"}), source="folder"),
         ("data.root", "holds no images", ".jpg")),
    Case("data-non-images", "files named .jpg that are not images",
         lambda c: c.train(root=_folder(c, {f"{i}.jpg": b"not an image" for i in range(20)}), source="folder"),
         ("data.root", "20 of 20", "not a JPEG")),
    Case("data-palette-bmp", "a folder of palette BMPs, which TensorFlow would decode as grey noise",
         lambda c: c.train(root=_folder(c, {f"{i}.bmp": _palette_bmp(i) for i in range(20)}), source="folder"),
         ("data.root", "20 of 20", "palette BMP", "convert the 20", "PNG")),
    Case("data-truncated", "more than 1 % truncated JPEGs (a broken copy)",
         lambda c: c.train(root=_truncate_jpegs(c, 10), source="celeba"),
         ("data.root", "10 of", ".jpg: truncated JPEG", "1%")),
    Case("celeba-no-attributes", "a CelebA folder without its attribute file",
         lambda c: c.train(root=_folder(c, {"x.jpg": b""}), source="celeba"), ("no CelebA attribute file",)),
    Case("attr-columns", "an attribute row with a missing column",
         lambda c: (c.edit_line(c.celeba_copy() / "list_attr_celeba.txt", 4, lambda s: s.rsplit(" ", 1)[0]),
                    c.train(root=c.celeba_copy(), source="celeba"))[1],
         ("list_attr_celeba.txt:5", "expected 41 columns")),
    Case("attr-values", "an attribute value that is not 1 or -1",
         lambda c: (c.edit_line(c.celeba_copy() / "list_attr_celeba.txt", 5, lambda s: s[:-2] + " 0"),
                    c.train(root=c.celeba_copy(), source="celeba"))[1],
         ("list_attr_celeba.txt", "'0' is not 1 or -1")),
    Case("attr-count", "an attribute file whose count line is wrong",
         lambda c: (c.edit_line(c.celeba_copy() / "list_attr_celeba.txt", 0, lambda s: "241"),
                    c.train(root=c.celeba_copy(), source="celeba"))[1],
         ("list_attr_celeba.txt", "241")),
    Case("attr-missing-images", "attribute rows for images that do not exist",
         lambda c: (c.edit_line(c.celeba_copy() / "list_attr_celeba.txt", 6, lambda s: s.replace(".jpg", ".JPG", 1)),
                    c.train(root=c.celeba_copy(), source="celeba"))[1],
         ("list_attr_celeba.txt", "do not exist")),
    Case("partition-missing", "no partition file while data.split is train",
         lambda c: ((c.celeba_copy() / "list_eval_partition.txt").unlink(),
                    c.train(root=c.celeba_copy(), source="celeba"))[1],
         ("no partition file", "data.split")),
    Case("empty-selection", "filters that leave no image (names the filter that emptied it)",
         lambda c: c.train('data.filters={"Bald": 1, "Blond_Hair": 1}', "data.split=all"),
         ("data.filters.Blond_Hair", "leaves 0")),
    Case("batch-too-big", "a batch larger than the selection", lambda c: c.train("training.batch_size=500"),
         ("training.batch_size", "500", "only")),
    # --- output, resume, experiments
    Case("output-unwritable", "an output folder that cannot be created",
         lambda c: (c.tmp.joinpath("a-file").write_text("x"), c.train(f"experiment.output_dir={c.tmp / 'a-file' / 'runs'}"))[1],
         ("experiment.output_dir", "a-file", "cannot create")),
    Case("resume-missing", "--resume of a folder that does not exist",
         lambda c: ["train", "--resume", str(c.tmp / "no-run")], ("no-run", "not a folder")),
    Case("resume-not-a-run", "--resume of a folder that is not a run folder",
         lambda c: (c.tmp.joinpath("notarun").mkdir(), ["train", "--resume", str(c.tmp / "notarun")])[1],
         ("notarun", "not a run folder", "config.json")),
    Case("resume-no-checkpoint", "--resume of a run that never saved a checkpoint",
         lambda c: ["train", "--resume", str(_run_copy_without_checkpoints(c))], ("no checkpoint",)),
    Case("resume-changed-config", "--resume with a changed config (without --force)",
         lambda c: ["train", "--resume", str(c.run), "--set", "training.batch_size=4"],
         ("training.batch_size: 8 → 4", "--force")),
    Case("experiment-broken-config", "a frozen experiment whose config.json is broken",
         lambda c: ["run-experiment", str(_experiment(c, '{"training": {"epochs": -1}}'))],
         ("ExperimentBroken", "config.json", "training.epochs", "-1")),
    Case("experiment-no-config", "a frozen experiment folder without config.json",
         lambda c: ["run-experiment", str(_experiment(c, None))], ("ExperimentBroken", "config.json")),
    Case("generate-unknown-attribute", "generate with an attribute the run was not conditioned on",
         lambda c: ["generate", str(c.run), "--attributes", "Glasses=1", "--out", str(c.tmp / "g.png")],
         ("Glasses", "Bald")),
]


def snapshot(*folders: Path) -> dict:
    return {str(p): p.stat().st_mtime_ns for f in folders if f.exists() for p in sorted(f.rglob("*"))}


@pytest.fixture(scope="module")
def trained_run(synthetic_root, tmp_path_factory) -> Path:
    """One tiny finished run conditioned on Bald (for the resume and generate cases)."""
    from homogan.cli import main

    out = tmp_path_factory.mktemp("catalogue-run")
    argv = ["train", "--set", f"data.root={synthetic_root}", "--set", f"experiment.output_dir={out}",
            "--set", 'data.attributes=["Bald"]'] + [a for item in TINY for a in ("--set", item)]
    assert main(argv) == 0
    return next(p for p in out.iterdir() if p.is_dir())


def answer(case: Case, ctx: Ctx, capsys, monkeypatch) -> tuple[int, str, str]:
    from homogan.cli import main

    monkeypatch.chdir(ctx.tmp)
    argv = case.argv(ctx)
    capsys.readouterr()
    before = snapshot(ctx.tmp, ctx.run, ctx.synthetic_root)
    code = main(argv)
    out, err = capsys.readouterr()
    after = snapshot(ctx.tmp, ctx.run, ctx.synthetic_root)
    written = sorted(set(after) - set(before)) + sorted(k for k in before if k in after and after[k] != before[k])
    return code, err, "\n".join(written)


def test_the_catalogue_has_at_least_30_distinct_cases():
    assert len(CASES) >= 30 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_one_line_exit_2_and_nothing_written(case, synthetic_root, celeba_dir, trained_run, tmp_path,
                                                          capsys, monkeypatch):
    ctx = Ctx(tmp_path, synthetic_root, celeba_dir, trained_run)
    code, err, written = answer(case, ctx, capsys, monkeypatch)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for fragment in case.fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert not written, f"written: {written}"


# --------------------------------------------------------------------------------------------
# The other side of the damaged-image rule: a few damaged files are skipped, counted and named.


def _encoded(image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _palette_bmp(seed: int = 0) -> bytes:
    """An 8-bit BMP with a colour table, as many tools write small images."""
    from PIL import Image

    pixels = np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    return _encoded(Image.fromarray(pixels).quantize(16), "BMP")


def _with_colours_used(bmp: bytes, count: int) -> bytes:
    """``bmp`` with its header's colours-used field (bytes 46-49) set to ``count``: a broken header."""
    return bmp[:46] + count.to_bytes(4, "little") + bmp[50:]


def test_damaged_files_are_recognised_by_their_bytes(celeba_dir, tmp_path):
    from PIL import Image

    from homogan.data import integrity

    whole = (celeba_dir / "img_align_celeba" / "000001.jpg").read_bytes()
    grey = np.random.default_rng(0).integers(0, 256, (8, 8), dtype=np.uint8)
    webp = _encoded(Image.fromarray(np.dstack([grey] * 3)), "WEBP", lossless=True)
    cases = {"ok.jpg": (whole, None), "padded.jpg": (whole + b"\0" * 10, None),
             "half.jpg": (whole[: len(whole) // 2], "truncated JPEG"), "cut2.jpg": (whole[:-2], "truncated JPEG"),
             "empty.jpg": (b"", "empty file"), "text.jpg": (b"hello", "not a JPEG"),
             # TensorFlow's BMP decoder: 24/32-bit and grey-ramp 8-bit are right; 1-bit fails; a palette is ignored
             "rgb.bmp": (_encoded(Image.fromarray(np.dstack([grey] * 3)), "BMP"), None),
             "grey.bmp": (_encoded(Image.fromarray(grey), "BMP"), None),
             "one-bit.bmp": (_encoded(Image.fromarray(grey > 127), "BMP"), "unsupported: 1-bit BMP"),
             "palette.bmp": (_palette_bmp(), "unsupported: a palette BMP"),
             "count-300.bmp": (_with_colours_used(_encoded(Image.fromarray(grey), "BMP"), 300), "unsupported: a palette BMP"),
             "ok.webp": (webp, None), "cut.webp": (webp[:-10], "truncated WebP"),
             "riff.webp": (b"RIFF\x04\0\0\0WAVE", "not a JPEG")}
    for name, (data, expected) in cases.items():
        (tmp_path / name).write_bytes(data)
        found = integrity.problem(str(tmp_path / name))
        assert (found is None) if expected is None else (expected in found), (name, found)
    assert "No such file" in integrity.problem(str(tmp_path / "missing.jpg"))


def test_the_files_the_check_passes_decode_as_pillow_reads_them(tmp_path):
    """The rule behind the BMP and WebP checks, against TensorFlow itself: every kind the check passes decodes
    (homogan.data.decode) to the pixels Pillow reads; the palette BMP it refuses would decode to other pixels
    (its indices as grey levels), the 1-bit BMP not at all. Fails if TensorFlow's decoders change either way."""
    import tensorflow as tf
    from PIL import Image

    from homogan.data import integrity
    from homogan.data.decode import decode

    rng = np.random.default_rng(1)
    colour, grey = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), rng.integers(0, 256, (32, 32), dtype=np.uint8)
    kinds = {"rgb.bmp": _encoded(Image.fromarray(colour), "BMP"), "rgba.bmp": _encoded(Image.fromarray(colour).convert("RGBA"), "BMP"),
             "grey.bmp": _encoded(Image.fromarray(grey), "BMP"), "palette.png": _encoded(Image.fromarray(colour).quantize(16), "PNG"),
             "grey16.png": _encoded(Image.fromarray(grey.astype(np.uint16) * 257), "PNG"),
             "lossless.webp": _encoded(Image.fromarray(colour), "WEBP", lossless=True),
             "palette.bmp": _encoded(Image.fromarray(colour).quantize(16), "BMP"),
             "one-bit.bmp": _encoded(Image.fromarray(grey > 127), "BMP")}
    for name, data in kinds.items():
        path = tmp_path / name
        path.write_bytes(data)
        passed = integrity.problem(str(path)) is None
        expected = (np.dstack([grey] * 3).astype(np.int32) if name == "grey16.png"  # Pillow clips 16 bits to 255
                    else np.asarray(Image.open(path).convert("RGB"), np.int32))
        try:
            decoded = decode(tf.constant(data), is_path=False, crop=None, size=32, channels=3).numpy().astype(np.int32)
        except tf.errors.InvalidArgumentError:
            decoded = None
        right = decoded is not None and np.abs(decoded - expected).max() <= 1
        assert passed == right, (name, passed, None if decoded is None else np.abs(decoded - expected).max())
    assert integrity.problem(str(tmp_path / "palette.bmp")).startswith(integrity.UNSUPPORTED)


def test_a_few_damaged_jpegs_are_skipped_counted_and_training_runs(celeba_dir, tmp_path, tiny_config):
    """One truncated file (under 1 %) is skipped before training and named in the selection log; one whose
    bytes look whole but whose data is corrupt inside is dropped by the decoder, and the epoch still has
    all its steps."""
    from homogan.data import sources
    from homogan.train import train

    root = tmp_path / "celeba"
    shutil.copytree(celeba_dir, root)
    images = sorted((root / "img_align_celeba").glob("*.jpg"))
    truncated, scrambled = images[3], images[0]  # 000001.jpg scrambled this way fails to decode
    truncated.write_bytes(truncated.read_bytes()[:1000])
    data = bytearray(scrambled.read_bytes())
    data[len(data) // 2: len(data) // 2 + 200] = bytes(b ^ 0xFF for b in data[len(data) // 2: len(data) // 2 + 200])
    scrambled.write_bytes(bytes(data))
    config = tiny_config("data.source=celeba", f"data.root={root}", "data.split=all", "training.steps_per_epoch=null",
                         "training.batch_size=239", "training.epochs=1")
    source = sources.open_source(config)
    assert source.count == 239 and str(truncated) not in source.paths and str(scrambled) in source.paths
    assert any(f"skipped 1 damaged or unsupported image file(s) (first: {truncated}: truncated JPEG" in line for line in source.log)
    result = train(config, echo=lambda *a, **k: None)
    # 238 decodable images, 1 step of 239: the epoch wraps around instead of running out of data.
    assert result.epochs_done == 1 and len(result.history) == 1 and np.isfinite(result.history[0]["d_loss"])


def test_docs_list_every_case():
    doc = (ROOT / "docs" / "bad-input.md").read_text(encoding="utf-8")
    missing = [c.id for c in CASES if f"`{c.id}`" not in doc]
    missing += [case for case in ("run-in-use", "stale-lock", "damaged-checkpoint", "no-whole-checkpoint", "disk-full")
                if f"`{case}`" not in doc]
    assert not missing, f"regenerate docs/bad-input.md (python tests/test_bad_input.py > docs/bad-input.md): {missing}"


def markdown() -> str:
    """The catalogue with each case's real message (paths shortened to <tmp>, <data>, <run>)."""
    import contextlib
    import io
    import tempfile

    from homogan.cli import main
    from homogan.data import synthetic

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        data = scratch / "data"
        synthetic.generate(data, 240, 0, progress=False)
        runs = scratch / "runs"
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            assert main(["train", "--set", f"data.root={data}", "--set", f"experiment.output_dir={runs}",
                         "--set", 'data.attributes=["Bald"]', *[a for i in TINY for a in ("--set", i)]]) == 0
        run = next(runs.iterdir())
        rows = ["# Bad input: the catalogue", "",
                "Every case answers with one line on stderr and exit code 2, writes nothing, and has a test in "
                "`tests/test_bad_input.py`. Regenerate this page with `python tests/test_bad_input.py > "
                "docs/bad-input.md`.", "", "| case | bad input | the answer |", "|---|---|---|"]
        for i, case in enumerate(CASES):
            tmp = scratch / f"case{i}"
            tmp.mkdir()
            ctx = Ctx(tmp, data, synthetic.dataset_dir(data, 240, 0), run)
            err = io.StringIO()
            cwd = Path.cwd()
            try:
                import os
                os.chdir(tmp)
                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                    code = main(case.argv(ctx))
            finally:
                os.chdir(cwd)
            message = err.getvalue().strip()
            for path, name in ((tmp, "<tmp>"), (run, "<run>"), (data, "<data>"), (ROOT, "<repo>")):
                message = message.replace(str(path), name)
            message = re.sub(r"\s+", " ", message).replace("|", "\\|")
            rows.append(f"| `{case.id}` | {case.what} | exit {code}: `{message}` |")
    return "\n".join(rows) + "\n" + FAULTS


#: The faults (not bad input: the machine or another process), each tested in tests/test_faults.py; their real
#: messages, captured from those scenarios (<run> is the run folder).
FAULTS = """
## Faults: the machine or another process, not the input

| case | what happened | the answer |
|---|---|---|
| `run-in-use` | a second process (a double-clicked resume, a re-queued job) trains, resumes, evaluates or exports a run another process holds | exit 2: `error: <run>: in use by pid 28082 on vm (training, since 2026-12-01 10:34:35); wait until it ends (or stop it), then try again` |
| `stale-lock` | the process holding a run was killed (SIGKILL, power loss) | the next command goes on: `note: <run> was locked by pid 28082 (training), which is no longer running; taking it over` |
| `damaged-checkpoint` | the newest checkpoint is truncated, has flipped bytes or lost its index (found from the SHA-256 of its files, recorded when it was written) | `--resume` goes on from the newest whole one: `note: checkpoint epoch_0002 is damaged (epoch_0002.data-00000-of-00001 does not match its checksum); resuming from epoch_0001 instead` and `note: continuing after epoch 1; moved 1 history row(s) to history.discarded.csv, 1 sample grid(s) to samples/discarded/` |
| `no-whole-checkpoint` | every checkpoint of the run is damaged | exit 2: `error: <run>/checkpoints/epoch_0002: the checkpoint is damaged (epoch_0002.data-00000-of-00001 does not match its checksum) and no earlier checkpoint of the run is whole; the run cannot be resumed (start it again)` |
| `disk-full` | a write fails (ENOSPC, EIO, read-only file system) during a checkpoint, a sample grid, the history or the GIF | exit 4: `` stopped: could not write <run>/history.csv: No space left on device; the last complete checkpoint (epoch 1) is in <run>/checkpoints; free space, then `python main.py --resume <run>` `` (no half-written file remains; the resume works once space is free) |
"""


if __name__ == "__main__":
    print(markdown(), end="")
