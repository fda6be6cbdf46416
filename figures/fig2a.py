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
# # Fig. 2a: MCC against the latent dimension d
# Linear Erdos-Renyi SCM (p = 0.75), leave-one-out do-interventions, the authors' mixing (seed 0),
# n = 1e5 per environment. Bars: mean and standard error over seeds of the paper's pooled,
# chunked MCC on the test split. Black diamonds: the values read from the paper (±0.01).

# %% tags=["parameters"]
metrics = {"fig2a": "results/fig2a/metrics.csv"}
figure = "fig2a"  # claims with this figure name give the paper markers
claims_file = "paper/claims.yaml"
out_stem = "figures/fig2a"
headline_metric = "mcc_paper"
estimators = {}

# %%
from mncrl import plots

plots.setup()
data = plots.figure_summary(metrics, ["d"], headline_metric, estimators, claims_file, figure)
data.stats

# %%
title = plots.figure_title(figure, "MCC vs d")
print(plots.bar_figure(data, "d", "latent dimension d", title, out_stem))
