"""ICRL (the paper's closed-form stand-in) under our pipeline vs the reference pipeline.

Every column toggles ONE step of our pipeline (fig2a's ``paper-linear`` cells, data seeds as in
the full run) towards what the authors' released code does, and prints ICRL's pooled MCC
(``mcc_paper``) as the mean over data seeds, rows d:

- ``ours``: the full run's pipeline (float32 X, ``numpy.linalg.lstsq``, interventional test
  rows pooled sample-major, 5000-row chunks, Pearson correlations);
- ``preset-ref``: our icrl's preset ``reference`` (``cutoff="eps"``: eps * s_max with the
  data's own eps) on our float32 data;
- ``float64``: the data kept in float64 (the reference never rounds to float32);
- ``old-sklearn``: the coefficients from ``scipy.linalg.lstsq`` with its default cutoff, the
  solver scikit-learn's ``LinearRegression(fit_intercept=False)`` called in 2023;
- ``ref-mcc``: the reference's correlation, covariance with ddof 1 over standard deviations
  with ddof 0 (a factor chunk / (chunk - 1) on every entry);
- ``ref-env-order``: the environments in the reference's order (its i-th environment leaves
  out latent d - i), which changes the sample-major interleaving;
- ``shuffled``: the test samples in random order (the reference's ``train_test_split``
  shuffles);
- ``with-obs``: what-if: the observational environment added to ICRL's fit and to the pooled
  scoring rows (neither pipeline does this);
- ``exact``: the exact minimum-norm least-squares solution (SVD truncated at the rank of an
  environment in exact arithmetic, 2 for the leave-one-out do-design), i.e. no rounding noise;
- ``ref-draws``: the reference's random draws (graph, weights and latent noise from
  ``RandomState(seed)`` exactly as its SCM generator draws them, environments in its order),
  everything else ours;
- ``ref-all``: the whole reference pipeline re-implemented (its draws in float64, a shuffled
  75/25 split, old-sklearn solver, its correlation).

Usage: ``.venv/bin/python benchmarks/icrl_reference.py [--d 3 6 10 30] [--seeds 0 1 2 3 4]
[--n 100000]`` (about 5 minutes on 2 cores: 40 s for d = 3, 6, 10, the rest for d = 30).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import scipy.linalg
import yaml
from scipy.optimize import linear_sum_assignment

from mncrl import estimators, metrics
from mncrl.estimators import icrl
from mncrl.experiments import core
from mncrl.mixing import reference_mixing
from mncrl.simulation import Scenario
from mncrl.threads import single_threaded_blas

ROOT = Path(__file__).resolve().parents[1]
CHUNK = metrics.PAPER_CHUNK
TARGET = 10.0
VARIANTS = (
    "ours",
    "preset-ref",
    "float64",
    "old-sklearn",
    "ref-mcc",
    "ref-env-order",
    "shuffled",
    "with-obs",
    "exact",
    "ref-draws",
    "ref-all",
)


# ---- fitting -------------------------------------------------------------------------------


def gamma_scipy(envs) -> np.ndarray:
    """Per-environment coefficients from scipy's gelsd with its default cutoff (eps * s_max)."""
    rows = []
    for X in envs:
        X = np.asarray(X, dtype=np.float64)
        g, *_ = scipy.linalg.lstsq(X, np.full(X.shape[0], TARGET))
        rows.append(g)
    return np.stack(rows)


def gamma_exact(envs, rank: int) -> np.ndarray:
    """Minimum-norm solution with the spectrum truncated at ``rank``."""
    rows = []
    for X in envs:
        Q, R = np.linalg.qr(np.asarray(X, dtype=np.float64))  # X = Q R, then R's SVD
        U, s, Vt = np.linalg.svd(R)
        Qy = Q.T @ np.full(X.shape[0], TARGET)
        rows.append(Vt[:rank].T @ ((U[:, :rank].T @ Qy) / s[:rank]))
    return np.stack(rows)


# ---- scoring -------------------------------------------------------------------------------


def mcc_reference(Z: np.ndarray, Zhat: np.ndarray, chunk: int = CHUNK) -> float:
    """Chunked MCC with the reference's normalisation: cov (ddof 1) / (std * std) (ddof 0)."""
    scores = []
    for c in range(Z.shape[0] // chunk):
        a = Zhat[c * chunk : (c + 1) * chunk]
        b = Z[c * chunk : (c + 1) * chunk]
        a0, b0 = a - a.mean(0), b - b.mean(0)
        cov = a0.T @ b0 / (chunk - 1)
        C = np.abs(cov / np.outer(a.std(0), b.std(0)))
        r, k = linear_sum_assignment(-C)
        scores.append(C[r, k].mean())
    return float(np.mean(scores))


def score(Z, X, Gamma) -> float:
    return metrics.mcc_paper(
        np.asarray(Z, dtype=np.float64), np.asarray(X, dtype=np.float64) @ Gamma.T
    )


# ---- the reference's draws (re-implemented from its description) ---------------------------


def reference_graph(d: int, seed: int, p: float = 0.75, low: float = 0.1, high: float = 1.0):
    """Weighted adjacency (W[i, j]: i -> j, float32) drawn like the reference: nodes visited
    from d-1 down to 1, a Binomial(#lower nodes, p) number of parents chosen among the lower
    nodes, then one uniform weight per edge in row-major order; one RandomState(seed)."""
    rs = np.random.RandomState(seed)
    A = np.zeros((d, d), dtype=np.int32)
    order = np.arange(d)[::-1]
    for i in range(d - 1):
        parents = rs.choice(order[i + 1 :], size=rs.binomial(n=d - i - 1, p=p), replace=False)
        A[parents, order[i]] = 1
    W = np.zeros((d, d), dtype=np.float32)
    for i in range(d):
        for j in range(d):
            if A[i, j]:
                W[i, j] = rs.uniform(low, high)
    return W


def reference_data(d: int, seed: int, n: int, mixing_seed: int = 0):
    """Per-environment (X_k, Z_k) in the reference's order (environment k leaves latent
    d-1-k free, the others do(=1)); every environment reuses the same noise draw (its SCM's
    RandomState(seed) is deep-copied before each environment is sampled)."""
    W = reference_graph(d, seed).astype(np.float64)
    if d == 30:  # the reference's 30-node SCM uses W[7, 29] as the x8 coefficient of z22
        W[7, 21] = W[7, 29]
    rs = np.random.RandomState(seed)
    E = np.stack([0.1 * rs.standard_normal(n) for _ in range(d)], axis=1)
    L = reference_mixing(d, d, mixing_seed)
    Xs, Zs = [], []
    for k in range(d):
        free = d - 1 - k
        Zk = np.ones((n, d))
        Zk[:, free] = W[:free, free].sum() + E[:, free]
        Xs.append(Zk @ L)
        Zs.append(Zk)
    return np.stack(Xs), np.stack(Zs), L, float(W.sum())


# ---- one data seed -------------------------------------------------------------------------


def run_seed(base: dict, d: int, seed: int, n: int) -> dict:
    out = {}
    s = Scenario.from_dict({**base, "d": d, "n": n})
    p = core.prepare(s, "fig2a", f"d-{d}", seed, 0.25)
    G = icrl.fit(p.train_envs, seed=0, latent_dim=d).unmixing.T  # (d x m), rows = envs
    out["ours"] = score(p.test_Z, p.test_X, G)
    ref = estimators.resolve("icrl", "reference").hparams
    out["preset-ref"] = score(p.test_Z, p.test_X, icrl.fit(p.train_envs, **ref).unmixing.T)
    out["old-sklearn"] = score(p.test_Z, p.test_X, gamma_scipy(p.train_envs))
    out["exact"] = score(p.test_Z, p.test_X, gamma_exact(p.train_envs, 2))
    Zhat = p.test_X.astype(np.float64) @ G.T
    out["ref-mcc"] = mcc_reference(p.test_Z.astype(np.float64), Zhat)
    K = len(p.train_envs)
    n_test = p.test_X.shape[0] // K
    # env k of ours leaves latent k free; the reference's k-th leaves d-1-k: reverse the envs
    rev = (np.arange(n_test)[:, None] * K + np.arange(K)[::-1][None, :]).ravel()
    out["ref-env-order"] = metrics.mcc_paper(p.test_Z[rev].astype(np.float64), Zhat[rev])
    shuf = np.random.default_rng(seed).permutation(n_test)
    rows = (shuf[:, None] * K + np.arange(K)[None, :]).ravel()
    out["shuffled"] = metrics.mcc_paper(p.test_Z[rows].astype(np.float64), Zhat[rows])
    if p.obs_train is not None:
        fit = icrl.fit([*p.train_envs, p.obs_train], seed=0, latent_dim=d)
        Xe, Ze = p.test_X.reshape(n_test, K, -1), p.test_Z.reshape(n_test, K, -1)
        X_all = core.interleave([Xe[:, k] for k in range(K)] + [p.obs_test_X])
        Z_all = core.interleave([Ze[:, k] for k in range(K)] + [p.obs_test_Z])
        out["with-obs"] = metrics.mcc_paper(
            Z_all.astype(np.float64), X_all.astype(np.float64) @ fit.unmixing
        )
    del p
    s64 = Scenario.from_dict({**base, "d": d, "n": n, "dtype": "float64"})
    p = core.prepare(s64, "fig2a", f"d-{d}", seed, 0.25)
    out["float64"] = score(p.test_Z, p.test_X, icrl.fit(p.train_envs, seed=0).unmixing.T)
    del p

    # the reference's draws
    X, Z, _, wsum = reference_data(d, seed, n)
    if wsum == 0:
        print(f"  note: d={d} seed={seed}: the reference would stop (graph without edges)")
    n_test = int(np.ceil(0.25 * n))
    perm = np.random.RandomState(seed).permutation(n)
    test, train = perm[:n_test], perm[n_test:]
    tr = [X[k, np.sort(train)] for k in range(d)]
    Gr = icrl.fit(tr, seed=0, latent_dim=d).unmixing.T
    Xt = core.interleave([X[k, np.sort(test)] for k in range(d)])
    Zt = core.interleave([Z[k, np.sort(test)] for k in range(d)])
    out["ref-draws"] = score(Zt, Xt, Gr)
    Xt = core.interleave([X[k, test] for k in range(d)])  # shuffled split, as the reference
    Zt = core.interleave([Z[k, test] for k in range(d)])
    Gs = gamma_scipy([X[k, train] for k in range(d)])
    out["ref-all"] = mcc_reference(Zt, Xt @ Gs.T)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--d", type=int, nargs="+", default=[3, 6, 10, 30])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--n", type=int, default=100_000, help="samples per environment")
    args = ap.parse_args(argv)
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    base = config["scenarios"]["paper-linear"]
    means, per_seed = {}, {}
    for d in args.d:
        t0 = time.perf_counter()
        with single_threaded_blas():
            results = [run_seed(base, d, seed, args.n) for seed in args.seeds]
        for v in VARIANTS:
            vals = [r[v] for r in results if v in r]
            means[d, v] = float(np.mean(vals)) if vals else float("nan")
            per_seed[d, v] = vals
        print(f"d={d}: {time.perf_counter() - t0:.0f} s", flush=True)
    print(f"\nICRL pooled MCC (mcc_paper), mean over seeds {args.seeds}, n = {args.n}")
    width = max(len(v) for v in VARIANTS) + 1
    print("d".rjust(3) + "".join(v.rjust(width) for v in VARIANTS))
    for d in args.d:
        print(f"{d:3d}" + "".join(f"{means[d, v]:{width}.3f}" for v in VARIANTS))
    print("\nper seed (ours | ref-draws | ref-all):")
    for d in args.d:
        cols = [
            " ".join(f"{x:.3f}" for x in per_seed[d, v]) for v in ("ours", "ref-draws", "ref-all")
        ]
        print(f"d={d:2d}  " + " | ".join(cols))


if __name__ == "__main__":
    main()
