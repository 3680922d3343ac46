"""The metric math (homogan.metrics, pure numpy) against closed forms; pixel quantisation (homogan.pixels)."""

import math

import numpy as np
import pytest

from homogan import metrics, pixels


def test_fid_matches_the_closed_form_for_two_gaussians():
    # Commuting (diagonal) covariances: FID = |mu1-mu2|^2 + sum (sqrt(a) - sqrt(b))^2.
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 0.25])
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    expected = 1.0 + 4.0 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert metrics.frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)
    # Non-commuting 2x2: tr sqrt(S1 S2) = sqrt(tr(S1 S2) + 2 sqrt(det(S1 S2))) for a 2x2 with positive eigenvalues.
    s1 = np.array([[2.0, 0.8], [0.8, 1.0]])
    s2 = np.array([[1.0, -0.3], [-0.3, 3.0]])
    m = s1 @ s2
    tr_sqrt = math.sqrt(np.trace(m) + 2 * math.sqrt(np.linalg.det(m)))
    expected = np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
    assert metrics.frechet_distance(np.zeros(2), s1, np.zeros(2), s2) == pytest.approx(expected, rel=1e-9)
    # ...and on samples, the estimate approaches the population value.
    rng = np.random.default_rng(0)
    x = rng.multivariate_normal(np.zeros(2), s1, 200_000)
    y = rng.multivariate_normal(np.array([1.0, 0.0]), s2, 200_000)
    assert metrics.fid(x, y) == pytest.approx(expected + 1.0, rel=0.02)


def test_fid_of_a_set_with_itself_is_zero_even_when_the_covariance_is_singular():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((50, 128)).astype(np.float32)  # 50 samples in 128 dims: rank 49
    assert metrics.fid(x, x) < 1e-6 * np.trace(np.cov(x, rowvar=False))
    assert metrics.fid(x, x + 0.5) == pytest.approx(128 * 0.25, rel=1e-6)  # a shift only moves the means


def test_kid_is_unbiased_on_identical_distributions_and_positive_when_they_differ():
    rng = np.random.default_rng(2)
    same = [metrics.kid(rng.standard_normal((200, 16)), rng.standard_normal((200, 16)), subsets=5, seed=s)[0]
            for s in range(20)]
    shifted = metrics.kid(rng.standard_normal((200, 16)), rng.standard_normal((200, 16)) + 0.5, subsets=5)[0]
    assert min(same) < 0 < max(same)  # unbiased: scatters around 0, not above it
    assert abs(np.mean(same)) < 3 * np.std(same) / math.sqrt(len(same)) + 1e-4
    assert shifted > 10 * np.std(same)


def test_precision_recall_identical_collapsed_and_disjoint_sets():
    rng = np.random.default_rng(3)
    real = rng.standard_normal((400, 8))
    assert metrics.precision_recall(real, real.copy()) == (1.0, 1.0)
    collapsed = np.repeat(real[:4], 100, axis=0)  # mode collapse: a few real samples, repeated
    precision, recall = metrics.precision_recall(real, collapsed)
    assert precision > 0.99 and recall < 0.05
    other = rng.standard_normal((400, 8))
    precision, recall = metrics.precision_recall(real, other)
    assert precision > 0.6 and recall > 0.6
    assert metrics.precision_recall(real, real + 20.0) == (0.0, 0.0)


def test_spread_is_one_for_the_same_distribution_and_near_zero_for_a_collapse_and_warns_only_then():
    """The fakes' spread (median k-NN distance among fakes over that among reals) against sets whose answer is known:
    about 1 for another draw of the same distribution, the scale factor for a shrunk copy, ~0 for a few samples
    repeated (with a little noise, as a collapsed G's images differ by a little); the warning fires only for the
    collapse that precision rates as realistic."""
    rng = np.random.default_rng(5)
    real, other = rng.standard_normal((500, 8)), rng.standard_normal((500, 8))
    _, _, same = metrics.precision_recall_spread(real, other)
    assert 0.9 < same < 1.1
    _, _, half = metrics.precision_recall_spread(real, 0.5 * other)
    assert 0.45 < half < 0.55
    collapsed = np.repeat(real[:8], 63, axis=0)[:500] + 0.01 * rng.standard_normal((500, 8))
    precision, recall, spread = metrics.precision_recall_spread(real, collapsed)
    assert spread < 0.05 and precision > 0.99 and recall < 0.05
    assert metrics.precision_recall(real, collapsed) == (precision, recall)
    assert metrics.collapse_warning({"spread": spread, "precision": precision, "recall": recall}).startswith(
        "the generator has collapsed")
    assert metrics.collapse_warning({"spread": same, "precision": 0.9, "recall": 0.8}) is None
    assert metrics.collapse_warning({"spread": 0.05, "precision": 0.1, "recall": 0.0}) is None  # alike blobs: early
    assert metrics.collapse_warning({"fid": 3.0}) is None  # no precision/recall measured


def test_a_collapsed_generator_gets_one_warning_line_from_the_in_training_evaluation():
    from homogan.callbacks import CollapseWarning

    said = []
    callback = CollapseWarning(lambda *a, **k: said.append(a[0]))
    callback.set_model(type("M", (), {"stop_training": False})())
    collapsed = {"spread": 0.08, "precision": 1.0, "recall": 0.0}
    for epoch, logs in enumerate([{"d_loss": 1.0}, {"spread": 0.9, "precision": 0.8, "recall": 0.7}, collapsed, collapsed]):
        callback.on_epoch_end(epoch, logs)
    assert len(said) == 1 and "epoch 3" in said[0] and "0.08x" in said[0] and "sample grid" in said[0]


def test_all_metrics_records_sample_counts_beside_every_value():
    rng = np.random.default_rng(4)
    m = metrics.all_metrics(rng.standard_normal((300, 6)), rng.standard_normal((120, 6)))
    assert (m["fid_n_real"], m["fid_n_fake"], m["kid_n_real"], m["kid_n_fake"]) == (300, 120, 300, 120)
    assert (m["pr_n_real"], m["pr_n_fake"], m["pr_k"]) == (120, 120, 3)
    assert set(metrics.numeric(m)) == {"fid", "kid", "kid_std", "precision", "recall", "spread"}


def test_generated_images_are_quantised_like_real_ones_in_memory():
    x = np.linspace(-1, 1, 1001, dtype=np.float32)
    q = pixels.quantize(x)
    levels = (q + 1) * 127.5
    assert np.allclose(levels, np.round(levels), atol=1e-4) and np.abs(q - x).max() <= 1 / 127.5


def test_one_lower_is_better_list_serves_the_best_checkpoint_and_the_report():
    assert metrics.is_better("fid", 10.0, 20.0) and not metrics.is_better("fid", 30.0, 20.0)
    assert metrics.is_better("recall", 0.6, 0.5) and not metrics.is_better("kid", 0.2, 0.1)
    assert metrics.is_better("precision", 0.1, None)
    from homogan import report

    assert report.LOWER_IS_BETTER is metrics.LOWER_IS_BETTER


def test_rv_is_zero_when_unseen_images_score_like_training_images_and_one_when_like_fakes():
    """ADA's r_v (Karras et al. 2020, §3) over D's raw outputs, against its closed form."""
    seen, fake = np.array([3.0, 5.0]), np.array([-4.0, -6.0])  # E = 4 and -5: a gap of 9
    assert metrics.overfitting_rv(seen, np.array([4.0, 4.0]), fake) == 0.0
    assert metrics.overfitting_rv(seen, np.array([-5.0]), fake) == 1.0
    assert metrics.overfitting_rv(seen, np.array([1.0, 0.0]), fake) == pytest.approx((4 - 0.5) / 9)
    assert math.isnan(metrics.overfitting_rv(seen, np.array([0.0]), seen))


def test_a_collapsed_generator_is_never_kept_as_the_best_checkpoint(tmp_path, monkeypatch):
    """By attribute control a collapsed G (one image per class) scores 1.000, the best of the run; the
    Evaluation callback must not keep it as ``checkpoints/best``."""
    import tensorflow as tf

    from homogan import callbacks, checkpoints

    results = [{"attribute_accuracy": 0.80, "spread": 0.95, "precision": 0.8, "recall": 0.7},
               {"attribute_accuracy": 1.00, "spread": 0.08, "precision": 1.0, "recall": 0.0},
               {"attribute_accuracy": 0.85, "spread": 0.97, "precision": 0.8, "recall": 0.7}]
    evaluator = type("E", (), {"evaluate": lambda self, g, seed: results.pop(0)})()
    kept = []
    monkeypatch.setattr(checkpoints, "save_best", lambda ckpt, directory, record: kept.append(record["epoch"]))
    callback = callbacks.Evaluation(lambda: evaluator, every=1, epochs=3, best_metric="attribute_accuracy",
                                    checkpoint=None, directory=tmp_path, epoch_var=tf.Variable(0))
    callback.evaluator = evaluator
    callback.set_model(type("M", (), {"stop_training": False, "ema_generator": None, "generator": None})())
    for epoch in range(3):
        callback.on_epoch_end(epoch, {})
    assert kept == [1, 3] and callback.best == 0.85
