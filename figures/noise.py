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
# # Observation noise (ours, not in the paper): MCC and Amari against per-sensor noise
# Each observed column gets independent Gaussian noise with standard deviation
# `obs_noise_relative` times that column's pooled spread (so a different variance per sensor);
# one column of panels per experiment (scenario), the x axis is symmetric-log so that the
# noiseless level 0 is shown. Lines: mean over the seeds whose fit answered, bands: ± one
# standard deviation over them; line style: rows per environment n. The bottom row lists, at
# each noise level, the fits that gave no answer: `R` refused (NotIdentifiableError), `F`
# failed (ConvergenceError, DegenerateFitError), out of the seeds; `-` every fit answered.

# %% tags=["parameters"]
metrics = {
    "noise-sensor": "results/noise-sensor/metrics.csv",
    "noise-linear": "results/noise-linear/metrics.csv",
}
figure = "noise"
claims_file = "paper/claims.yaml"
out_stem = "figures/noise"
headline_metric = "mcc_paper"
estimators = {}

# %%
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.lines import Line2D

from mncrl import plots

plots.setup()
NOISE, REFUSED = "obs_noise_relative", "NotIdentifiableError"
PANEL_METRICS = [headline_metric, "amari"]
YLABELS = {"mcc": "MCC", "mcc_paper": "MCC (pooled)", "amari": "Amari distance"}
STYLES = ["-", "--", ":", "-."]  # largest n first
TITLE = "Observation noise (ours): MCC and Amari distance against per-sensor noise"
table = plots.load_metrics(metrics)
labels, names = plots.display_names(table["estimator"], estimators)
colours = plots.palette(labels)
experiments = list(dict.fromkeys(table["experiment"]))
ns = sorted(table["n"].unique(), reverse=True)
levels = sorted(table[NOISE].unique())


# %%
def outcome_stats(table, metric):
    """Per experiment, n, noise level and estimator: mean and sd over the seeds whose fit
    answered, and how many fits answered, refused or failed otherwise."""
    rows = table[table["metric"] == metric]
    ok = rows["status"].eq("ok")
    refused = rows["status"].eq(REFUSED)
    rows = rows.assign(ok=ok, refused=refused, failed=~ok & ~refused, v=rows["value"].where(ok))
    stats = (
        rows.groupby(["experiment", "n", NOISE, "estimator"])
        .agg(
            mean=("v", "mean"),
            sd=("v", "std"),
            answered=("ok", "sum"),
            refused=("refused", "sum"),
            failed=("failed", "sum"),
            fits=("ok", "size"),
        )
        .reset_index()
    )
    stats["sd"] = stats["sd"].fillna(0.0)
    return stats


def scenario_title(table, experiment):
    """'name: observation, d, m' from the experiment's scenario columns."""
    row = table[table["experiment"] == experiment].iloc[0]
    if row["observation"] == "light-tunnel":
        return f"{experiment}: light-tunnel sensors (raw units), d = {row['d']}"
    m = row["d"] if pd.isna(row["m"]) else int(row["m"])  # m null: m = d
    return f"{experiment}: linear, {row['mixing']} mixing, d = {row['d']}, m = {m}"


def noise_tick(level):
    return "0" if level == 0 else f"{100 * level:g}%"


def outcome_text(r):
    """'-' when every fit answered, else e.g. '2R' / '1F' / '2R1F'."""
    text = (f"{r['refused']}R" if r["refused"] else "") + (f"{r['failed']}F" if r["failed"] else "")
    return text or "-"


stats = {m: outcome_stats(table, m) for m in PANEL_METRICS}
outcomes = stats[headline_metric]
outcomes[[NOISE, "n", "estimator", "answered", "refused", "failed", "fits"]].head()


# %%
def draw_lines(ax, s, experiment):
    """Mean +- sd against the noise level per estimator (colour) and n (line style)."""
    for lab in labels:
        for i, n in enumerate(ns):
            r = s[(s["experiment"] == experiment) & (s["estimator"] == lab) & (s["n"] == n)]
            r = r.sort_values(NOISE)
            ax.plot(
                r[NOISE],
                r["mean"],
                marker="o",
                markersize=3,
                color=colours[lab],
                linestyle=STYLES[i % len(STYLES)],
            )
            band = (r["mean"] - r["sd"], r["mean"] + r["sd"])
            ax.fill_between(r[NOISE], *band, color=colours[lab], alpha=0.15, lw=0)


def draw_outcomes(ax, s, experiment, row_labels):
    """One row per estimator and n: the fits without an answer at each noise level (the rows
    named on the axis when ``row_labels``)."""
    rows = [(lab, n) for lab in labels for n in ns]
    for y, (lab, n) in enumerate(rows):
        r = s[(s["experiment"] == experiment) & (s["estimator"] == lab) & (s["n"] == n)]
        for _, row in r.iterrows():
            text = outcome_text(row)
            bad = text != "-"
            ax.text(
                row[NOISE],
                y,
                text,
                ha="center",
                va="center",
                fontsize=7,
                color="black" if bad else "0.6",
                fontweight="bold" if bad else "normal",
            )
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{names[lab]}, n = {n}" if row_labels else "" for lab, n in rows])
    for tick, (lab, _) in zip(ax.get_yticklabels(), rows, strict=True):
        tick.set_color(colours[lab])
        tick.set_fontsize(7)
    ax.grid(False)


def noise_axis(ax):
    """Symmetric-log x axis (linear up to the smallest non-zero level, so 0 is shown) with the
    levels as percentages."""
    positive = [v for v in levels if v > 0]
    linthresh = min(positive) if positive else 1.0
    ax.set_xscale("symlog", linthresh=linthresh)
    ax.set_xticks(levels)
    ax.set_xticklabels([noise_tick(v) for v in levels])
    ax.set_xlim(levels[0] - 0.3 * linthresh, max(levels) * 1.3 if positive else 1.0)
    ax.set_xlabel("observation noise sd (fraction of each column's spread)")


def noise_figure():
    ncol = len(experiments)
    fig, axes = plt.subplots(
        3,
        ncol,
        figsize=(5.4 * ncol, 8.6),
        sharex=True,
        squeeze=False,
        gridspec_kw={"height_ratios": [3, 3, 0.32 * len(labels) * len(ns)]},
    )
    for j, exp in enumerate(experiments):
        for i, metric in enumerate(PANEL_METRICS):
            ax = axes[i][j]
            draw_lines(ax, stats[metric], exp)
            ax.set_ylabel(YLABELS.get(metric, metric))
            if metric == "amari":
                ax.set_ylim(bottom=0)
            else:
                ax.set_ylim(0, 1.05)
        axes[0][j].set_title(scenario_title(table, exp), fontsize=9)
        draw_outcomes(axes[2][j], outcomes, exp, row_labels=j == 0)
        noise_axis(axes[2][j])
    handles = [Line2D([], [], color=colours[lab], label=names[lab]) for lab in labels]
    handles += [
        Line2D([], [], color="black", linestyle=STYLES[i % len(STYLES)], label=f"n = {n}")
        for i, n in enumerate(ns)
    ]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 3), fontsize=8)
    fig.suptitle(TITLE)
    fig.tight_layout(rect=(0, 0.06, 1, 0.97))
    return fig


# %%
def cell_text(r):
    """'mean ± sd' over the answered fits, with the fits that gave no answer."""
    if not len(r):
        return "-"
    r = r.iloc[0]
    text = f"{r['mean']:.3f} ± {r['sd']:.3f}" if r["answered"] else "no answer"
    missing = [f"{r[k]}/{r['fits']} {k}" for k in ("refused", "failed") if r[k]]
    return text + (f" ({', '.join(missing)})" if missing else "")


def noise_markdown():
    parts = [
        f"# {TITLE}\n\nMean ± sd over the fits that answered; refused / failed fits counted.\n"
    ]
    columns = [(lab, n) for lab in labels for n in ns]
    for exp in experiments:
        for metric in PANEL_METRICS:
            s = stats[metric]
            s = s[s["experiment"] == exp]
            header = "| noise | " + " | ".join(f"{names[lab]}, n = {n}" for lab, n in columns)
            lines = [header + " |", "|" + "---|" * (len(columns) + 1)]
            for v in levels:
                at = s[s[NOISE] == v]
                cells = [
                    cell_text(at[(at["estimator"] == lab) & (at["n"] == n)]) for lab, n in columns
                ]
                lines.append(f"| {noise_tick(v)} | " + " | ".join(cells) + " |")
            heading = f"{scenario_title(table, exp)}: {YLABELS.get(metric, metric)}"
            parts.append(f"\n## {heading}\n\n" + "\n".join(lines) + "\n")
    return "".join(parts)


print(plots.write_outputs(noise_figure(), noise_markdown(), out_stem))
