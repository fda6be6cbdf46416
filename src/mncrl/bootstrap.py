"""How stable a fit is under resampling of its rows (the bootstrap of ``mncrl fit --bootstrap``).

:func:`bootstrap` draws B resamples, each with the same number of rows per environment as the
data: rows drawn i.i.d. with replacement within each environment, or, with ``block=L`` (rows
that are time-ordered), a moving-block bootstrap: ceil(n_k / L) blocks of L consecutive rows
with uniformly drawn starts, concatenated and cut to n_k rows. Each resample is refitted with
``fit_fn`` (the same estimator, hyper-parameters, seed and latent dimension as the full-data
fit) and compared with the full-data ``reference_fit``:

- **latents**: the |Pearson correlation| between the full-data latents Zhat = X W and the
  resample's latents X W_b, both computed on the *full* data (from its covariance, so no
  n x d arrays), matched one-to-one by the Hungarian algorithm on those |correlations|
  (:func:`mncrl.metrics.matching`). Per full-data latent: the mean and minimum matched
  |corr| over the resamples; their mean per resample is an MCC against the full-data fit.
- **targets** (estimators that report them): after the same matching, the share of
  resamples whose target matrix equals the full-data one exactly, and how often each
  environment's target set contains each latent (K x d frequencies).
- **failures**: a refit that raises :class:`~mncrl.errors.MncrlError` (e.g. not identifiable
  on that resample) is counted, with its message, not hidden; the statistics above are over
  the successful refits. Refits whose W is degenerate on the full data (collinear or
  collapsed latents, :func:`mncrl.degeneracy.diagnose`) are counted too.

Deterministic in ``seed``: ``numpy.random.SeedSequence(seed).spawn(B)`` gives resample b its
own stream, so a resample does not depend on the others, on B or on the number of threads.
One resample is materialised at a time; the full-data fit is not modified.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mncrl.degeneracy import diagnose, env_moments
from mncrl.errors import MncrlError
from mncrl.metrics import matching

MAX_MESSAGES = 10  # distinct failure messages kept (with their counts)


def resample_indices(n: int, rng: np.random.Generator, block: int | None = None) -> np.ndarray:
    """n row indices in 0..n-1: i.i.d. with replacement, or moving blocks of ``block``
    consecutive rows (starts uniform in 0..n-block, the last block cut to fill exactly n)."""
    if block is None:
        return rng.integers(0, n, size=n)
    block = int(block)
    starts = rng.integers(0, n - block + 1, size=-(-n // block))
    return (starts[:, None] + np.arange(block)).ravel()[:n]


def check_block(block, counts) -> int | None:
    """``block`` as an int (None stays None); MncrlError unless 1 <= block <= the smallest
    environment's row count."""
    if block is None:
        return None
    if isinstance(block, bool) or not isinstance(block, int | np.integer) or block < 1:
        raise MncrlError(f"block length must be a positive integer, got {block!r}")
    smallest = int(min(counts))
    if block > smallest:
        raise MncrlError(
            f"block length {block} is longer than the smallest environment ({smallest} rows)"
        )
    return int(block)


def check_resamples(B) -> int:
    """``B`` as an int; MncrlError unless it is a non-negative integer."""
    if isinstance(B, bool) or not isinstance(B, int | np.integer) or B < 0:
        raise MncrlError(f"the number of bootstrap resamples must be an integer >= 0, got {B!r}")
    return int(B)


def cross_correlations(cov: np.ndarray, W_ref: np.ndarray, W: np.ndarray) -> np.ndarray:
    """|corr(X W_ref, X W)| (d_ref x d) for data with covariance ``cov``; a column with zero
    variance has correlation 0 with everything."""
    cross = W_ref.T @ cov @ W
    v_ref = np.einsum("ij,ik,kj->j", W_ref, cov, W_ref)
    v = np.einsum("ij,ik,kj->j", W, cov, W)
    denom = np.sqrt(np.outer(np.maximum(v_ref, 0.0), np.maximum(v, 0.0)))
    with np.errstate(divide="ignore", invalid="ignore"):
        C = np.where(denom > 0, np.abs(cross) / denom, 0.0)
    return np.clip(C, 0.0, 1.0)


@dataclass(frozen=True)
class BootstrapResult:
    """What :func:`bootstrap` measured; ``to_dict`` is JSON-able, ``table`` a compact summary.

    ``latent_corr`` (n_ok x d): matched |corr| of each full-data latent in every successful
    resample; ``same_targets`` (n_ok,) and ``targets`` (n_ok x K x d, aligned to the full-data
    latents) only for estimators that report targets; ``failures`` maps a message to how many
    refits raised it; ``degenerate`` counts the successful refits whose W is collinear or
    has a collapsed latent on the full data (:func:`mncrl.degeneracy.diagnose`, checks (a)
    and (b)).
    """

    resamples: int
    seed: int
    block: int | None
    latent_corr: np.ndarray
    same_targets: np.ndarray | None
    targets: np.ndarray | None
    failed: int
    failures: dict
    degenerate: int = 0

    @property
    def ok(self) -> int:
        return int(self.latent_corr.shape[0])

    def summary(self) -> dict:
        """Per-latent mean/min |corr|, MCC mean/min, target agreement and frequencies."""
        C = self.latent_corr
        out: dict = {
            "resamples": self.resamples,
            "seed": self.seed,
            "block": self.block,
            "scheme": "i.i.d. rows" if self.block is None else f"moving blocks of {self.block}",
            "fitted": self.ok,
            "failed": self.failed,
            "failures": dict(self.failures),
            "degenerate": self.degenerate,
            "latent_corr_mean": C.mean(axis=0).tolist() if self.ok else None,
            "latent_corr_min": C.min(axis=0).tolist() if self.ok else None,
            "mcc_mean": float(C.mean()) if self.ok else None,
            "mcc_min": float(C.mean(axis=1).min()) if self.ok else None,
        }
        if self.same_targets is not None:
            out["same_targets_share"] = float(self.same_targets.mean()) if self.ok else None
            out["target_frequency"] = self.targets.mean(axis=0).tolist() if self.ok else None
        return out

    def to_dict(self) -> dict:
        return self.summary()

    def table(self) -> str:
        return table(self.summary())


def table(summary: dict) -> str:
    """A few lines for the command line from :meth:`BootstrapResult.summary` (or the
    ``info["bootstrap"]`` of a fit)."""
    s = summary
    lines = [
        f"bootstrap: {s['resamples']} resamples ({s['scheme']} within each environment, "
        f"seed {s['seed']}): {s['fitted']} fitted, {s['failed']} failed"
        + (f", {s['degenerate']} degenerate" if s.get("degenerate") else "")
    ]
    for message, count in s["failures"].items():
        lines.append(f"  failed x{count}: {message}")
    if not s["fitted"]:
        return "\n".join(lines)
    d = len(s["latent_corr_mean"])
    lines.append(
        f"  |corr| of each latent with the full-data fit's (matched): MCC mean "
        f"{s['mcc_mean']:.4f}, worst resample {s['mcc_min']:.4f}"
    )
    lines.append("  latent " + " ".join(f"{j:>6d}" for j in range(d)))
    lines.append("  mean   " + " ".join(f"{v:6.3f}" for v in s["latent_corr_mean"]))
    lines.append("  min    " + " ".join(f"{v:6.3f}" for v in s["latent_corr_min"]))
    if s.get("target_frequency") is not None:
        same = round(s["same_targets_share"] * s["fitted"])
        lines.append(
            f"  targets: the full-data target matrix in {same}/{s['fitted']} resamples "
            f"({100 * s['same_targets_share']:.0f}%); share of resamples with latent j "
            f"among environment k's targets:"
        )
        lines.append("  env\\j  " + " ".join(f"{j:>6d}" for j in range(d)))
        for k, row in enumerate(s["target_frequency"]):
            lines.append(f"  {k:<6d} " + " ".join(f"{v:6.2f}" for v in row))
    return "\n".join(lines)


def bootstrap(
    envs,
    fit_fn: Callable,
    reference_fit,
    B: int,
    *,
    seed: int,
    block: int | None = None,
) -> BootstrapResult:
    """Refit ``fit_fn(resampled_envs) -> Fit`` on B resamples of the per-environment blocks
    ``envs`` and compare each with ``reference_fit`` (module docstring)."""
    B = check_resamples(B)
    envs = [np.asarray(e) for e in envs]
    counts = [len(e) for e in envs]
    block = check_block(block, counts)
    W_ref = np.asarray(reference_fit.unmixing, dtype=np.float64)
    T_ref = None if reference_fit.targets is None else np.asarray(reference_fit.targets, bool)
    moments = env_moments(envs)
    cov = moments.total()
    corr, same, targets, failures, degenerate = [], [], [], Counter(), 0
    for child in np.random.SeedSequence(seed).spawn(B):
        rng = np.random.default_rng(child)
        sample = [e[resample_indices(len(e), rng, block)] for e in envs]  # one at a time
        try:
            result = fit_fn(sample)
        except MncrlError as exc:
            failures[str(exc)] += 1
            continue
        finally:
            del sample
        W = np.asarray(result.unmixing, dtype=np.float64)
        degenerate += diagnose(W, moments, do_design=False).degenerate
        C = cross_correlations(cov, W_ref, W)
        rows, cols = matching(C)
        corr.append(C[rows, cols])
        if T_ref is not None:
            T = np.zeros_like(T_ref)
            if result.targets is not None:
                T[:, rows] = np.asarray(result.targets, bool)[:, cols]
            targets.append(T)
            same.append(bool(np.array_equal(T, T_ref)))
    d = W_ref.shape[1]
    kept = dict(failures.most_common(MAX_MESSAGES))
    if len(failures) > MAX_MESSAGES:
        kept["(other messages)"] = sum(failures.values()) - sum(kept.values())
    return BootstrapResult(
        resamples=B,
        seed=int(seed),
        block=block,
        latent_corr=np.asarray(corr).reshape(len(corr), d),
        same_targets=None if T_ref is None else np.asarray(same, dtype=bool),
        targets=None
        if T_ref is None
        else np.asarray(targets, dtype=bool).reshape(len(targets), *T_ref.shape),
        failed=int(sum(failures.values())),
        failures=kept,
        degenerate=int(degenerate),
    )


__all__ = [
    "BootstrapResult",
    "bootstrap",
    "check_block",
    "check_resamples",
    "cross_correlations",
    "resample_indices",
    "table",
]
