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
roles = {}

# %%
import matplotlib.pyplot as plt

from mncrl import plots

plots.setup()
table = plots.load_metrics(metrics)
labels = plots.ordered_labels(table["estimator"], list(estimators))
names = {lab: estimators.get(lab, lab) for lab in labels}
colours = plots.palette(labels)
stats = plots.summary(table, ["mixing_seed", "d", "estimator"], headline_metric)
paper = plots.paper_points(claims_file, figure)
mixings = sorted(stats["mixing_seed"].unique())
stats

# %%
fig, axes = plt.subplots(1, len(mixings), figsize=(3.4 * len(mixings) + 2.0, 3.4), sharey=True,
                         squeeze=False)
x_order = sorted(set(stats["d"]) | (set(paper["d"]) if len(paper) else set()))
for ax, seed in zip(axes[0], mixings, strict=True):
    plots.grouped_bars(ax, stats[stats["mixing_seed"] == seed], "d", labels, names, colours,
                       paper=paper, x_order=x_order)
    ax.set_title(f"mixing seed {seed}")
    ax.set_xlabel("latent dimension d")
    ax.set_ylim(0, 1.05)
axes[0][0].set_ylabel("MCC")
plots.add_legend(axes[0][-1], loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
title = plots.figure_title(figure, "MCC vs d for other mixing matrices")
fig.suptitle(f"{title} (paper: range over its 4 mixings)", y=1.04)
plots.save_figure(fig, out_stem)

# %%
parts = [f"# {title}, one table per mixing seed\n"]
for seed in mixings:
    s = stats[stats["mixing_seed"] == seed]
    parts.append(f"\n## mixing seed {seed}\n\n" + plots.markdown_table(s, "d", labels, names, paper))
text = "".join(parts)
plots.save_text(text, f"{out_stem}.md")
print(text)
