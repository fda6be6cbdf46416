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
# # Fig. 2c: MCC against the samples per environment n
# d = 6, linear SCM, leave-one-out do-interventions. Lines: mean over seeds, bands: ± one
# standard error. Black diamonds: the paper's values for its method. With the paper's rule
# (50 epochs at batch 4096 over 0.75 n training rows) the optimiser takes 50 steps at n = 5e3
# and 950 at n = 1e5, so the paper's curve mostly measures the optimisation budget; the
# moments-mode estimator (ours) and the closed form show the sample size itself is not the
# bottleneck.

# %% tags=["parameters"]
metrics = {"fig2c": "results/fig2c/metrics.csv"}
figure = "fig2c"  # claims with this figure name give the paper markers
claims_file = "paper/claims.yaml"
out_stem = "figures/fig2c"
headline_metric = "mcc_paper"
estimators = {}

# %%
from mncrl import plots

plots.setup()
data = plots.figure_summary(metrics, ["n"], headline_metric, estimators, claims_file, figure)
data.stats

# %%
title = plots.figure_title(figure, "MCC vs n")
print(plots.line_figure(data, "n", "samples per environment n", title, out_stem))
