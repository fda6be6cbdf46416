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
# # Peers (ours, not in the paper): runtime per fit against the latent dimension
# Wall-clock seconds of one fit (the estimator's fit call, data simulation excluded; a
# vmapped batch of seeds counts its time divided by the number of problems) in experiment
# `peers`, for the fits that answered (status ok; one row per fit: those of the `mcc` metric).
# One panel per intervention kind (columns) and number of rows per environment n (rows);
# lines: median over the fits of every target design and seed at that d, bands: min to max.
# Estimators without an answered fit in a panel (not applicable, or every fit refused) have no
# line there. Log y axis.

# %% tags=["parameters"]
metrics = {"peers": "results/peers/metrics.csv"}
figure = "peers_runtime"  # the figure name (unused: no paper values for our figures)
claims_file = "paper/claims.yaml"
out_stem = "figures/peers_runtime"
headline_metric = "mcc_paper"
estimators = {}

# %%
import matplotlib.pyplot as plt
from matplotlib.lines import Line2D

from mncrl import plots

plots.setup()
FIT_METRIC = "mcc"  # one row per fit
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
TITLE = "Peers (ours): runtime per fit against the latent dimension d"
table = plots.load_metrics(metrics)
labels, names = plots.display_names(table["estimator"], estimators)
colours = plots.palette(labels)
markers = {lab: MARKERS[i % len(MARKERS)] for i, lab in enumerate(labels)}
kinds = list(dict.fromkeys(table["intervention"]))  # grid order of the configuration
ns = sorted(table["n"].unique())
ds = sorted(table["d"].unique())
fits = table[(table["metric"] == FIT_METRIC) & table["status"].eq("ok")]
times = (
    fits.groupby(["intervention", "n", "d", "estimator"])["seconds"]
    .agg(median="median", low="min", high="max", fits="size")
    .reset_index()
)
times.head()


# %%
def runtime_figure():
    fig, axes = plt.subplots(
        len(ns),
        len(kinds),
        figsize=(3.6 * len(kinds) + 0.6, 2.9 * len(ns) + 0.9),
        sharex=True,
        sharey=True,
        squeeze=False,
    )
    for i, n in enumerate(ns):
        for j, kind in enumerate(kinds):
            ax = axes[i][j]
            at = times[(times["n"] == n) & (times["intervention"] == kind)]
            for lab in labels:
                r = at[at["estimator"] == lab].sort_values("d")
                if not len(r):
                    continue
                ax.plot(r["d"], r["median"], marker=markers[lab], ms=4, color=colours[lab])
                ax.fill_between(r["d"], r["low"], r["high"], color=colours[lab], alpha=0.18, lw=0)
            ax.set_yscale("log")
            ax.set_xticks(ds)
            ax.set_title(f"{kind} interventions, n = {n} per environment", fontsize=9)
            if i == len(ns) - 1:
                ax.set_xlabel("latent dimension d")
            if j == 0:
                ax.set_ylabel("seconds per fit")
    present = [lab for lab in labels if lab in set(times["estimator"])]
    handles = [
        Line2D([], [], color=colours[lab], marker=markers[lab], label=names[lab]) for lab in present
    ]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4), fontsize=8)
    fig.suptitle(f"{TITLE}: median over fits, band min to max")
    legend_rows = -(-len(handles) // 4)
    fig.tight_layout(rect=(0, (0.22 * legend_rows + 0.15) / fig.get_figheight(), 1, 0.97))
    return fig


# %%
def seconds(x):
    return f"{x:.3g}"


def runtime_markdown():
    parts = [
        f"# {TITLE}\n\nMedian seconds per answered fit (min - max; number of fits) over the "
        "target designs and seeds; '-': no answered fit (not applicable or no answer).\n"
    ]
    for kind in kinds:
        lines = [
            "| n | d | " + " | ".join(names[lab] for lab in labels) + " |",
            "|" + "---|" * (len(labels) + 2),
        ]
        for n in ns:
            for d in ds:
                at = times[(times["intervention"] == kind) & (times["n"] == n) & (times["d"] == d)]
                cells = []
                for lab in labels:
                    r = at[at["estimator"] == lab]
                    if not len(r):
                        cells.append("-")
                        continue
                    r = r.iloc[0]
                    cells.append(
                        f"{seconds(r['median'])} ({seconds(r['low'])} - {seconds(r['high'])}; "
                        f"{r['fits']})"
                    )
                lines.append(f"| {n} | {d} | " + " | ".join(cells) + " |")
        parts.append(f"\n## {kind} interventions\n\n" + "\n".join(lines) + "\n")
    return "".join(parts)


print(plots.write_outputs(runtime_figure(), runtime_markdown(), out_stem))
