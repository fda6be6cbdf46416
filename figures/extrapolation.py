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
# # Intervention extrapolation (ours, not in the paper; Rep4Ex's model)
# Actions A (uniform on [-1, 1]^k) shift several latents at once, Z = A M0 + V; the
# observations are X = Z L and the outcome Y = l(Z) + U, with U correlated with V (hidden
# confounding). Each method predicts E[Y | do(A = a*)] along the line a* = s u; the training
# support is |s| <= 1. Top row: predictions and the Monte-Carlo truth of the first seed (each
# seed draws its own effects, outcome coefficients and line) at the largest n. Bottom row: mean squared error (over seeds, both sides of the line pooled) against
# the distance outside the support |s| - 1, log axis; line style = rows n.

# %% tags=["parameters"]
metrics = {"extrapolation": "results/extrapolation/metrics.csv"}
figure = "extrapolation"
claims_file = "paper/claims.yaml"
out_stem = "figures/extrapolation"
headline_metric = "mcc_paper"
estimators = {}

# %%
import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.lines import Line2D

from mncrl import plots

plots.setup()
METHODS = ["control-function", "oracle", "no-control-function", "direct"]
NAMES = {
    "control-function": "control function (PCA representation)",
    "oracle": "oracle (true Z, control function)",
    "no-control-function": "no control function",
    "direct": "direct regression of Y on A",
}
STYLES = ["-", "--", ":", "-."]  # largest n first
table = plots.load_metrics(metrics)
PALETTE = sns.color_palette("colorblind", 10)
colours = dict(zip(METHODS, [PALETTE[i] for i in (0, 4, 2, 3)], strict=True))
ns = sorted(table["n"].unique(), reverse=True)
panels = table[["outcome", "confounding"]].drop_duplicates().sort_values(["outcome", "confounding"])
panels = list(panels.itertuples(index=False, name=None))
points = table[table["s"].notna()]
points = points.assign(side_distance=points["distance"].round(6))


# %%
def curve(metric, outcome, confounding, n, method):
    """``metric`` at each position s, first seed."""
    r = points[
        (points["seed"] == points["seed"].min())
        & (points["metric"] == metric)
        & (points["outcome"] == outcome)
        & (points["confounding"] == confounding)
        & (points["n"] == n)
        & (points["estimator"] == method)
    ]
    return r.groupby("s")["value"].mean()


def mse_by_distance(outcome, confounding, n, method):
    """Mean squared error over seeds and both sides of the line, per distance outside."""
    r = points[
        (points["metric"] == "squared_error")
        & (points["outcome"] == outcome)
        & (points["confounding"] == confounding)
        & (points["n"] == n)
        & (points["estimator"] == method)
    ]
    return r.groupby("side_distance")["value"].mean()


def extrapolation_figure():
    ncol = len(panels)
    fig, axes = plt.subplots(2, ncol, figsize=(3.6 * ncol, 6.6), squeeze=False)
    for j, (outcome, confounding) in enumerate(panels):
        top, bottom = axes[0][j], axes[1][j]
        top.axvspan(-1, 1, color="0.92", lw=0)
        truth = curve("truth", outcome, confounding, ns[0], METHODS[0])
        top.plot(truth.index, truth.values, color="black", lw=2.2, label="truth")
        for method in METHODS:
            pred = curve("prediction", outcome, confounding, ns[0], method)
            top.plot(pred.index, pred.values, color=colours[method], lw=1.3)
            for i, n in enumerate(ns):
                mse = mse_by_distance(outcome, confounding, n, method)
                bottom.plot(
                    mse.index,
                    mse.values,
                    color=colours[method],
                    linestyle=STYLES[i % len(STYLES)],
                    marker="o",
                    markersize=2.5,
                )
        top.set_title(f"l = {outcome}, confounding {confounding:g}", fontsize=9)
        top.set_xlabel("s (a* = s u)")
        bottom.set_yscale("log")
        bottom.set_xlabel("distance outside the support (|s| - 1)")
        if j == 0:
            top.set_ylabel(f"E[Y | do(A = a*)], n = {ns[0]}, one seed")
            bottom.set_ylabel("mean squared error")
    handles = [Line2D([], [], color="black", lw=2.2, label="truth")]
    handles += [Line2D([], [], color=colours[m], label=NAMES[m]) for m in METHODS]
    handles += [
        Line2D([], [], color="0.3", linestyle=STYLES[i % len(STYLES)], label=f"n = {n}")
        for i, n in enumerate(ns)
    ]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=8)
    fig.suptitle("Intervention extrapolation (ours): predictions and error outside the support")
    fig.tight_layout(rect=(0, 0.08, 1, 0.96))
    return fig


fig = extrapolation_figure()


# %%
def summary_rows():
    """Per panel, n and method: normalised MSE inside / outside the support (mean over
    seeds) and the method's mean outside MSE over the oracle's."""
    per_seed = table[table["s"].isna()]
    rows = []
    for outcome, confounding in panels:
        for n in ns:
            cell = per_seed[
                (per_seed["outcome"] == outcome)
                & (per_seed["confounding"] == confounding)
                & (per_seed["n"] == n)
            ]
            oracle = cell[(cell["estimator"] == "oracle") & (cell["metric"] == "mse_outside")]
            for method in METHODS:
                r = cell[cell["estimator"] == method]
                mean = r.groupby("metric")["value"].mean()
                rows.append(
                    [
                        outcome,
                        f"{confounding:g}",
                        str(n),
                        method,
                        f"{mean['nmse_inside']:.4f}",
                        f"{mean['nmse_outside']:.4f}",
                        f"{mean['mse_outside'] / oracle['value'].mean():.2f}",
                        str(int(r["seed"].nunique())),
                    ]
                )
    return rows


header = [
    "outcome",
    "confounding",
    "n",
    "method",
    "NMSE inside",
    "NMSE outside",
    "outside / oracle",
    "seeds",
]
text = plots.rows_markdown(
    header,
    summary_rows(),
    "Intervention extrapolation (ours): mean squared error normalised by the variance of the "
    "outcome Y (NMSE), mean over seeds; 'outside / oracle': the method's mean MSE outside the "
    "support over the oracle's",
)
plots.write_outputs(fig, text, out_stem)
print(text)
assert np.isfinite(table["value"]).all()
