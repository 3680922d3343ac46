"""A frozen experiment keeps its result and reproduce checks it: exactly where it must be identical, within a
tolerance where it cannot be, and a changed config is reported at the first value that differs."""

import json
import shutil

import pytest

from homogan.cli import main


@pytest.fixture
def frozen(tiny_config, tmp_path, capsys):
    """A tiny 2-epoch run, frozen from its run folder into tmp/exps/Tiny (with its record)."""
    from homogan.train import train

    run = train(tiny_config("training.precision=float32"), echo=lambda *a, **k: None).run
    exps = tmp_path / "exps"
    assert main(["freeze", str(run.path), "--name", "Tiny", "--experiments-dir", str(exps)]) == 0
    out = capsys.readouterr().out
    assert "kept the record" in out and "2 epochs" in out
    return exps / "Tiny"


def test_freezing_a_run_keeps_its_record(frozen):
    record = frozen / "record"
    assert {"history.csv", "run.json", "config.json", "record.json", "epoch_0002.png"} <= {p.name for p in record.iterdir()}
    summary = json.loads((record / "record.json").read_text())
    assert summary["epochs"] == 2 and summary["precision"] == "float32" and summary["device_class"].startswith("cpu")
    assert len(summary["code"]["package_sha256"]) == 16


def test_a_frozen_experiment_reproduces_exactly_on_the_same_code_and_machine(frozen, capsys):
    assert main(["reproduce", str(frozen)]) == 0
    out = capsys.readouterr().out
    assert "reproduced exactly: 2 epochs" in out
    assert (frozen / "results" / "history.csv").is_file()
    assert main(["reproduce", str(frozen), "--epochs", "1"]) == 0  # a fresh folder each time, the first epoch only
    assert "reproduced exactly: 1 epochs" in capsys.readouterr().out
    assert (frozen / "results-2" / "history.csv").read_text().count("\n") == 2


def test_a_changed_config_is_reported_at_the_first_value_that_differs(frozen, tmp_path, capsys):
    copy = tmp_path / "exps" / "Changed"
    shutil.copytree(frozen, copy)
    config = json.loads((copy / "config.json").read_text())
    config["training"]["d_optimizer"]["learning_rate"] = 0.001
    (copy / "config.json").write_text(json.dumps(config))
    assert main(["reproduce", str(copy)]) == 1
    out = capsys.readouterr().out
    line = next(line for line in out.splitlines() if line.startswith("not reproduced"))
    assert "epoch 1" in line and "recorded" in line and "reproduced" in line


def test_on_another_device_class_the_values_are_compared_within_a_tolerance(frozen, monkeypatch, capsys):
    from homogan import device
    from homogan.device import DeviceFacts

    recorded = json.loads((frozen / "record" / "record.json").read_text())["device_class"]
    # whatever CPU class recorded the run, the one injected here is another (an AVX2-only CPU records cpu-avx2)
    other = next(facts for facts in (DeviceFacts("cpu", "Another CPU", frozenset({"avx2", "fma"})),
                                     DeviceFacts("cpu", "Another CPU", frozenset({"avx2", "fma", "avx512f"})))
                 if facts.device_class != recorded)
    monkeypatch.setattr(device, "read_facts", lambda distribute="none", accelerators=True: other)
    assert main(["reproduce", str(frozen), "--tolerance", "g_loss=0.5"]) == 0
    out = capsys.readouterr().out
    assert "reproduced within tolerance at epoch 2" in out and "device_class" in out
    assert "| g_loss |" in out and "(relative 0.5)" in out


def test_a_config_only_freeze_has_no_record_and_reproduce_says_so(tiny_config, tmp_path, capsys):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(tiny_config().to_dict()))
    assert main(["freeze", str(path), "--name", "Plain", "--experiments-dir", str(tmp_path / "exps")]) == 0
    assert "has no record" in capsys.readouterr().out
    assert main(["reproduce", str(tmp_path / "exps" / "Plain")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "no record to reproduce" in line
    assert main(["reproduce", str(tmp_path / "exps" / "Plain"), "--tolerance", "fid"]) == 2


# --- every evaluation value carries its protocol --------------------------------------------------------------

EVAL = ["evaluation.every_epochs=1", "evaluation.num_samples=16", "evaluation.num_real=16",
        "evaluation.per_combination=2", "evaluation.classifier_epochs=1", 'data.attributes=["Bald"]']


def test_protocol_differences_ignore_which_generator_was_measured():
    from homogan.metrics import protocol_differences

    a = {"feature_extractor": "x", "n_generated": 16, "seed": 0, "generator": "ema_generator", "epoch": 3}
    assert protocol_differences(a, {**a, "generator": "generator", "epoch": 9}) == []
    assert protocol_differences(a, {**a, "n_generated": 32}) == ["n_generated"]
    assert protocol_differences(a, None) == ["protocol unknown"]


def test_runs_record_their_evaluation_protocol_and_the_report_refuses_to_compare_unlike_ones(tiny_config, tmp_path):
    from homogan import report
    from homogan.train import train

    quiet = dict(echo=lambda *a, **k: None)
    a = train(tiny_config(*EVAL, "training.epochs=1"), **quiet).run.path
    b = train(tiny_config(*EVAL, "training.epochs=1"), **quiet).run.path
    c = train(tiny_config(*EVAL, "training.epochs=1", "evaluation.num_samples=24"), **quiet).run.path
    protocol = json.loads((a / "evaluation.json").read_text())
    assert protocol["n_generated"] == 16 and protocol["n_real"] <= 16 and protocol["feature_extractor"].startswith(
        "classifier:") and len(protocol["extractor_weights"]) == 16 and protocol["generator"] == "generator"
    assert protocol["reference"]["selection"]["attributes"] == ["Bald"] and protocol["attribute_control"]["per_combination"] == 2
    _, md = report.build([a, b, c], tmp_path / "r.html")
    row = next(line for line in md.read_text().splitlines() if line.startswith("| **evaluation protocol**"))
    cells = row.split(" | ")
    assert "the reference for the others" in cells[1] and cells[2].startswith("comparable with")
    assert "NOT comparable" in cells[3] and "n_generated" in cells[3]
    # The summary ranks the comparable two by their best FID, and lists the third unranked.
    text = md.read_text()
    assert "## Summary (ranked by the best fid" in text
    summary = text.split("## Summary")[1].split("## Curves")[0]
    rows = [line.split(" | ") for line in summary.splitlines()
            if line.startswith("| ") and not line.startswith("| rank |") and "---" not in line]
    assert [r[0].strip("| ") for r in rows] == ["1", "2", "not ranked: not comparable"]
    best_fid = [float(r[5].split("(best ")[1].split(" ")[0]) for r in rows]
    assert best_fid[0] <= best_fid[1] and rows[2][1] == c.name
    curves = tmp_path / "r_curves"
    assert {"g_loss.png", "fid.png", "recall.png"} <= {p.name for p in curves.iterdir()}
    assert "r_curves/fid.png" in (tmp_path / "r.html").read_text()


def test_evaluate_writes_the_protocol_beside_the_values(tiny_config):
    from homogan.evaluation import evaluate_run
    from homogan.train import train

    run = train(tiny_config(*EVAL, "training.epochs=1", "evaluation.every_epochs=0"), echo=lambda *a, **k: None).run
    measured = evaluate_run(run.path, num_samples=16, per_combination=2, echo=lambda *a, **k: None)
    saved = json.loads((run.path / "metrics.json").read_text())
    assert saved["protocol"] == measured["protocol"]
    assert saved["protocol"]["n_generated"] == 16 and saved["protocol"]["checkpoint"] == "epoch_0001"


def test_reproduce_does_not_compare_evaluation_values_measured_another_way(tiny_config, tmp_path, capsys):
    from homogan.train import train

    run = train(tiny_config(*EVAL, "training.precision=float32", "training.epochs=1"), echo=lambda *a, **k: None).run
    exps = tmp_path / "exps"
    assert main(["freeze", str(run.path), "--name", "Ev", "--experiments-dir", str(exps)]) == 0
    assert main(["reproduce", str(exps / "Ev")]) == 0
    assert "reproduced exactly" in capsys.readouterr().out
    protocol = json.loads((exps / "Ev" / "record" / "evaluation.json").read_text())
    protocol["extractor_weights"] = "0" * 16  # as if the record had been measured with other weights
    (exps / "Ev" / "record" / "evaluation.json").write_text(json.dumps(protocol))
    assert main(["reproduce", str(exps / "Ev")]) == 0
    out = capsys.readouterr().out
    assert "evaluation values not compared: their protocols differ (extractor_weights)" in out
