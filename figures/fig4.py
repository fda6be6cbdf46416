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
# # Fig. 4: Fig. 2a for four other mixing matrices
# One panel per mixing seed (the paper does not say which four it used; we use 1-4). Bars: mean
# and standard error over seeds. Black lines: the range the paper reports over its four
# mixings for each estimator and d (diamond at the middle of the range).

# %% tags=["parameters"]
metrics = {"fig4": "results/fig4/metrics.csv"}
figure = "fig4"  # claims with this figure name give the paper markers
claims_file = "paper/claims.yaml"
out_stem = "figures/fig4"
headline_metric = "mcc_paper"
estimators = {}

# %%
from mncrl import plots

plots.setup()
data = plots.figure_summary(
    metrics, ["mixing_seed", "d"], headline_metric, estimators, claims_file, figure
)
data.stats

# %%
title = plots.figure_title(figure, "MCC vs d for other mixing matrices")
fig = plots.bar_panels(
    data,
    "d",
    "latent dimension d",
    "mixing_seed",
    "mixing seed {}",
    f"{title} (paper: range over its 4 mixings)",
)
text = plots.panel_markdown(
    data, "d", "mixing_seed", "mixing seed {}", f"{title}, one table per mixing seed"
)
print(plots.write_outputs(fig, text, out_stem))
