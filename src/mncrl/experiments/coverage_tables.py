"""Tables of the coverage experiment: problems as a wide table, the phase diagram, the rates
the claims check (summary rows) and the thresholds recorded in them.

- :func:`phase_table`: per (d, K, k, design family, estimator) the fraction of problems
  recovered (Amari distance <= threshold), next to the fraction satisfying Assumption 4;
  :func:`phase_file` adds the Monte Carlo probability that a random design satisfies it.
- :func:`claim_rows`: per d, the rates ``paper/claims.yaml`` checks (``level = summary``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from mncrl.errors import MncrlError
from mncrl.interventions import a4_probability

#: Monte Carlo draws per (d, K, k) of the Assumption-4 probability in the phase table.
A4_DRAWS = 4000
#: The status of a fit the estimator refused (said "not identifiable").
REFUSED = "NotIdentifiableError"


def problems_wide(metrics):
    """One row per problem x estimator with the metrics as columns (problem-level rows only)."""
    t = metrics
    if "level" in t.columns:
        t = t[t["level"].fillna("problem") == "problem"]
    ids = ["d", "design_id", "seed", "estimator"]
    describe = ["K", "k", "design", "draw", "a4_satisfied", "n_unidentifiable", "status"]
    describe = [c for c in describe if c in t.columns]
    values = t.drop_duplicates(ids + ["metric"]).pivot(index=ids, columns="metric", values="value")
    values.columns.name = None
    first = t.drop_duplicates(ids).set_index(ids)[describe]
    wide = first.join(values).reset_index()
    wide["a4_satisfied"] = wide["a4_satisfied"].astype(str).str.lower() == "true"
    for col in ("d", "K", "draw", "seed"):
        if col in wide.columns and wide[col].notna().all():
            wide[col] = wide[col].astype(int)
    if "k" in wide.columns:
        wide["k"] = wide["k"].astype("Int64")
    return wide


def _recovered(wide, threshold: float):
    amari = wide["amari"] if "amari" in wide.columns else np.nan
    return np.asarray(amari, dtype=float) <= threshold


def phase_table(metrics, threshold: float, strict: float | None = None):
    """Per (d, K, k, design family, estimator): how many problems (design x seed) were run,
    the fraction whose design satisfies Assumption 4 and the fraction recovered
    (amari <= ``threshold``; a failed fit counts as not recovered), overall and split by
    Assumption 4, plus mean metrics."""
    wide = problems_wide(metrics)
    wide["recovered"] = _recovered(wide, threshold)
    if strict is not None:
        wide["recovered_strict"] = _recovered(wide, strict)
    if "not_identifiable" not in wide.columns:
        wide["not_identifiable"] = 0.0
    rows = []
    keys = ["d", "K", "k", "design", "estimator"]
    for key, g in wide.groupby(keys, dropna=False, sort=True):
        a4 = g["a4_satisfied"].to_numpy(bool)
        rec = g["recovered"].to_numpy(bool)
        row = dict(zip(keys, key, strict=True))
        row.update(
            {
                "problems": len(g),
                "designs": g["design_id"].nunique(),
                "a4_fraction": float(a4.mean()),
                "recovered_fraction": float(rec.mean()),
                "recovered_given_a4": float(rec[a4].mean()) if a4.any() else np.nan,
                "recovered_given_not_a4": float(rec[~a4].mean()) if (~a4).any() else np.nan,
                "not_identifiable_fraction": float(np.nan_to_num(g["not_identifiable"]).mean()),
            }
        )
        if strict is not None:
            row["recovered_strict_fraction"] = float(g["recovered_strict"].mean())
        for m in ("amari", "mcc", "mcc_paper", "target_f1", "latents_recovered"):
            if m in g.columns:
                v = g[m].to_numpy(dtype=float)
                row[f"mean_{m}"] = float(np.nanmean(v)) if np.isfinite(v).any() else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def claim_rows(metrics, recovered: float, strict: float, experiment: str):
    """Summary rows (``level = summary``), one per d x family (``all``, ``random``) x
    estimator x rate, in the tidy format the claims checker reads:

    - ``rate_recovered_a4`` / ``rate_recovered_a4_strict``: among problems whose design
      satisfies Assumption 4, the fraction with amari <= ``recovered`` / ``strict``;
    - ``rate_recovered_not_a4``: among problems violating it, the fraction with
      amari <= ``recovered``;
    - ``rate_reported_not_identifiable``: among problems violating it, the fraction where
      the estimator raised NotIdentifiableError (refused); ``rate_refused_a4``: the same among
      problems that satisfy it (a refusal of an identifiable design);
    - ``rate_unidentifiable_latents_recovered``: pooled over problems violating Assumption 4,
      recovered unidentifiable latents / unidentifiable latents;
    - ``rate_identifiable_latents_recovered_not_a4``: the same for the identifiable latents.

    A rate with no problem to count is left out (not NaN). ``seed`` is empty; ``n_problems``
    says how many problems the rate counts, ``n_refused`` how many of them the estimator
    refused and ``n_failed`` how many failed otherwise (e.g. ConvergenceError): a refusal is
    its own outcome, and a failed fit counts against a claim (mncrl.claims).
    """
    wide = problems_wide(metrics)
    wide["rec"] = _recovered(wide, recovered)
    wide["rec_strict"] = _recovered(wide, strict)
    status = wide["status"].astype(str) if "status" in wide.columns else pd.Series("ok", wide.index)
    wide["refused"] = status == REFUSED
    wide["failed"] = ~status.isin(["ok", REFUSED])
    for col in (
        "not_identifiable",
        "unidentifiable_latents_recovered",
        "identifiable_latents_recovered",
    ):
        if col not in wide.columns:
            wide[col] = np.nan
    rows = []
    for family in ("all", "random"):
        sub = wide if family == "all" else wide[wide["design"] == "random"]
        for (d, est), g in sub.groupby(["d", "estimator"], sort=True):
            a4 = g["a4_satisfied"].to_numpy(bool)
            bad = g[~a4]
            good = g[a4]
            rates = {}
            if a4.any():
                rates["rate_recovered_a4"] = (good["rec"].mean(), good)
                rates["rate_recovered_a4_strict"] = (good["rec_strict"].mean(), good)
                rates["rate_refused_a4"] = (good["refused"].mean(), good)
            if len(bad):
                rates["rate_recovered_not_a4"] = (bad["rec"].mean(), bad)
                rates["rate_reported_not_identifiable"] = (bad["refused"].mean(), bad)
                n_un = bad["n_unidentifiable"].to_numpy(float)
                if n_un.sum() > 0:
                    got = np.nan_to_num(bad["unidentifiable_latents_recovered"].to_numpy(float))
                    rates["rate_unidentifiable_latents_recovered"] = (
                        float((got * n_un).sum() / n_un.sum()),
                        bad,
                    )
                n_id = d - n_un
                if n_id.sum() > 0:
                    got = np.nan_to_num(bad["identifiable_latents_recovered"].to_numpy(float))
                    rates["rate_identifiable_latents_recovered_not_a4"] = (
                        float((got * n_id).sum() / n_id.sum()),
                        bad,
                    )
            for metric, (value, counted) in rates.items():
                thr = strict if metric.endswith("_strict") else recovered
                thr = (
                    None if metric in ("rate_reported_not_identifiable", "rate_refused_a4") else thr
                )
                rows.append(
                    {
                        "experiment": experiment,
                        "cell": f"d-{int(d)}_{family}",
                        "level": "summary",
                        "d": int(d),
                        "design": family,
                        "estimator": est,
                        "metric": metric,
                        "value": float(value),
                        "n_problems": len(counted),
                        "n_refused": int(counted["refused"].sum()),
                        "n_failed": int(counted["failed"].sum()),
                        "threshold": thr,
                        "status": "ok",
                    }
                )
    return pd.DataFrame(rows)


def thresholds_of(metrics) -> tuple[float, float]:
    """(recovered, strict) Amari thresholds recorded in the summary rows of a metrics table."""
    out = []
    for metric in ("rate_recovered_a4", "rate_recovered_a4_strict"):
        rows = metrics[metrics["metric"] == metric]
        values = rows["threshold"].dropna() if "threshold" in rows.columns else rows["metric"][:0]
        if not len(values):
            raise MncrlError(
                f"the metrics table has no '{metric}' summary row with a threshold "
                f"(is it a coverage experiment's metrics.csv?)"
            )
        out.append(float(values.iloc[0]))
    return out[0], out[1]


def recovery_summary(metrics, threshold: float, by: Sequence[str] = ("d", "estimator")):
    """Per group: problems, fraction satisfying Assumption 4, fraction recovered overall,
    given Assumption 4 and given its violation, fraction reported not identifiable, and
    mean ``mcc_paper`` / ``amari``."""
    wide = problems_wide(metrics)
    wide["recovered"] = _recovered(wide, threshold)
    for col in ("not_identifiable", "mcc_paper", "amari"):
        if col not in wide.columns:
            wide[col] = np.nan
    rows = []
    for key, g in wide.groupby(list(by), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        a4 = g["a4_satisfied"].to_numpy(bool)
        rec = g["recovered"].to_numpy(bool)
        rows.append(
            {
                **dict(zip(by, key, strict=True)),
                "problems": len(g),
                "a4_fraction": a4.mean(),
                "recovered": rec.mean(),
                "recovered_given_a4": rec[a4].mean() if a4.any() else np.nan,
                "recovered_given_not_a4": rec[~a4].mean() if (~a4).any() else np.nan,
                "not_identifiable": np.nan_to_num(g["not_identifiable"]).mean(),
                "mean_mcc_paper": g["mcc_paper"].mean(),
                "mean_amari": g["amari"].mean(),
            }
        )
    return pd.DataFrame(rows)


def phase_file(metrics, spec: Mapping):
    """The ``phase`` table the workflow writes: :func:`phase_table` of the problem rows with
    the experiment's thresholds, plus ``a4_probability`` for the random designs (Monte Carlo,
    :data:`A4_DRAWS` draws per (d, K, k); NaN for structured designs)."""
    phase = phase_table(metrics, spec["recovered"], spec["strict"])
    prob = {}
    for row in phase[phase["design"] == "random"].itertuples():
        key = (int(row.d), int(row.K), int(row.k))
        if key not in prob:
            prob[key] = a4_probability(*key, draws=A4_DRAWS)
    phase["a4_probability"] = [
        prob[(int(r.d), int(r.K), int(r.k))] if r.design == "random" else np.nan
        for r in phase.itertuples()
    ]
    return phase


__all__ = [
    "A4_DRAWS",
    "claim_rows",
    "phase_file",
    "phase_table",
    "problems_wide",
    "recovery_summary",
    "thresholds_of",
]
