"""The config schema: defaults, --set parsing, and one clear line for every kind of bad value."""

import json
import os
import subprocess
import sys

import pytest

from homogan.config import CREDENTIAL_WORDS, Config, describe, diff, from_dict, load_config, parse_override
from homogan.celeba_attributes import CELEBA_ATTRIBUTES
from homogan.errors import ConfigError
from tests.conftest import ROOT


def test_shipped_default_config_is_valid_and_offline():
    config = load_config(ROOT / "config.json")
    assert config.data.source == "synthetic"
    assert config.data.attributes == ["Eyeglasses", "No_Beard", "Bald"]
    assert isinstance(config, Config)


def test_overrides_are_json_where_possible():
    assert parse_override("training.epochs=2") == ("training.epochs", 2)
    assert parse_override('data.attributes=["Bald"]') == ("data.attributes", ["Bald"])
    assert parse_override("data.root=/some/where") == ("data.root", "/some/where")
    assert parse_override("data.limit=null") == ("data.limit", None)
    c = load_config(None, ["training.epochs=3", 'data.attributes=["Bald"]', "data.filters={\"Male\": 1}"])
    assert (c.training.epochs, c.data.attributes, c.data.filters) == (3, ["Bald"], {"Male": 1})


@pytest.mark.parametrize("overrides, fragments", [
    (["training.epohcs=2"], ["training.epohcs", "did you mean 'training.epochs'"]),
    (["trainig.epochs=2"], ["trainig", "did you mean 'training'"]),
    (["training.epochs=two"], ["training.epochs", '"two"', "integer"]),
    (["training.epochs=0"], ["training.epochs", "0", ">= 1"]),
    (["training.batch_size=-4"], ["training.batch_size", "-4", ">= 1"]),
    (["training.g_optimizer.learning_rate=0"], ["learning_rate", "> 0"]),
    (["data.image_size=48"], ["data.image_size", "48", "32, 64, 128, 256"]),
    (["data.source=imagenet"], ["data.source", "imagenet", "synthetic"]),
    (["model.discriminator.normalization=group"], ["model.discriminator.normalization", '"group"',
                                                   'allowed: "batch", "layer", "none", null']),
    (['data.attributes=["Glasses"]'], ["data.attributes", "Glasses", "did you mean 'Eyeglasses'", "No_Beard"]),
    (['data.filters={"Male": 2}'], ["data.filters.Male", "2", "1 (present)"]),
    (['data.attributes=["Male"]', 'data.filters={"Male": 1}'], ["data.filters.Male", "conditioning"]),
    (["data.balance=combinations"], ["data.balance", "needs data.attributes"]),
    (["model.generator.conditioning=conditional_bn", "data.attributes=[]"],
     ["model.generator.conditioning", "conditional_bn", "needs labels", "concat"]),
    (["model.generator.conditioning=conditional_bn", "model.generator.batch_norm=false"],
     ["model.generator.conditioning", "model.generator.batch_norm", "concat"]),
    (["training.real_label_range=[1.0, 0.9]"], ["training.real_label_range", "low <= high"]),
    (["training.loss=hinge", "training.label_flip=0.05"], ["training.loss", "hinge", "smoothing"]),
    (["training.gradient_penalty=10"], ["normalization", "batch", "gradient_penalty"]),
    (["data.source=folder", 'data.attributes=["Bald"]'], ["data.attributes", "folder"]),
    (["training.label_flip=0.7"], ["training.label_flip", "<= 0.5"]),
    (["model.latent_dim=true"], ["model.latent_dim", "true", "integer"]),
    (["data.kaggle_token=abc"], ["credentials", "kaggle.json"]),
])
def test_bad_values_name_key_value_and_what_is_allowed(overrides, fragments):
    with pytest.raises(ConfigError) as info:
        load_config(None, overrides)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def test_unknown_attribute_lists_all_valid_names():
    with pytest.raises(ConfigError) as info:
        load_config(None, ['data.attributes=["Moustache_Big"]'])
    assert all(name in str(info.value) for name in CELEBA_ATTRIBUTES)


@pytest.mark.parametrize("item", ["training.epochs", "=3", "training..epochs=3", "data.attributes=[Bald"])
def test_malformed_set_is_refused(item):
    with pytest.raises(ConfigError):
        parse_override(item)


def test_credential_like_keys_are_refused_anywhere():
    for word in CREDENTIAL_WORDS:
        with pytest.raises(ConfigError, match="credentials"):
            from_dict({"experiment": {f"kaggle_{word}": "x"}})


def test_every_key_is_documented_and_diff_finds_changes():
    rows = describe()
    keys = [r[0] for r in rows]
    for required in ["experiment.name", "experiment.seed", "experiment.output_dir", "data.source", "data.root",
                     "data.image_size", "data.attributes", "data.filters", "data.limit", "model.latent_dim",
                     "training.epochs", "training.batch_size", "training.steps_per_epoch"]:
        assert required in keys
    assert all(r[3] for r in rows)
    a = load_config(None).to_dict()
    b = load_config(None, ["training.epochs=7", "model.generator.batch_norm=false"]).to_dict()
    assert diff(a, b) == [("model.generator.batch_norm", True, False), ("training.epochs", 10, 7)]


def run_main(*args, cwd):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("args, fragment", [
    (["--set", "training.epohcs=2"], "did you mean 'training.epochs'"),
    (["--set", "training.epochs"], "malformed"),
    (["--set", "data.source=celeba", "--set", "data.root=/nonexistent/celeba"], "/nonexistent/celeba"),
    (["--config", "missing.json"], "missing.json"),
    (["--resume", "/nonexistent/run"], "not a folder"),
])
def test_cli_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, args, fragment):
    result = run_main("--set", f"experiment.output_dir={tmp_path / 'runs'}", *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


def test_cli_rejects_invalid_json_config_file(tmp_path):
    (tmp_path / "bad.json").write_text('{"training": {"epochs": 2,}}')
    result = run_main("--config", "bad.json", cwd=tmp_path)
    assert result.returncode == 2 and "bad.json" in result.stderr and "line 1" in result.stderr


def test_help_is_available():
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--set" in result.stdout and "--resume" in result.stdout
    for command in ("train", "gif", "plot"):
        r = subprocess.run([sys.executable, "-m", "homogan", command, "--help"], capture_output=True, text=True,
                           cwd=ROOT)
        assert r.returncode == 0 and "usage" in r.stdout


@pytest.mark.parametrize("script", sorted((ROOT / "bench").glob("bench_*.py")), ids=lambda p: p.name)
def test_bench_scripts_answer_help_without_loading_tensorflow(script):
    probe = ("import runpy, sys\n"
             f"sys.argv = [{str(script)!r}, '--help']\n"
             "try:\n"
             f"    runpy.run_path({str(script)!r}, run_name='__main__')\n"
             "except SystemExit as e:\n"
             "    print('exit', e.code, 'tensorflow' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    assert "usage:" in result.stdout and result.stdout.strip().endswith("exit 0 False"), result.stdout + result.stderr


def test_train_step_bench_times_the_configured_step_and_its_variants():
    """``bench_train_step.py --model config`` times the step training builds from a config: with
    d_steps 2 (a batch of 2 × batch_size) only the alternating variants exist, the configured one first."""
    sets = ["data.image_size=32", "model.generator.width=8", "model.discriminator.width=8", "training.batch_size=4",
            "training.d_steps=2", "training.update_mode=alternating"]
    env = {**os.environ, "HOMOGAN_MASK_CPU_FLAGS": "avx512_bf16,amx_bf16"}  # auto → float32 on any CPU
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_train_step.py"), "--model", "config", "--no-xla",
                             "--warmup", "1", "--steps", "1", "--rounds", "1", *[a for kv in sets for a in ("--set", kv)]],
                            capture_output=True, text=True, cwd=ROOT, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("CPU ")  # the device block first: the table says which machine it is from
    table = result.stdout.split("(batch 8, 32 px, 3 labels)")[1]
    rows = [line.split("|")[1:-1] for line in table.splitlines() if line.startswith("| ") and "contender" not in line]
    assert [r[0].strip() for r in rows] == ["as configured: auto → float32 alternating", "mixed_bfloat16 alternating"]
    assert float(rows[0][2]) == 1.0 and all(float(r[1]) > 0 for r in rows)


def test_frozen_json_round_trip():
    c = load_config(None, ['data.attributes=["Bald"]'])
    assert from_dict(json.loads(json.dumps(c.to_dict()))) == c


def test_readme_documents_every_key_as_the_schema_does():
    from homogan.cli import markdown_key_table

    readme = (ROOT / "README.md").read_text()
    assert markdown_key_table() in readme, "README key table is stale: paste `python -m homogan config --keys`"


@pytest.mark.parametrize("argv, expect", [
    (["bench_synthetic.py", "--num-images", "20", "--workers", "1"], "synthetic: 20 images"),
    (["bench_pipeline.py", "--num-images", "120", "--sizes", "32", "--train-steps", "1", "--warmup", "1"], "| 32 px |"),
], ids=["synthetic", "pipeline"])
def test_timing_benches_run_and_start_with_the_device_block(argv, expect, tmp_path):
    """A bench that breaks (e.g. a config value it does not resolve) fails here, not on a user's machine."""
    result = subprocess.run([sys.executable, str(ROOT / "bench" / argv[0]), *argv[1:], "--dir", str(tmp_path)],
                            capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("CPU ") and expect in result.stdout


CLASS_FOLDER = ["data.source=folder", "data.root=/nowhere", "data.class_conditional=true", "data.attributes=[]",
                "data.filters={}", "data.balance=null"]


def _d(config):
    d = config.model.discriminator
    return d.normalization, d.spectral_norm, d.conditioning


def test_one_hot_classes_get_the_projection_discriminator_and_attributes_the_dcgan_one():
    """Left null, D's normalisation, spectral norm and conditioning are decided once, at the door, by the labels:
    one-hot classes → Miyato & Koyama's projection D (spectral norm, no batch norm) with AC-GAN's softmax class
    loss on its features (projection_ac), multi-label attributes and no
    labels → the DCGAN D that met the default run's bar. A value set in the config or by --set is kept, each key
    on its own; and what a run folder stores is concrete, so a resume never re-decides."""
    assert _d(load_config(ROOT / "config.json")) == ("batch", False, "concat")
    assert _d(load_config(ROOT / "config.json", ["data.attributes=[]"])) == ("batch", False, "concat")
    assert _d(load_config(ROOT / "config.json", CLASS_FOLDER)) == ("none", True, "projection_ac")
    assert _d(load_config(ROOT / "config.json", [*CLASS_FOLDER, "model.discriminator.normalization=batch"])) == (
        "batch", True, "projection_ac")
    assert _d(load_config(ROOT / "config.json", [*CLASS_FOLDER, "model.discriminator.conditioning=projection"])) == (
        "none", True, "projection")
    assert _d(load_config(ROOT / "config.json", [*CLASS_FOLDER, "model.discriminator.spectral_norm=false",
                                                 "model.discriminator.conditioning=concat"])) == ("none", False, "concat")
    assert _d(load_config(ROOT / "config.json", ["model.discriminator.conditioning=null"])) == ("batch", False, "concat")
    written = load_config(ROOT / "config.json", CLASS_FOLDER).to_dict()
    assert written["model"]["discriminator"]["conditioning"] == "projection_ac"
    assert _d(from_dict(written, written_out=True)) == ("none", True, "projection_ac")


def test_one_hot_classes_train_with_the_hinge_loss_and_everything_else_as_before():
    """Left null, the loss is decided with D's keys: hinge for one-hot classes (Miyato & Koyama's loss for their
    projection D), nonsaturating for attributes and unconditional data — so the default run trains exactly as
    before. A loss set in the config is kept, a run folder stores the decided one, and label smoothing with a
    null loss on classes is a one-line error that says where hinge came from."""
    assert load_config(ROOT / "config.json").training.loss == "nonsaturating"
    assert load_config(ROOT / "config.json", ["data.attributes=[]"]).training.loss == "nonsaturating"
    assert load_config(None, []).training.loss == "nonsaturating"
    assert load_config(ROOT / "config.json", CLASS_FOLDER).training.loss == "hinge"
    assert load_config(None, CLASS_FOLDER).training.loss == "hinge"
    assert load_config(ROOT / "config.json", [*CLASS_FOLDER, "training.loss=nonsaturating"]).training.loss == "nonsaturating"
    written = load_config(ROOT / "config.json", CLASS_FOLDER).to_dict()
    assert written["training"]["loss"] == "hinge"
    assert from_dict(written, written_out=True).training.loss == "hinge"
    smoothed = [*CLASS_FOLDER, "training.real_label_range=[0.9, 1.0]"]
    with pytest.raises(ConfigError, match=r"training.loss: null picks hinge for one-hot classes"):
        load_config(ROOT / "config.json", smoothed)
    assert load_config(ROOT / "config.json", [*smoothed, "training.loss=nonsaturating"]).training.loss == "nonsaturating"


def test_frozen_class_experiments_keep_the_discriminator_they_trained_with():
    """The Digits experiments (tfds mnist, one-hot classes) were frozen with the DCGAN D written out in full; the
    new default for classes must not change what they re-run."""
    from homogan.freeze import load_frozen

    for name in ("DigitsBeta01", "DigitsZ64"):
        config = load_frozen(ROOT / "experiments" / name)
        assert config.data.class_conditional and _d(config) == ("batch", False, "concat")
        assert config.training.loss == "nonsaturating"
