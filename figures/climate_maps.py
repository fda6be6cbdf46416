# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # True and recovered patterns of the climate benchmark (ours, not in the paper)
# One data set of the climate experiment, rerun from its cell's recorded spec (the cell with
# do-regimes, SST-EOF patterns when the run has them, the most memory and the least noise;
# its first seed): the same simulation, reduction and fits as the experiment's job. One row per true
# mode; columns: the true pattern, then each estimator's regression map of the latent matched
# to that mode, signed and scaled to it (least squares), its pattern correlation in the title.

# %% tags=["parameters"]
metrics = {"climate": "results/climate/metrics.csv"}
figure = "climate_maps"
claims_file = "paper/claims.yaml"
out_stem = "figures/climate_maps"
headline_metric = "mcc_paper"
estimators = {}

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from mncrl import field, plots
from mncrl.climate_modes import ModeScenario
from mncrl.experiments import climate, core
from mncrl.metrics import matching_from_latents

plots.setup()
SHOWN = ["subspace", "varimax-pca", "ica"]  # estimator labels, when the cell ran them
table = plots.load_metrics(metrics)
cells = table[table["intervention"] == "do"].assign(blobs=table["patterns"] != "sst-eofs")
cells = cells.sort_values(["blobs", "memory", "obs_noise"], ascending=[True, False, True])
cell_id = cells["cell"].iloc[0]
spec = json.loads(
    (Path(next(iter(metrics.values()))).parent / "cells" / f"{cell_id}.json").read_text()
)["spec"]
scenario = ModeScenario.from_dict(spec["scenario"])
seed = spec["seeds"][0]
problem = climate.prepare_field(
    scenario, spec["components"], spec["experiment"], spec["cell"], seed, spec["test_fraction"]
)
entries = [e for e in spec["estimators"] if e["label"] in SHOWN]
labels, names = plots.display_names([e["label"] for e in entries], estimators)
labels = [lab for lab in SHOWN if lab in labels]


# %%
def matched_maps(entry):
    """The estimator's regression maps reordered to the true modes, signed and scaled to
    them, and their pattern correlations (None when the fit gave no answer)."""
    r = core.resolve_entries([entry])[0]
    fit_seed = core.stable_seed(spec["experiment"], spec["cell"], seed, "fit", r.label)
    out = climate.fit_one(r, scenario, problem, fit_seed)
    if out.fit is None:
        return None, str(out.error)
    Zhat = problem.reduction.scores @ np.asarray(out.fit.unmixing, dtype=np.float64)
    maps = field.regression_patterns(Zhat, problem.reduction)
    perm = matching_from_latents(problem.Z_all, Zhat)  # perm[j]: true mode of estimate j
    order = np.argsort(perm)
    maps = maps[order]
    scale = (maps * problem.patterns).sum(axis=1) / (maps**2).sum(axis=1)
    corr = field.pattern_correlation(problem.patterns, maps, perm=np.arange(len(maps)))
    return (maps * scale[:, None], corr), None


results = {e["label"]: matched_maps(e) for e in entries}


# %%
def on_grid(values):
    grid = np.full(problem.mask.shape, np.nan)
    grid[problem.mask] = values
    return grid


def maps_figure():
    d = problem.patterns.shape[0]
    cols = ["truth"] + labels
    fig, axes = plt.subplots(d, len(cols), figsize=(2.6 * len(cols), 1.45 * d + 0.8), squeeze=False)
    vmax = np.nanmax(np.abs(problem.patterns))
    for i in range(d):
        for j, col in enumerate(cols):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            if col == "truth":
                values, title = problem.patterns[i], f"mode {i + 1}: truth"
            else:
                (res, err) = results[col]
                if res is None:
                    ax.text(0.5, 0.5, "no answer", ha="center", va="center", transform=ax.transAxes)
                    ax.set_title(names[col], fontsize=8)
                    continue
                values, title = res[0][i], f"{names[col]}: r = {res[1][i]:.3f}"
            ax.imshow(on_grid(values), origin="lower", cmap="RdBu_r", vmin=-vmax, vmax=vmax)
            ax.set_title(title, fontsize=8)
    fig.suptitle(
        f"Climate benchmark (ours): true and recovered patterns, cell {cell_id}, seed {seed}",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return fig


fig = maps_figure()

# %%
rows = []
for lab in labels:
    res, err = results[lab]
    cors = "no answer: " + err if res is None else ", ".join(f"{c:.3f}" for c in res[1])
    rows.append([names[lab], cors])
text = plots.rows_markdown(
    ["estimator", "pattern correlation per true mode"],
    rows,
    f"Climate benchmark (ours): pattern correlations of one data set (cell {cell_id}, seed {seed})",
)
plots.write_outputs(fig, text, out_stem)
print(text)
assert any(res is not None for res, _ in results.values())
