"""Feature views: a seeded t-SNE of the penultimate features (scikit-learn)."""

from __future__ import annotations

import numpy as np


def subsample(labels: np.ndarray, count: int, seed: int) -> np.ndarray:
    """At most `count` positions, drawn without replacement under `seed`, sorted."""
    if len(labels) <= count:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(len(labels), size=count, replace=False))


# 250 early-exaggeration iterations and 500 more, openTSNE's default (scikit-learn's is 1,000 in
# all): on digits the KL divergence is 1% higher and the trustworthiness within 0.002, in a fifth
# to a quarter less time (bench/results/tsne.md)
TSNE_ITERATIONS = 750


def tsne_embedding(
    features: np.ndarray, labels: np.ndarray, max_points: int = 2000, seed: int = 0,
    threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """2-D t-SNE points of (a seeded subsample of) the features, and the positions used.
    `threads`: OpenMP threads of the gradient (default: all cores). Beside other work give 1: its
    threads wait for each other every iteration, and with a core taken each wait can cost a
    scheduler slice (beside a report's drawing process and a background job on 2 cores a
    t-SNE took tens of times longer)."""
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    idx = subsample(labels, max_points, seed)
    x = features[idx].astype(np.float32)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)  # features of very different scales otherwise dominate
    perplexity = float(min(30.0, max(2.0, (len(idx) - 1) / 3)))
    with threadpool_limits(limits=threads, user_api="openmp"):
        points = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                      learning_rate="auto", max_iter=TSNE_ITERATIONS).fit_transform(x)
    return points, idx
