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
# # Recovery against sparsity, for a fixed number of environments (ours, not in the paper)
# One panel per latent dimension d (rows) and number of environments K (columns, from the
# fewest to the most). Lines: the fraction of random designs x seeds each estimator recovers
# (Amari distance <= the `recovered` threshold), with a binomial standard-error band, against
# the number of targets per environment k. Dashed black: the fraction of those designs that
# satisfy Assumption 4 (the theory's guarantee); dotted grey: the Assumption-4 probability of
# a random design (Monte Carlo, 4000 designs).

# %% tags=["parameters"]
metrics = {"coverage": "results/coverage/metrics.csv"}
figure = "coverage_sparsity"  # the figure name (unused: no paper values for our figures)
claims_file = "paper/claims.yaml"
out_stem = "figures/coverage_sparsity"
headline_metric = "mcc_paper"
estimators = {}
roles = {}

# %%
import matplotlib.pyplot as plt
import numpy as np

from mncrl import coverage, plots

plots.setup()
table = plots.load_metrics(metrics)
recovered, _ = coverage.thresholds_of(table)
problems = table[table["level"].fillna("problem") == "problem"]
phase = coverage.phase_table(problems[problems["design"] == "random"], recovered)
labels = plots.ordered_labels(phase["estimator"], list(estimators))
names = {lab: estimators.get(lab, lab) for lab in labels}
colours = plots.palette(labels)
ds = sorted(phase["d"].unique())
Ks = {d: sorted(phase[phase["d"] == d]["K"].unique()) for d in ds}
points = sorted({(int(r.d), int(r.K), int(r.k)) for r in phase.itertuples()})
theory = coverage.theory_table(points, draws=4000)
phase.head()

# %%
ncols = max(len(v) for v in Ks.values())
fig, axes = plt.subplots(len(ds), ncols, figsize=(3.3 * ncols, 2.5 * len(ds)), squeeze=False)
for i, d in enumerate(ds):
    for j in range(ncols):
        ax = axes[i, j]
        if j >= len(Ks[d]):
            ax.set_axis_off()
            continue
        K = Ks[d][j]
        cell = phase[(phase["d"] == d) & (phase["K"] == K)]
        for lab in labels:
            s = cell[cell["estimator"] == lab].sort_values("k")
            p = s["recovered_fraction"].to_numpy(float)
            se = np.sqrt(p * (1 - p) / s["problems"].to_numpy(float))
            ax.plot(s["k"], p, marker="o", ms=3, color=colours[lab], label=names[lab])
            ax.fill_between(s["k"], p - se, p + se, color=colours[lab], alpha=0.2, lw=0)
        # the A4 fraction of the designs every estimator ran (the largest sample)
        a4 = cell.sort_values("problems").drop_duplicates("k", keep="last").sort_values("k")
        ax.plot(a4["k"], a4["a4_fraction"], color="black", ls="--", lw=1.2,
                label="designs satisfying Assumption 4")
        th = theory[(theory["d"] == d) & (theory["K"] == K)].sort_values("k")
        ax.plot(th["k"], th["a4_probability"], color="grey", ls=":", lw=1.2,
                label="P(Assumption 4), random design")
        ax.set_ylim(-0.03, 1.03)
        ax.set_xlim(0.5, d - 0.5)
        ax.set_title(f"d = {d}, K = {K}", fontsize=9)
        ax.set_xlabel("targets per environment k", fontsize=8)
        if j == 0:
            ax.set_ylabel("fraction recovered")
handles, texts = axes[0, 0].get_legend_handles_labels()
fig.legend(handles, texts, loc="lower center", ncol=min(4, len(texts)), fontsize=8,
           bbox_to_anchor=(0.5, -0.02))
fig.suptitle(f"Recovery (Amari <= {recovered:g}) against sparsity, per number of "
             "environments K (ours)", fontsize=10)
fig.tight_layout(rect=(0, min(0.2, 0.36 / len(ds)), 1, 0.97))
plots.save_figure(fig, out_stem)

# %%
lines = ["# Recovery against sparsity (ours)", "",
         f"Fraction of random designs x seeds recovered (Amari <= {recovered:g}); "
         "A4 = fraction of the designs satisfying Assumption 4; n = problems per point.", ""]
for d in ds:
    for K in Ks[d]:
        cell = phase[(phase["d"] == d) & (phase["K"] == K)]
        ks = sorted(cell["k"].unique())
        lines += [f"## d = {d}, K = {K}", "",
                  "| estimator | n | " + " | ".join(f"k={k}" for k in ks) + " |",
                  "|---|---|" + "---|" * len(ks)]
        a4 = cell.sort_values("problems").drop_duplicates("k", keep="last")
        lines.append("| A4 | " + str(int(a4["problems"].max())) + " | " + " | ".join(
            f"{a4[a4['k'] == k]['a4_fraction'].iloc[0]:.2f}" for k in ks) + " |")
        for lab in labels:
            s = cell[cell["estimator"] == lab]
            if not len(s):
                continue
            vals = [s[s["k"] == k]["recovered_fraction"] for k in ks]
            lines.append(f"| {names[lab]} | {int(s['problems'].median())} | " + " | ".join(
                f"{v.iloc[0]:.2f}" if len(v) else "-" for v in vals) + " |")
        lines.append("")
text = "\n".join(lines)
plots.save_text(text, f"{out_stem}.md")
print(text)
