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
roles = {}

# %%
import matplotlib.pyplot as plt

from mncrl import plots

plots.setup()
table = plots.load_metrics(metrics)
labels = plots.ordered_labels(table["estimator"], list(estimators))
names = {lab: estimators.get(lab, lab) for lab in labels}
colours = plots.palette(labels)
stats = plots.summary(table, ["p", "estimator"], headline_metric)
paper = plots.paper_points(claims_file, figure)
stats

# %%
fig, ax = plt.subplots(figsize=(7.5, 3.6))
plots.grouped_bars(ax, stats, "p", labels, names, colours, paper=paper)
ax.set_xlabel("edge probability p")
ax.set_ylabel("MCC")
ax.set_ylim(0, 1.05)
plots.add_legend(ax, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
title = plots.figure_title(figure, "MCC vs p")
ax.set_title(title)
plots.save_figure(fig, out_stem)

# %%
text = f"# {title}\n\n" + plots.markdown_table(stats, "p", labels, names, paper)
plots.save_text(text, f"{out_stem}.md")
print(text)
