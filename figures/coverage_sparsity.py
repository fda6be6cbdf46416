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
# a random design (Monte Carlo, 4000 designs; the phase table's `a4_probability`).

# %% tags=["parameters"]
metrics = {"coverage": "results/coverage/metrics.csv"}
tables = {
    "coverage": {"phase": "results/coverage/phase.csv", "designs": "results/coverage/designs.csv"}
}
figure = "coverage_sparsity"  # the figure name (unused: no paper values for our figures)
claims_file = "paper/claims.yaml"
out_stem = "figures/coverage_sparsity"
headline_metric = "mcc_paper"
estimators = {}

# %%
import numpy as np

from mncrl import plots
from mncrl.experiments import coverage_tables as coverage

plots.setup()
recovered, _ = coverage.thresholds_of(plots.load_metrics(metrics))
phase = plots.random_phase(tables)
labels, names = plots.display_names(phase["estimator"], estimators)
colours = plots.palette(labels)
ds = sorted(phase["d"].unique())
Ks = {d: sorted(phase[phase["d"] == d]["K"].unique()) for d in ds}
theory = phase.drop_duplicates(["d", "K", "k"])
phase.head()

# %%
fig, panels = plots.dk_panels(ds, Ks, "fraction recovered")
for ax, d, K in panels:
    cell = phase[(phase["d"] == d) & (phase["K"] == K)]
    for lab in labels:
        s = cell[cell["estimator"] == lab].sort_values("k")
        p = s["recovered_fraction"].to_numpy(float)
        se = np.sqrt(p * (1 - p) / s["problems"].to_numpy(float))
        ax.plot(s["k"], p, marker="o", ms=3, color=colours[lab], label=names[lab])
        ax.fill_between(s["k"], p - se, p + se, color=colours[lab], alpha=0.2, lw=0)
    # the A4 fraction of the designs every estimator ran (the largest sample)
    a4 = cell.sort_values("problems").drop_duplicates("k", keep="last").sort_values("k")
    ax.plot(
        a4["k"],
        a4["a4_fraction"],
        color="black",
        ls="--",
        lw=1.2,
        label="designs satisfying Assumption 4",
    )
    th = theory[(theory["d"] == d) & (theory["K"] == K)].sort_values("k")
    ax.plot(
        th["k"],
        th["a4_probability"],
        color="grey",
        ls=":",
        lw=1.2,
        label="P(Assumption 4), random design",
    )
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlim(0.5, d - 0.5)
plots.finish_panels(
    fig,
    f"Recovery (Amari <= {recovered:g}) against sparsity, per number of environments K (ours)",
    ncol=4,
    legend_y=-0.02,
)
plots.save_figure(fig, out_stem)

# %%
lines = [
    "# Recovery against sparsity (ours)",
    "",
    f"Fraction of random designs x seeds recovered (Amari <= {recovered:g}); "
    "A4 = fraction of the designs satisfying Assumption 4; n = problems per point.",
    "",
]
for d in ds:
    for K in Ks[d]:
        cell = phase[(phase["d"] == d) & (phase["K"] == K)]
        ks = sorted(cell["k"].unique())
        lines += [
            f"## d = {d}, K = {K}",
            "",
            "| estimator | n | " + " | ".join(f"k={k}" for k in ks) + " |",
            "|---|---|" + "---|" * len(ks),
        ]
        a4 = cell.sort_values("problems").drop_duplicates("k", keep="last")
        lines.append(
            "| A4 | "
            + str(int(a4["problems"].max()))
            + " | "
            + " | ".join(f"{a4[a4['k'] == k]['a4_fraction'].iloc[0]:.2f}" for k in ks)
            + " |"
        )
        for lab in labels:
            s = cell[cell["estimator"] == lab]
            if not len(s):
                continue
            vals = [s[s["k"] == k]["recovered_fraction"] for k in ks]
            lines.append(
                f"| {names[lab]} | {int(s['problems'].median())} | "
                + " | ".join(f"{v.iloc[0]:.2f}" if len(v) else "-" for v in vals)
                + " |"
            )
        lines.append("")
text = "\n".join(lines)
plots.save_text(text, f"{out_stem}.md")
print(text)
