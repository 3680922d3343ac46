"""The numbers that say whether a GAN got better, as pure numpy math: FID, KID, precision/recall.

No TensorFlow here (a test imports this module in a fresh interpreter and checks), so the math is
tested on its own against closed forms, like stylegan2-ada's ``metrics/``.

* :func:`frechet_distance` (FID): the matrix square root is taken as ``tr sqrt(sqrt(S1) S2 sqrt(S1))``
  from symmetric eigen-decompositions, tiny negative eigenvalues of the PSD matrices clipped to 0, so
  it is stable even for singular covariances.
* :func:`kid`: unbiased MMD² with the cubic polynomial kernel (Bińkowski et al. 2018), mean and
  standard deviation over random subsets; can be slightly negative when the distributions match.
* :func:`precision_recall`: Kynkäänniemi et al. 2019, k-NN balls around each real / fake feature, k = 3.
"""

from __future__ import annotations

import numpy as np

PR_K = 3
KID_SUBSETS = 50
KID_SUBSET_SIZE = 1000
#: Lower is better for these (the best checkpoint, the report's "best" column); higher for every other
#: metric. The one list: the losses are here for the report's history columns.
LOWER_IS_BETTER = ("fid", "kid", "g_loss", "d_loss", "d_loss_real", "d_loss_fake")
#: Sample counts and settings recorded beside the metrics (not metrics themselves).
COUNTS = ("fid_n_real", "fid_n_fake", "kid_n_real", "kid_n_fake", "kid_subset_size", "kid_subsets", "pr_n_real",
          "pr_n_fake", "pr_k")


def _sym(a: np.ndarray) -> np.ndarray:
    return 0.5 * (a + a.T)


def sqrtm_psd(a: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (eigenvalues < 0 → 0)."""
    w, v = np.linalg.eigh(_sym(np.asarray(a, np.float64)))
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of (N, D) features, in float64."""
    f = np.asarray(features, np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"`features` should be (N >= 2, D). Received shape {f.shape}")
    return f.mean(axis=0), np.atleast_2d(np.cov(f, rowvar=False))


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """‖μ1-μ2‖² + tr S1 + tr S2 - 2 tr (S1^½ S2 S1^½)^½ — the Fréchet distance of two Gaussians.

    (S1^½ S2 S1^½ is symmetric PSD and has the eigenvalues of S1 S2, so its trace-root equals
    tr (S1 S2)^½ without a non-symmetric matrix square root.)
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = _sym(np.asarray(sigma1, np.float64)), _sym(np.asarray(sigma2, np.float64))
    root1 = sqrtm_psd(s1)
    middle = _sym(root1 @ s2 @ root1)
    tr_covmean = float(np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(middle), 0.0, None))))
    value = float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)
    return max(value, 0.0)


def fid(real_features: np.ndarray, fake_features: np.ndarray) -> float:
    return frechet_distance(*statistics(real_features), *statistics(fake_features))


def _polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² with k(a, b) = (a·b / d + 1)³ (Bińkowski et al. 2018)."""
    d = x.shape[1]
    kxx = (x @ x.T / d + 1.0) ** 3
    kyy = (y @ y.T / d + 1.0) ** 3
    kxy = (x @ y.T / d + 1.0) ** 3
    m, n = len(x), len(y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2.0 * kxy.mean())


def kid(real_features: np.ndarray, fake_features: np.ndarray, subsets: int = KID_SUBSETS,
        subset_size: int = KID_SUBSET_SIZE, seed: int = 0) -> tuple[float, float, int]:
    """(mean, std, subset size) of the unbiased polynomial-kernel MMD² over random subsets."""
    x, y = np.asarray(real_features, np.float64), np.asarray(fake_features, np.float64)
    size = min(subset_size, len(x), len(y))
    if size < 2:
        raise ValueError("KID needs at least 2 real and 2 fake samples")
    rng = np.random.default_rng(seed)
    values = [_polynomial_mmd2(x[rng.choice(len(x), size, replace=False)], y[rng.choice(len(y), size, replace=False)])
              for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values)), size


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


def knn_radii(features: np.ndarray, k: int = PR_K, chunk: int = 1024) -> np.ndarray:
    """Squared distance from each point to its k-th nearest other point of the same set."""
    f = np.asarray(features, np.float64)
    if len(f) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} samples per set, got {len(f)}")
    radii = np.empty(len(f))
    for start in range(0, len(f), chunk):
        d = _squared_distances(f[start:start + chunk], f)
        # Column k of the sorted row: index 0 is the point itself (distance 0).
        radii[start:start + chunk] = np.partition(d, k, axis=1)[:, k]
    return radii


def _coverage(points: np.ndarray, centres: np.ndarray, radii: np.ndarray, chunk: int = 1024) -> float:
    """Fraction of ``points`` inside at least one ball (centre, radius) of the other set."""
    inside = np.zeros(len(points), bool)
    for start in range(0, len(points), chunk):
        d = _squared_distances(points[start:start + chunk], centres)
        inside[start:start + chunk] = np.any(d <= radii[None, :] * (1 + 1e-9) + 1e-12, axis=1)
    return float(inside.mean())


def precision_recall(real_features: np.ndarray, fake_features: np.ndarray, k: int = PR_K) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019).

    Precision: fraction of fakes inside the real manifold (the union of balls around every real
    feature reaching its k-th nearest real neighbour); recall: fraction of reals inside the fake
    manifold. Mode collapse shows as high precision with low recall.
    """
    precision, recall, _ = precision_recall_spread(real_features, fake_features, k)
    return precision, recall


def precision_recall_spread(real_features: np.ndarray, fake_features: np.ndarray, k: int = PR_K) -> tuple[float, float, float]:
    """:func:`precision_recall` and, from the same k-NN radii, the fakes' **spread**: the median distance from a
    fake to its k-th nearest other fake over the same for reals (equally many of each). About 1 when G's images
    are as far apart as real ones; near 0 when G has collapsed onto a few images — which precision (near 1)
    and attribute control (a collapsed G can show every requested attribute) do not say, and recall says only
    as "covers little"."""
    r, f = np.asarray(real_features, np.float64), np.asarray(fake_features, np.float64)
    real_radii, fake_radii = knn_radii(r, k), knn_radii(f, k)
    real_median = float(np.sqrt(np.median(real_radii)))
    spread = float(np.sqrt(np.median(fake_radii))) / real_median if real_median > 0 else float("nan")
    return _coverage(f, r, real_radii), _coverage(r, f, fake_radii), spread


#: Below this spread (:func:`precision_recall_spread`) with at least :data:`COLLAPSE_PRECISION`, G has collapsed.
#: Measured (README "Small data"): 0.08 for a G that drew one face per class (precision 1.00, recall 0.00), 0.41-0.47
#: for the default G after 300-600 steps (precision 0.03-0.13), 0.55 for a G on its way to collapse (recall 0.20),
#: 0.95-1.02 for healthy ones.
COLLAPSE_SPREAD = 0.2
#: A G whose images are alike *and* realistic: the collapse that precision and attribute control hide (an early G
#: whose images are alike blobs has a low precision too, and is only early).
COLLAPSE_PRECISION = 0.5


def collapse_warning(values: dict) -> str | None:
    """One line when an evaluation says G has collapsed (``spread`` and ``precision`` of :func:`all_metrics`), or
    None."""
    spread, precision = values.get("spread"), values.get("precision")
    if spread is None or precision is None or not spread < COLLAPSE_SPREAD or precision < COLLAPSE_PRECISION:
        return None
    return (f"the generator has collapsed: its images are {spread:.2f}x as far apart as real ones (spread; about 1 "
            f"when healthy) at precision {precision:.2f} and recall {float(values.get('recall', float('nan'))):.2f} — "
            f"it draws a few images for every input, so precision and attribute/class control say nothing about it "
            f"(look at the sample grid). What helps: an earlier checkpoint, a weaker discriminator "
            f"(model.discriminator.conditioning=concat, spectral_norm), or a lower d_optimizer.learning_rate")


def all_metrics(real_features: np.ndarray, fake_features: np.ndarray, seed: int = 0,
                real_stats: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """FID, KID (± std), precision and recall, each beside the numbers of real and fake samples.

    Precision/recall use equally many real and fake samples (the smaller count; both sets'
    manifold estimates depend on their size).
    """
    n_real, n_fake = len(real_features), len(fake_features)
    mu, sigma = real_stats if real_stats is not None else statistics(real_features)
    out = {"fid": frechet_distance(mu, sigma, *statistics(fake_features)), "fid_n_real": n_real, "fid_n_fake": n_fake}
    kid_mean, kid_std, size = kid(real_features, fake_features, seed=seed)
    out.update(kid=kid_mean, kid_std=kid_std, kid_n_real=n_real, kid_n_fake=n_fake, kid_subset_size=size,
               kid_subsets=KID_SUBSETS)
    n = min(n_real, n_fake)
    rng = np.random.default_rng(seed)
    r = real_features[np.sort(rng.choice(n_real, n, replace=False))] if n < n_real else real_features
    f = fake_features[np.sort(rng.choice(n_fake, n, replace=False))] if n < n_fake else fake_features
    precision, recall, spread = precision_recall_spread(r, f)
    out.update(precision=precision, recall=recall, spread=spread, pr_n_real=n, pr_n_fake=n, pr_k=PR_K)
    return out


def overfitting_rv(seen_logits, unseen_logits, fake_logits) -> float:
    """ADA's validation heuristic r_v (Karras et al. 2020, §3): (E[D(seen)] − E[D(unseen)]) / (E[D(seen)] − E[D(fake)])
    over D's raw outputs — seen: real images D trains on; unseen: real images of the same distribution it never
    sees. 0 when D scores unseen images like its training images (it generalises), 1 when it scores them like
    G's fakes (it has memorised its training set). Unlike r_t = E[sign D(seen)], which is near 1 for any D
    that is sure of real images — one that simply beats a weak G too —, r_v is measured against the gap to
    the fakes, so it is comparable across discriminators. nan when D scores training and fake images alike."""
    seen = float(np.mean(seen_logits))
    gap = seen - float(np.mean(fake_logits))
    return (seen - float(np.mean(unseen_logits))) / gap if gap != 0 else float("nan")


def numeric(metrics: dict) -> dict:
    """The float-valued entries (what the training callback puts into Keras' logs)."""
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
            and k not in COUNTS}


def is_better(metric: str, value: float, best: float | None) -> bool:
    if best is None:
        return True
    return value < best if metric in LOWER_IS_BETTER else value > best


#: Protocol fields that say which generator a value measured (what comparisons are about), not how.
MEASURED_THING = ("generator", "checkpoint", "epoch")


def protocol_differences(a: dict | None, b: dict | None) -> list[str]:
    """The protocol fields in which two values' protocols differ (feature extractor and its weights, image size,
    sample counts, the real reference, the seed, …), ignoring which generator was measured; ``["protocol
    unknown"]`` when either has none (values stored before protocols were recorded). Values are comparable —
    and may be ranked — only when this is empty."""
    if not a or not b:
        return ["protocol unknown"]
    keys = sorted((set(a) | set(b)) - set(MEASURED_THING))
    return [k for k in keys if a.get(k) != b.get(k)]


def is_evaluation_value(key: str) -> bool:
    """Whether a history column was measured by the evaluation (and so has a protocol), not by training."""
    return key in ("fid", "kid", "kid_std", "precision", "recall", "spread", "feature_extractor") or key.startswith("attribute_")
