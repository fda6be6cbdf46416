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
# # Fig. 2b: MCC against the edge probability p
# Linear Erdos-Renyi SCM with edge probability p, d = 6, leave-one-out do-interventions,
# paper mixing (seed 0), n = 1e5. The released script never passed p to the generator (the
# paper's bars are all p = 0.75 draws); this workflow really varies it. Bars: mean and standard
# error over seeds of the paper's pooled, chunked MCC on the test split. Black diamonds: the
# values read from the paper (±0.01).

# %% tags=["parameters"]
metrics = {"fig2b": "results/fig2b/metrics.csv"}
figure = "fig2b"  # claims with this figure name give the paper markers
claims_file = "paper/claims.yaml"
out_stem = "figures/fig2b"
headline_metric = "mcc_paper"
estimators = {}

# %%
from mncrl import plots

plots.setup()
data = plots.figure_summary(metrics, ["p"], headline_metric, estimators, claims_file, figure)
data.stats

# %%
title = plots.figure_title(figure, "MCC vs p")
print(plots.bar_figure(data, "p", "edge probability p", title, out_stem))
