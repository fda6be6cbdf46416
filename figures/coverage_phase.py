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
# # Identifiability map: recovery over sparsity x coverage (ours, not in the paper)
# Random designs: K environments, each intervening on k latents drawn at random (20 design
# seeds x 3 data seeds per cell in the default configuration; the iterative estimators run on
# the subset configured under `subsample`). Colour: the fraction of problems (design x seed)
# an estimator recovers (Amari distance of L W from a scaled permutation <= the `recovered`
# threshold). Number in each cell: the percentage of those designs that satisfy Assumption 4,
# i.e. where the theory guarantees identifiability. White line: where a random design
# satisfies Assumption 4 with probability 1/2 (Monte Carlo, 4000 designs per cell: the
# `a4_probability` column of the phase table); cells above/right of it are identifiable more
# often than not. Linear SCM (p = 0.75), do(=1) interventions, n = 2e4 per environment.

# %% tags=["parameters"]
metrics = {"coverage": "results/coverage/metrics.csv"}
tables = {
    "coverage": {"phase": "results/coverage/phase.csv", "designs": "results/coverage/designs.csv"}
}
figure = "coverage_phase"  # the figure name (unused: no paper values for our figures)
claims_file = "paper/claims.yaml"
out_stem = "figures/coverage_phase"
headline_metric = "mcc_paper"
estimators = {}

# %%
import textwrap

import matplotlib.pyplot as plt
import numpy as np

from mncrl import plots
from mncrl.experiments import coverage_tables as coverage

plots.setup()
table = plots.load_metrics(metrics)
recovered, strict = coverage.thresholds_of(table)
problems = table[table["level"].fillna("problem") == "problem"]
random = problems[problems["design"] == "random"]
phase = plots.random_phase(tables)
labels, names = plots.display_names(phase["estimator"], estimators)
ds = sorted(phase["d"].unique())
theory = phase.drop_duplicates(["d", "K", "k"]).set_index(["d", "K", "k"])["a4_probability"]
print(f"recovered: amari <= {recovered:g}")
phase.head()


# %%
def cell_grid(frame, d, value):
    """(K values, k values, matrix[K, k]) of one column of the phase table at dimension d."""
    f = frame[frame["d"] == d]
    Ks, ks = sorted(f["K"].unique()), sorted(f["k"].unique())
    M = np.full((len(Ks), len(ks)), np.nan)
    for r in f.itertuples():
        M[Ks.index(r.K), ks.index(r.k)] = getattr(r, value)
    return Ks, ks, M


def half_boundary(ax, P):
    """Staircase line between cells with P >= 1/2 and P < 1/2 (P: K rows x k columns)."""
    above = P >= 0.5
    rows, cols = above.shape
    for i in range(rows):
        for j in range(cols):
            if j + 1 < cols and above[i, j] != above[i, j + 1]:
                ax.plot([j + 0.5, j + 0.5], [i - 0.5, i + 0.5], color="white", lw=2.2)
            if i + 1 < rows and above[i, j] != above[i + 1, j]:
                ax.plot([j - 0.5, j + 0.5], [i + 0.5, i + 0.5], color="white", lw=2.2)


widths = [max(len(phase[phase["d"] == d]["k"].unique()), 3) for d in ds]
fig, axes = plt.subplots(
    len(labels),
    len(ds),
    figsize=(2.2 + 0.42 * sum(widths), 1.3 + 1.45 * len(labels)),
    gridspec_kw={"width_ratios": widths},
    squeeze=False,
)
image = None
for i, lab in enumerate(labels):
    per = phase[phase["estimator"] == lab]
    for j, d in enumerate(ds):
        ax = axes[i, j]
        if i == 0:
            ax.text(
                0.5, 1.32, f"d = {d}", transform=ax.transAxes, ha="center", va="bottom", fontsize=11
            )
        Ks, ks, R = cell_grid(per, d, "recovered_fraction")
        _, _, A = cell_grid(per, d, "a4_fraction")
        _, _, N = cell_grid(per, d, "problems")
        if not len(Ks):
            ax.set_axis_off()
            continue
        image = ax.imshow(R, origin="lower", aspect="auto", cmap="viridis", vmin=0, vmax=1)
        for a in range(len(Ks)):
            for b in range(len(ks)):
                if np.isfinite(A[a, b]):
                    ax.text(
                        b,
                        a,
                        f"{100 * A[a, b]:.0f}",
                        ha="center",
                        va="center",
                        fontsize=6.5 if len(ks) > 10 else 8,
                        color="black" if R[a, b] > 0.6 else "white",
                    )
        P = np.array([[theory[(d, K, k)] for k in ks] for K in Ks])
        half_boundary(ax, P)
        ax.set_xticks(range(len(ks)))
        ax.set_xticklabels([str(k) if len(ks) <= 10 or k % 2 == 1 else "" for k in ks])
        ax.set_yticks(range(len(Ks)))
        ax.set_yticklabels([str(K) for K in Ks])
        ax.tick_params(labelbottom=i == len(labels) - 1, labelsize=8)
        ax.grid(False)
        n_cell = int(np.nanmedian(N))
        if i == len(labels) - 1:
            ax.set_xlabel("targets per environment k")
        ax.set_ylabel("K", fontsize=8, labelpad=1)
        ax.set_title(f"n = {n_cell} per cell", loc="right", fontsize=7)
    axes[i, 0].text(
        -0.32 * 12 / max(widths[0], 1),
        0.5,
        textwrap.fill(names[lab], 18),
        transform=axes[i, 0].transAxes,
        rotation=90,
        ha="center",
        va="center",
        fontsize=8.5,
    )
if image is not None:
    cbar = fig.colorbar(image, ax=axes, shrink=0.6, pad=0.015)
    cbar.set_label(f"fraction recovered (Amari <= {recovered:g})")
fig.suptitle(
    "Identifiability map (ours): fraction of random designs recovered; numbers = % "
    "satisfying Assumption 4",
    fontsize=10,
)
plots.save_figure(fig, out_stem)

# %%
summary = coverage.recovery_summary(random, recovered, by=("estimator", "d"))
structured = problems[problems["design"] != "random"]
struct = (
    coverage.recovery_summary(structured, recovered, by=("design", "d", "estimator"))
    if len(structured)
    else None
)


def pct(x):
    return "-" if x != x else f"{100 * x:.0f}%"


lines = [
    "# Identifiability map (ours): recovery over sparsity x coverage",
    "",
    f"Recovered: Amari distance <= {recovered:g}. Random designs, all (K, k) cells pooled "
    "per d; 'given A4' = among designs satisfying Assumption 4.",
    "",
    "| estimator | d | problems | A4 designs | recovered | given A4 | given not A4 | "
    "reported not identifiable |",
    "|---|---|---|---|---|---|---|---|",
]
for lab in labels:
    for r in summary[summary["estimator"] == lab].itertuples():
        lines.append(
            f"| {names[lab]} | {r.d} | {r.problems} | {pct(r.a4_fraction)} | "
            f"{pct(r.recovered)} | {pct(r.recovered_given_a4)} | "
            f"{pct(r.recovered_given_not_a4)} | {pct(r.not_identifiable)} |"
        )
if struct is not None:
    lines += [
        "",
        "## Structured designs",
        "",
        "| design | d | estimator | problems | A4 | recovered | mean mcc_paper | mean amari |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in struct.itertuples():
        lines.append(
            f"| {r.design} | {r.d} | {names.get(r.estimator, r.estimator)} | "
            f"{r.problems} | {pct(r.a4_fraction)} | {pct(r.recovered)} | "
            f"{r.mean_mcc_paper:.3f} | {r.mean_amari:.3f} |"
        )
text = "\n".join(lines) + "\n"
plots.save_text(text, f"{out_stem}.md")
print(text)
