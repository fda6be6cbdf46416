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
roles = {}

# %%
import matplotlib.pyplot as plt

from mncrl import plots

plots.setup()
table = plots.load_metrics(metrics)
labels = plots.ordered_labels(table["estimator"], list(estimators))
names = {lab: estimators.get(lab, lab) for lab in labels}
colours = plots.palette(labels)
stats = plots.summary(table, ["n", "estimator"], headline_metric)
paper = plots.paper_points(claims_file, figure)
stats

# %%
fig, ax = plt.subplots(figsize=(6.5, 3.6))
for lab in labels:
    s = stats[stats["estimator"] == lab].sort_values("n")
    ax.plot(s["n"], s["mean"], marker="o", color=colours[lab], label=names[lab])
    ax.fill_between(s["n"], s["mean"] - s["se"], s["mean"] + s["se"], color=colours[lab],
                    alpha=0.25, linewidth=0)
if len(paper):
    p = paper.sort_values("n")
    ax.plot(p["n"], p["paper"], **plots.PAPER_MARKER)
ax.set_xscale("log")
ax.set_xlabel("samples per environment n")
ax.set_ylabel("MCC")
ax.set_ylim(0, 1.05)
plots.add_legend(ax, loc="lower right", fontsize=8)
title = plots.figure_title(figure, "MCC vs n")
ax.set_title(title)
plots.save_figure(fig, out_stem)

# %%
text = f"# {title}\n\n" + plots.markdown_table(stats, "n", labels, names, paper)
plots.save_text(text, f"{out_stem}.md")
print(text)
