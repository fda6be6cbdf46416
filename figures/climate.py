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
# # Climate modes with known answers (ours, not in the paper)
# Five modes follow a vector-autoregressive SCM (memory 1) or are independent in time
# (memory 0); a gridded field mixes them through spatial patterns (the leading EOFs of the
# Pacific SST anomalies shipped with eofs, or Gaussian blobs) plus spatially correlated noise;
# regimes shift several modes at once. Every estimator sees the field's EOF coordinates.
# Top row: MCC of the mode time series; bottom row: correlation of the recovered patterns
# (regression maps) with the true ones; mean over the seeds whose fit answered, against the
# noise level. The table lists every cell, with the fits that gave no answer.

# %% tags=["parameters"]
metrics = {"climate": "results/climate/metrics.csv"}
figure = "climate"
claims_file = "paper/claims.yaml"
out_stem = "figures/climate"
headline_metric = "mcc_paper"
estimators = {}

# %%
import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

from mncrl import plots

plots.setup()
PANELS = ["patterns", "intervention", "memory"]
ROWS = {"mcc": "MCC (mode time series)", "pattern_correlation": "pattern correlation"}
SHOWN = ["mcc", "pattern_correlation", "target_f1"]  # table columns
table = plots.load_metrics(metrics)
labels, names = plots.display_names(table["estimator"], estimators)
colours = plots.palette(labels)
columns = (
    table[["intervention", "memory"]].drop_duplicates().sort_values(["intervention", "memory"])
)
columns = list(columns.itertuples(index=False, name=None))
patterns = sorted(table["patterns"].unique())
answered = table[table["status"].eq("ok")]


# %%
def climate_figure():
    rows = [(metric, pat) for metric in ROWS for pat in patterns]
    fig, axes = plt.subplots(
        len(rows),
        len(columns),
        figsize=(3.2 * len(columns), 2.3 * len(rows) + 0.9),
        squeeze=False,
        sharex=True,
        sharey=True,
    )
    for i, (metric, pat) in enumerate(rows):
        for j, (intervention, memory) in enumerate(columns):
            ax = axes[i][j]
            sel = answered[
                (answered["metric"] == metric)
                & (answered["patterns"] == pat)
                & (answered["intervention"] == intervention)
                & (answered["memory"] == memory)
            ]
            if not sel.empty:
                sns.lineplot(
                    data=sel,
                    x="obs_noise",
                    y="value",
                    hue="estimator",
                    hue_order=[lab for lab in labels if lab in set(sel["estimator"])],
                    palette=colours,
                    errorbar=None,
                    marker="o",
                    ax=ax,
                    legend=False,
                )
            ax.set_ylim(0.0, 1.02)
            ax.set_xlabel("noise (sd / signal sd)" if i == len(rows) - 1 else "")
            ax.set_ylabel(f"{ROWS[metric]}\n{pat}" if j == 0 else "")
            if i == 0:
                ax.set_title(f"{intervention} regimes, memory {memory:g}", fontsize=9)
    handles = [
        plt.Line2D([], [], color=colours[lab], marker="o", label=names[lab]) for lab in labels
    ]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(labels), 3), fontsize=8)
    fig.suptitle("Climate modes (ours): recovery of mode time series and patterns")
    fig.tight_layout(rect=(0, 0.07, 1, 0.97))
    return fig


fig = climate_figure()


# %%
def cell_rows():
    """Per cell and estimator: mean MCC and pattern correlation over the seeds that answered,
    and the fits that did not (R refused, F failed, n/a not applicable)."""
    rows = []
    keys = PANELS + ["obs_noise"]
    for key, cell in table.groupby(keys, sort=True):
        for lab in labels:
            r = cell[cell["estimator"] == lab]
            if r.empty:
                continue
            ok = r[r["status"].eq("ok")]
            per = ok.groupby("metric")["value"].mean()
            seeds = r.groupby("seed")["status"].first()
            missing = [
                f"{prefix} {int(n)}"
                for prefix, n in (
                    ("R", (seeds == "NotIdentifiableError").sum()),
                    ("F", (~seeds.isin(["ok", "NotIdentifiableError", "not_applicable"])).sum()),
                    ("n/a", (seeds == "not_applicable").sum()),
                )
                if n
            ]
            rows.append(
                [
                    *(f"{v:g}" if isinstance(v, float) else str(v) for v in key),
                    names[lab],
                    *(f"{per[m]:.3f}" if m in per else "-" for m in SHOWN),
                    ", ".join(missing) or "-",
                    str(len(seeds)),
                ]
            )
    return rows


header = PANELS + ["noise", "estimator", "MCC", "pattern corr.", "target F1", "no answer", "seeds"]
text = plots.rows_markdown(
    header,
    cell_rows(),
    "Climate modes (ours): mean over the seeds whose fit answered; no answer: R refused "
    "(NotIdentifiableError), F failed, n/a not applicable (not fitted)",
)
plots.write_outputs(fig, text, out_stem)
print(text)
assert np.isfinite(answered["value"]).all()
