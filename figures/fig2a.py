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
roles = {}

# %%
import matplotlib.pyplot as plt

from mncrl import plots

plots.setup()
table = plots.load_metrics(metrics)
labels = plots.ordered_labels(table["estimator"], list(estimators))
names = {lab: estimators.get(lab, lab) for lab in labels}
colours = plots.palette(labels)
stats = plots.summary(table, ["d", "estimator"], headline_metric)
paper = plots.paper_points(claims_file, figure)
stats

# %%
fig, ax = plt.subplots(figsize=(7.5, 3.6))
plots.grouped_bars(ax, stats, "d", labels, names, colours, paper=paper)
ax.set_xlabel("latent dimension d")
ax.set_ylabel("MCC")
ax.set_ylim(0, 1.05)
plots.add_legend(ax, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
title = plots.figure_title(figure, "MCC vs d")
ax.set_title(title)
plots.save_figure(fig, out_stem)

# %%
text = f"# {title}\n\n" + plots.markdown_table(stats, "d", labels, names, paper)
plots.save_text(text, f"{out_stem}.md")
print(text)
