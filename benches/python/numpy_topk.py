"""numpy's exact top 10 over 1,000 unit vectors of 384 dimensions: the
figure issue 20's vector target is set against (docs/performance.md).

    python3 -m venv /tmp/np && /tmp/np/bin/pip install numpy
    /tmp/np/bin/python benches/python/numpy_topk.py
"""

import time

import numpy as np

N, DIM, K = 1_000, 384, 10
rng = np.random.default_rng(20)
vectors = rng.uniform(-1, 1, (N, DIM)).astype(np.float32)
vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
queries = rng.uniform(-1, 1, (64, DIM)).astype(np.float32)
queries /= np.linalg.norm(queries, axis=1, keepdims=True)


def top(q):
    scores = vectors @ q
    best = np.argpartition(-scores, K)[:K]
    return best[np.argsort(-scores[best])]


assert top(vectors[0])[0] == 0  # a vector is its own nearest
runs, start = 0, time.perf_counter()
while time.perf_counter() - start < 3:
    for q in queries:
        top(q)
    runs += len(queries)
took = (time.perf_counter() - start) / runs
print(f"numpy exact top {K} of {N:,} x {DIM}: {took * 1e6:.1f} µs ({1 / took:,.0f}/s)")
