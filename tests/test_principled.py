"""Which loss / constraint / normalisation combinations are principled: refused, warned about, or fine
(issue: GAN math, second pass), and what a Wasserstein run shows instead of D accuracies."""

import numpy as np
import pytest

from homogan.config import doubts, load_config
from homogan.errors import ConfigError

WSN_BN = ["training.loss=wasserstein", "model.discriminator.spectral_norm=true", "model.discriminator.normalization=batch"]


@pytest.mark.parametrize("sets, expected", [
    (WSN_BN, "Wasserstein critic with spectral norm and batch norm"),
    (["training.r1_gamma=10", "model.discriminator.normalization=batch"], "R1 with batch norm in D"),
    (["model.discriminator.conditioning=projection", 'data.attributes=["Bald"]'], "projection in a batch-normalised D without spectral norm"),
])
def test_combinations_whose_results_are_not_to_be_trusted_are_named(sets, expected):
    (line,) = doubts(load_config(None, sets))
    assert expected in line and "use model.discriminator.normalization" in line


@pytest.mark.parametrize("sets", [
    [],  # BCE with batch norm in D: DCGAN
    ["training.loss=wasserstein", "model.discriminator.spectral_norm=true", "model.discriminator.normalization=none"],
    ["training.loss=wasserstein", "training.gradient_penalty=10", "model.discriminator.normalization=layer"],
    ["training.loss=hinge", "model.discriminator.spectral_norm=true", "model.discriminator.normalization=none"],
    ["training.r1_gamma=10", "model.discriminator.normalization=none"],
    ["model.discriminator.conditioning=projection", 'data.attributes=["Bald"]', "model.discriminator.spectral_norm=true",
     "model.discriminator.normalization=none"],  # Miyato & Koyama's projection D
    ["model.discriminator.conditioning=projection", 'data.attributes=["Bald"]', "data.image_size=32"],  # measured: fine at 32 px
])
def test_principled_combinations_have_no_doubts(sets):
    assert doubts(load_config(None, sets)) == []


def test_an_unconstrained_wasserstein_critic_is_refused():
    with pytest.raises(ConfigError, match="Lipschitz"):
        load_config(None, ["training.loss=wasserstein"])


def test_the_shipped_wsn_batch_norm_grid_cells_still_load_and_are_flagged():
    from tests.conftest import ROOT

    for name in ("Grid_WSN_ConvT_BN", "Grid_WSN_Up_BN"):
        config = load_config(ROOT / "experiments" / name / "config.json")
        assert doubts(config) and "spectral norm and batch norm" in doubts(config)[0]


def test_a_wasserstein_run_logs_the_critic_gap_not_accuracies(tiny_config):
    from homogan.train import train

    lines = []
    result = train(tiny_config("training.loss=wasserstein", "model.discriminator.spectral_norm=true", "training.epochs=1",
                               "model.discriminator.normalization=batch"),
                   echo=lambda *a, **k: lines.append(" ".join(map(str, a))))
    row = result.history[0]
    assert "critic_gap" in row and "d_acc_real" not in row and "d_acc_fake" not in row
    assert np.isfinite(row["critic_gap"])
    assert (result.run.path / "critic.png").is_file() and not (result.run.path / "accuracy.png").exists()
    assert any(line.startswith("warning      Wasserstein critic with spectral norm and batch norm") for line in lines)


def test_the_report_marks_a_run_that_is_not_principled(tiny_config, tmp_path):
    from homogan import report
    from homogan.train import train

    bad = train(tiny_config(*WSN_BN, "training.epochs=1"), echo=lambda *a, **k: None).run
    good = train(tiny_config("training.epochs=1"), echo=lambda *a, **k: None).run
    html, md = report.build([bad.path, good.path], tmp_path / "r.html")
    text = md.read_text()
    warnings = next(line for line in text.splitlines() if line.startswith("| **warnings**"))
    cells = warnings.split(" | ")
    assert "not principled: Wasserstein critic" in cells[1] and cells[2].startswith("none")


def test_hinge_keeps_its_accuracies():
    """Hinge's margins at ±1 are not shift-invariant, so 'logit > 0' still means something."""
    from homogan import losses

    assert losses.get("hinge").decision_threshold == 0.0 and losses.get("wasserstein").decision_threshold is None
