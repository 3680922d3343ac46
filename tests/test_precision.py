"""``training.precision: "auto"``: every branch with injected device facts, the detection on this
machine, what a run records, resume across hardware, float32 judges, and mixed_float16 penalties."""

import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from homogan import device, precision
from homogan.device import GPU, DeviceFacts
from tests.conftest import ROOT


def cpu(*flags, model="Test CPU"):
    return DeviceFacts("cpu", model, frozenset(flags))


def gpus(*caps):
    return DeviceFacts("gpu", "Host CPU", frozenset({"avx2"}), tuple(GPU(f"GPU {i}", c) for i, c in enumerate(caps)))


@pytest.mark.parametrize("facts, expected, reason", [
    (DeviceFacts("tpu", "Host", frozenset()), "mixed_bfloat16", "auto: TPU"),
    (gpus((8, 6)), "mixed_bfloat16", ">= 8.0"),
    (gpus((9, 0)), "mixed_bfloat16", ">= 8.0"),
    (gpus((7, 5)), "mixed_float16", "7.x"),
    (gpus((7, 0)), "mixed_float16", "7.x"),
    (gpus((6, 1)), "float32", "< 7.0"),
    (gpus((8, 0), (7, 5)), "mixed_float16", "7.5"),  # the weakest GPU decides
    (gpus(None), "float32", "unknown compute capability"),
    (cpu("avx2", "avx512f", "avx512_bf16"), "mixed_bfloat16", "avx512_bf16"),
    (cpu("avx2", "amx_bf16", "amx_tile"), "mixed_bfloat16", "amx_bf16"),
    (cpu("avx2", "fma"), "float32", "CPU without bf16 units"),
    (cpu("avx2", "avx512f"), "float32", "CPU without bf16 units"),
    (DeviceFacts("cpu", "Apple M2", None), "float32", "CPU flags unreadable"),
])
def test_auto_picks_the_fast_precision_for_the_device(facts, expected, reason):
    resolved = precision.resolve("auto", facts)
    assert resolved.precision == expected and reason in resolved.reason


@pytest.mark.parametrize("explicit", precision.PRECISIONS)
def test_an_explicit_precision_is_used_as_given(explicit):
    for facts in (cpu("avx2"), cpu("amx_bf16"), gpus((7, 5)), DeviceFacts("tpu", "Host", frozenset())):
        assert precision.resolve(explicit, facts) == precision.Resolved(explicit, "set in the config")


def test_applicable_precisions_per_device():
    assert precision.applicable(cpu("avx2")) == ["float32", "mixed_bfloat16"]
    assert precision.applicable(gpus((7, 5))) == ["float32", "mixed_float16"]
    assert precision.applicable(gpus((8, 9))) == ["float32", "mixed_bfloat16", "mixed_float16"]
    assert precision.applicable(gpus((6, 1))) == ["float32"]


X86 = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse2 avx avx2 fma bmi2\n\nprocessor\t: 1\n" \
      "model name\t: AMD EPYC 7B13\nflags\t\t: fpu sse2 avx avx2 fma bmi2\n"
SPR = "model name\t: Intel(R) Xeon(R) Platinum 8481C\nflags\t\t: avx2 fma avx512f avx512_bf16 amx_bf16 amx_tile\n"
ARM = "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes bf16\nCPU implementer\t: 0x41\n"


def test_cpu_flags_are_read_from_cpuinfo_and_can_be_masked_for_the_detection():
    model, flags, masked = device.read_cpu(X86, env={})
    assert model == "AMD EPYC 7B13" and flags == {"avx2", "fma"} and masked == ()
    assert precision.resolve("auto", DeviceFacts("cpu", model, flags)).precision == "float32"
    model, flags, _ = device.read_cpu(SPR, env={})
    assert flags == {"avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}
    assert precision.resolve("auto", DeviceFacts("cpu", model, flags)).precision == "mixed_bfloat16"
    _, flags, masked = device.read_cpu(SPR, env={device.MASK_ENV: "avx512_bf16, amx_bf16"})
    assert masked == ("avx512_bf16", "amx_bf16") and not {"avx512_bf16", "amx_bf16"} & flags
    assert precision.resolve("auto", DeviceFacts("cpu", "x", flags)).precision == "float32"
    _, flags, _ = device.read_cpu(ARM, env={})  # aarch64: 'Features', none of which are x86 bf16 units
    assert flags == frozenset()
    _, flags, _ = device.read_cpu("", env={})
    assert flags is None


def test_device_block_names_the_cpu_and_the_flags_that_matter():
    facts = DeviceFacts("cpu", "AMD EPYC 7B13", frozenset({"avx2", "fma"}), threads={"cores": 2},
                        versions={"tensorflow": "2.21.0", "keras": "3.15.1", "python": "3.11"})
    text = "\n".join(device.describe(facts))
    assert "AMD EPYC 7B13" in text and "avx2 fma" in text and "bf16 units: none" in text
    assert "device class cpu-avx2" in text
    assert cpu("avx512_bf16").device_class == "cpu-bf16" and gpus((7, 5)).device_class == "gpu-cc7.5"


def test_auto_resolves_on_this_machine_to_what_its_cpu_flags_say():
    """End to end on the test machine, with its own flags read independently of homogan's code."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flag_lines = [line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")]
    facts = device.read_facts()
    if facts.kind != "cpu":
        pytest.skip("the test machine trains on an accelerator")
    if not flag_lines:
        assert precision.resolve("auto", facts).precision == "float32"
        return
    has_bf16 = bool({"avx512_bf16", "amx_bf16"} & set(flag_lines[0]))
    assert precision.resolve("auto", facts).precision == ("mixed_bfloat16" if has_bf16 else "float32")


# --- a run with "auto" -------------------------------------------------------------------------------------


def fake_facts(monkeypatch, facts):
    monkeypatch.setattr(device, "read_facts", lambda distribute="none": facts)


def test_a_run_records_what_auto_chose_and_its_config_keeps_auto(tiny_config, monkeypatch):
    from homogan.train import train

    fake_facts(monkeypatch, cpu("avx2", "fma", model="AMD EPYC 7B13"))
    lines = []
    run = train(tiny_config("training.epochs=1"), echo=lambda *a, **k: lines.append(" ".join(map(str, a)))).run
    assert json.loads(run.config.read_text())["training"]["precision"] == "auto"
    (session,) = json.loads(run.record.read_text())["sessions"]
    assert session["precision"] == "float32" and session["precision_reason"] == "auto: CPU without bf16 units"
    assert session["device"]["cpu_model"] == "AMD EPYC 7B13" and session["device"]["device_class"] == "cpu-avx2"
    assert session["initial_epoch"] == 0
    assert any("precision float32 (auto: CPU without bf16 units)" in line for line in lines)
    assert keras.mixed_precision.global_policy().name == "float32"


def test_resume_on_other_hardware_is_not_a_config_change(tiny_config, monkeypatch):
    from homogan.train import train

    fake_facts(monkeypatch, cpu("avx2"))
    config = tiny_config("training.epochs=1")
    run = train(config, echo=lambda *a, **k: None).run
    fake_facts(monkeypatch, cpu("avx2", "amx_bf16"))
    lines = []
    result = train(tiny_config("training.epochs=2"), resume=run.path,
                   echo=lambda *a, **k: lines.append(" ".join(map(str, a))))
    assert result.epochs_done == 2
    sessions = json.loads(run.record.read_text())["sessions"]
    assert [s["precision"] for s in sessions] == ["float32", "mixed_bfloat16"]
    assert [s["initial_epoch"] for s in sessions] == [0, 1]
    assert any("trained in float32 before" in line and "continues in mixed_bfloat16" in line for line in lines)


def test_training_in_bf16_leaves_the_global_policy_and_the_judges_float32(tiny_config):
    """Today's leak: train() set the global policy to the training precision, so the in-training
    evaluation built its classifier and feature extractor in bf16."""
    from homogan.train import train

    seen = {}
    from homogan import evaluation

    original = evaluation.Evaluator.__init__

    def spy(self, *args, **kwargs):
        seen["policy_at_build"] = keras.mixed_precision.global_policy().name
        original(self, *args, **kwargs)
        seen["classifier"] = self.classifier.model.dtype_policy.name
        seen["features"] = str(np.asarray(self.extractor(np.zeros((2, 32, 32, 3), np.float32))).dtype)

    evaluation.Evaluator.__init__ = spy
    try:
        train(tiny_config("training.precision=mixed_bfloat16", "training.epochs=1", "evaluation.every_epochs=1",
                          "evaluation.num_samples=16", "evaluation.num_real=16", "evaluation.per_combination=2",
                          "evaluation.classifier_epochs=1", 'data.attributes=["Bald"]'), echo=lambda *a, **k: None)
    finally:
        evaluation.Evaluator.__init__ = original
    assert seen == {"policy_at_build": "float32", "classifier": "float32", "features": "float32"}


def test_judges_are_float32_even_when_the_caller_set_a_bf16_policy(tiny_config):
    from homogan.data import sources
    from homogan.evaluation import Evaluator

    config = tiny_config("evaluation.num_real=16", "evaluation.classifier_epochs=1", 'data.attributes=["Bald"]')
    data = sources.training_data(config, sources.open_source(config))
    with precision.policy("mixed_bfloat16"):
        ev = Evaluator(config, data.label_names, echo=lambda *a, **k: None)
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    assert ev.classifier.model.dtype_policy.name == "float32"
    assert all(w.dtype == "float32" for w in ev.classifier.model.weights)


@pytest.mark.parametrize("penalty", [
    ["training.loss=wasserstein", "training.gradient_penalty=10", "model.discriminator.normalization=layer"],
    ["training.r1_gamma=10"],
], ids=["gradient_penalty", "r1"])
def test_penalties_stay_finite_under_mixed_float16(penalty, tiny_config):
    """The GPU 7.x path (float16 with loss scaling), run on CPU: the penalty's double backward pass
    must give finite losses and weights, and updates must be applied."""
    import tensorflow as tf

    from homogan.train import build_gan

    config = tiny_config("training.precision=mixed_float16", *penalty)
    gan = build_gan(config, 0)
    step = tf.function(gan.train_step)
    x = tf.constant(np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3)).astype("uint8"))
    # Dynamic loss scaling starts at 2^15 and halves on every overflow, skipping that update: within
    # 20 steps it must find a scale at which both networks update with finite results.
    for _ in range(20):
        logs = {k: float(v) for k, v in step((x, tf.zeros((8, 0)))).items()}
        assert all(np.isfinite(v) for v in logs.values()), logs
    assert all(np.all(np.isfinite(w.numpy())) for w in gan.discriminator.weights + gan.generator.weights)
    assert int(gan.d_optimizer.iterations.numpy()) >= 1 and int(gan.g_optimizer.iterations.numpy()) >= 1


def test_build_gan_refuses_an_unresolved_precision(tiny_config):
    from homogan.train import build_gan

    with pytest.raises(ValueError, match="resolved"):
        build_gan(tiny_config(), 0)


def test_doctor_reports_the_device_the_contenders_and_what_auto_picks(tiny_config, tmp_path):
    """Both CPU branches: this machine's flags masked (float32), and as they are."""
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(tiny_config().to_dict()))
    base = [sys.executable, "-m", "homogan", "doctor", "--config", str(config), "--steps", "1", "--rounds", "1"]
    env = {**__import__("os").environ, device.MASK_ENV: "avx512_bf16,amx_bf16"}
    result = subprocess.run(base, capture_output=True, text=True, cwd=ROOT, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert out.startswith("CPU ") and "bf16 units: none (masked for detection" in out
    assert "auto picks   float32 (auto: CPU without bf16 units)" in out
    names = [line.split("|")[1].strip() for line in out.splitlines() if line.startswith("| ") and "contender" not in line]
    assert names == ["as configured: auto → float32 alternating", "float32 simultaneous", "mixed_bfloat16 alternating",
                     "mixed_bfloat16 simultaneous"]
    assert "fastest      " in out
