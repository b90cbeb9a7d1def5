"""t-SNE iterations (not run in CI): time and embedding quality of the report's t-SNE at 1,000
(scikit-learn's default), 750 (openTSNE's default, ours) and 500 iterations.

    .venv/bin/python bench/tsne.py

On scikit-learn's digits (standardised pixels, as `evaluate.features.tsne_embedding` standardises a
run's features): all 1,797 images and a seeded 450 (a digits run's test set). Quality: the final
KL divergence (lower is better) and the trustworthiness of the 10 nearest neighbours (scikit-learn,
1 is best). One OpenMP thread, as the report runs it. Writes bench/results/tsne.md.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.manifold import TSNE, trustworthiness
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    x = load_digits().data.astype(np.float32)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    sets = {"digits, 1,797 images": x,
            "digits, 450 images": x[np.random.default_rng(0).choice(len(x), 450, replace=False)]}
    lines = ["| data | iterations | seconds | KL divergence | trustworthiness (10 neighbours) |",
             "|---|---|---|---|---|"]
    for name, data in sets.items():
        for iterations in (1000, 750, 500):
            tsne = TSNE(n_components=2, perplexity=30, init="pca", random_state=0, learning_rate="auto",
                        max_iter=iterations)
            start = time.perf_counter()
            with threadpool_limits(limits=1, user_api="openmp"):
                points = tsne.fit_transform(data)
            row = {"data": name, "iterations": iterations, "seconds": round(time.perf_counter() - start, 2),
                   "kl": round(float(tsne.kl_divergence_), 3),
                   "trustworthiness": round(float(trustworthiness(data, points, n_neighbors=10)), 4)}
            print(json.dumps(row), flush=True)
            lines.append(f"| {name} | {iterations} | {row['seconds']} | {row['kl']} "
                         f"| {row['trustworthiness']} |")
    (ROOT / "bench" / "results" / "tsne.md").write_text(
        f"t-SNE iterations ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, one OpenMP thread; "
        "`.venv/bin/python bench/tsne.py`)\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
