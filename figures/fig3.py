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
# # Fig. 3: the graph of the nonlinear SCMs 1 and 2
# Drawn from the edge list the simulator uses (`mncrl.scm.PAPER_NONLINEAR_EDGES`, 0-based;
# shown 1-based as in the paper), nodes on a circle in topological order.

# %% tags=["parameters"]
figure = "fig3"
out_stem = "figures/fig3"
metrics = {}
claims_file = "paper/claims.yaml"
headline_metric = "mcc_paper"
estimators = {}

# %%
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import FancyArrowPatch

from mncrl import plots
from mncrl.scm import PAPER_NONLINEAR_EDGES

plots.setup()
edges = [(int(i), int(j)) for i, j in PAPER_NONLINEAR_EDGES]
d = 1 + max(max(e) for e in edges)
parents = {j: sorted(i for i, k in edges if k == j) for j in range(d)}
angles = np.pi / 2 + np.pi / d - 2 * np.pi * np.arange(d) / d  # clockwise from the top left
pos = {j: (float(np.cos(a)), float(np.sin(a))) for j, a in enumerate(angles)}
parents

# %%
fig, ax = plt.subplots(figsize=(4.2, 4.0))
for i, j in edges:
    (x0, y0), (x1, y1) = pos[i], pos[j]
    rad = 0.0
    ax.add_patch(
        FancyArrowPatch(
            (x0, y0),
            (x1, y1),
            arrowstyle="-|>",
            mutation_scale=14,
            shrinkA=17,
            shrinkB=17,
            connectionstyle=f"arc3,rad={rad}",
            color="0.3",
            lw=1.2,
        )
    )
for j, (x, y) in pos.items():
    ax.add_patch(plt.Circle((x, y), 0.17, color="#4c72b0", zorder=3))
    ax.text(x, y, f"$Z_{j + 1}$", ha="center", va="center", color="white", fontsize=12, zorder=4)
xs = np.array([p[0] for p in pos.values()])
ys = np.array([p[1] for p in pos.values()])
ax.set_xlim(xs.min() - 0.4, xs.max() + 0.4)
ax.set_ylim(ys.min() - 0.3, ys.max() + 0.3)
ax.set_aspect("equal")
ax.axis("off")
ax.set_title("Fig. 3: graph of the nonlinear SCMs")
plots.save_figure(fig, out_stem)

# %%
lines = ["# Fig. 3: graph of the nonlinear SCMs (1-based)", "", "| node | parents |", "|---|---|"]
lines += [f"| Z{j + 1} | {', '.join(f'Z{i + 1}' for i in parents[j]) or '-'} |" for j in range(d)]
text = "\n".join(lines) + "\n"
plots.save_text(text, f"{out_stem}.md")
print(text)
