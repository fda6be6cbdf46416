"""The issue-#11 targets on the light-tunnel sensor scenario (raw sensor units).

    .venv/bin/python benchmarks/sensors.py                    # seeds 0-4, both designs
    .venv/bin/python benchmarks/sensors.py --seeds 0 1 --noise 0 0.01 0.03

For every design (leave-one-out, separating), per-sensor noise level (``--noise``: sd as a
fraction of each sensor's spread) and data seed: simulate the scenario (d = 5 latents, the 7
near-linear sensors, do-interventions, 8,000 rows per environment, float32 as written by
``mncrl simulate``), then fit what a user gets from ``mncrl fit`` without options
(``mncrl.fit``: the latent dimension estimated from the data, the default preset, the
degenerate-fit check on) for ``subspace`` and ``sparse-variance``. Reported per cell: the
number of seeds whose latent dimension was estimated right (5), the outcome of each fit
(answered / refused / degenerate), and over the answered fits min and median ``mcc`` (all
rows, as ``mncrl evaluate``), max Amari distance (latents in their own spreads) and, for
``subspace``, the number of seeds with every target right (F1 = 1).
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np

import mncrl
from mncrl import metrics
from mncrl.errors import DegenerateFitError, MncrlError
from mncrl.simulation import Scenario, simulate

ESTIMATORS = ("subspace", "sparse-variance")


def _one(ds, estimator: str) -> dict:
    try:
        fit = mncrl.fit(ds, estimator)
    except DegenerateFitError:
        return {"outcome": "degenerate"}
    except MncrlError as exc:
        return {"outcome": "refused", "why": str(exc)[:80]}
    Zhat = ds.X.astype(np.float64) @ fit.unmixing
    d_hat = fit.unmixing.shape[1]
    out = {"outcome": "answered", "d": d_hat}
    if d_hat == ds.Z.shape[1]:
        out["mcc"] = metrics.mcc(ds.Z, Zhat)
        out["amari"] = metrics.amari(ds.L, fit.unmixing, latent_scale=ds.Z.std(axis=0))
        if fit.targets is not None:
            perm = metrics.matching_from_latents(ds.Z, Zhat)
            out["f1"] = metrics.target_f1(ds.targets, fit.targets, perm)
    return out


def _cell(design: str, noise: float, seeds, estimator: str) -> dict:
    runs = []
    for seed in seeds:
        sc = Scenario(
            observation="light-tunnel", d=5, n=8000, design=design, obs_noise_relative=noise
        )
        runs.append(_one(simulate(sc, seed), estimator))
    answered = [r for r in runs if "mcc" in r]
    mccs = [r["mcc"] for r in answered]
    return {
        "design": design,
        "noise": noise,
        "estimator": estimator,
        "d_right": sum(r.get("d") == 5 for r in runs),
        "answered": sum(r["outcome"] == "answered" for r in runs),
        "refused": sum(r["outcome"] == "refused" for r in runs),
        "degenerate": sum(r["outcome"] == "degenerate" for r in runs),
        "mcc_min": min(mccs) if mccs else float("nan"),
        "mcc_median": statistics.median(mccs) if mccs else float("nan"),
        "amari_max": max(r["amari"] for r in answered) if answered else float("nan"),
        "targets_right": sum(r.get("f1") == 1.0 for r in answered),
        "n": len(runs),
        "why": next((r["why"] for r in runs if "why" in r), ""),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.01])
    ap.add_argument("--designs", nargs="+", default=["leave-one-out", "separating"])
    args = ap.parse_args()
    head = (
        "| design | noise | estimator | d right | answered | refused | degenerate "
        "| mcc min | mcc median | amari max | targets right |"
    )
    print(head)
    print("|" + "---|" * 11)
    for design in args.designs:
        for noise in args.noise:
            for est in ESTIMATORS:
                r = _cell(design, noise, args.seeds, est)
                targets = f"{r['targets_right']}/{r['answered']}" if est == "subspace" else ""
                print(
                    f"| {design} | {noise:g} | {est} | {r['d_right']}/{r['n']} | "
                    f"{r['answered']} | {r['refused']} | {r['degenerate']} | "
                    f"{r['mcc_min']:.4f} | {r['mcc_median']:.4f} | {r['amari_max']:.2e} | "
                    f"{targets} |"
                )
                if r["why"]:
                    print(f"|  | | first refusal: {r['why']} | | | | | | | | |")


if __name__ == "__main__":
    main()
