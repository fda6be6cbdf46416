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
# # Peers (ours, not in the paper): every estimator on every intervention kind and design
# A linear Gaussian SCM observed through a square Gaussian mixing, with an observational
# environment and multi-node interventions (experiment `peers`). Columns: the intervention kind
# (do, stochastic, soft), then the target design, then the latent dimension d; rows: the
# estimators, each with one sub-row per number of rows per environment n. Colour and number:
# the mean over the seeds whose fit answered of the MCC by the estimator's own notion of
# identifiability: plain MCC for hard (do, stochastic) interventions, MCC up to ancestors
# (`mcc_ancestral`) for soft ones. `n/a` (grey): the entry's theory does not cover the setting,
# it was not fitted. `R k` / `F k`: k fits refused (NotIdentifiableError) / failed; a cell in
# which no fit answered is hatched and shows only these counts, never a number.

# %% tags=["parameters"]
metrics = {"peers": "results/peers/metrics.csv"}
figure = "peers"  # the figure name (unused: no paper values for our figures)
claims_file = "paper/claims.yaml"
out_stem = "figures/peers"
headline_metric = "mcc_paper"
estimators = {}

# %%
import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.colors import Normalize
from matplotlib.patches import Patch, Rectangle

from mncrl import plots

plots.setup()
REFUSED, NOT_APPLICABLE = "NotIdentifiableError", "not_applicable"
#: the MCC an estimator's theory promises per intervention kind (plain MCC otherwise)
OWN_METRIC = {"soft": "mcc_ancestral"}
METRIC_NAMES = {"mcc": "MCC", "mcc_ancestral": "MCC up to ancestors"}
SETTING = ["intervention", "design", "d"]
CMAP, NORM = sns.color_palette("viridis", as_cmap=True), Normalize(0.0, 1.0)
NA_GREY, TITLE = "0.86", "Peers (ours): MCC by each estimator's notion of identifiability"
table = plots.load_metrics(metrics)
labels, names = plots.display_names(table["estimator"], estimators)
kinds = list(dict.fromkeys(table["intervention"]))  # grid order of the configuration
designs = list(dict.fromkeys(table["design"]))
ns = sorted(table["n"].unique())


def own_metric(kind):
    return OWN_METRIC.get(kind, "mcc")


def outcome_stats(table):
    """Per setting, n and estimator, over the seeds: mean and sd of the estimator's own MCC
    over the fits that answered, and how many fits answered, refused, failed otherwise or were
    not applicable (not fitted)."""
    rows = table[table["metric"] == table["intervention"].map(own_metric)]
    status = rows["status"]
    ok = status.eq("ok") & rows["value"].notna()
    refused, na = status.eq(REFUSED), status.eq(NOT_APPLICABLE)
    rows = rows.assign(
        ok=ok, refused=refused, na=na, failed=~ok & ~refused & ~na, v=rows["value"].where(ok)
    )
    stats = (
        rows.groupby([*SETTING, "n", "estimator"])
        .agg(
            metric=("metric", "first"),
            mean=("v", "mean"),
            sd=("v", "std"),
            answered=("ok", "sum"),
            refused=("refused", "sum"),
            failed=("failed", "sum"),
            not_applicable=("na", "sum"),
            fits=("ok", "size"),
        )
        .reset_index()
    )
    return stats


stats = outcome_stats(table)
settings = sorted(
    stats[SETTING].drop_duplicates().itertuples(index=False, name=None),
    key=lambda s: (kinds.index(s[0]), designs.index(s[1]), s[2]),
)
rows = [(lab, n) for lab in labels for n in ns]
cells = stats.set_index([*SETTING, "n", "estimator"])
stats.head()


# %%
def missing_text(r):
    """'R2', 'F1', 'R1 F1', '1 n/a' ...: the fits that gave no answer ('' if none)."""
    parts = [f"{code}{r[k]}" for code, k in (("R", "refused"), ("F", "failed")) if r[k]]
    if r["not_applicable"]:
        parts.append(f"{r['not_applicable']} n/a")
    return " ".join(parts)


def cell_state(r):
    """('value' | 'n/a' | 'no answer' | 'not run', the text drawn in the cell)."""
    if r is None:
        return "not run", ""
    if r["not_applicable"] == r["fits"]:
        return "n/a", "n/a"
    missing = missing_text(r)
    if not r["answered"]:
        return "no answer", missing
    return "value", f"{r['mean']:.2f}" + (f"\n{missing}" if missing else "")


def grid():
    """(matrix of means [rows x settings], states, texts) of the heat map."""
    M = np.full((len(rows), len(settings)), np.nan)
    states = np.full(M.shape, "not run", dtype=object)
    texts = np.full(M.shape, "", dtype=object)
    for i, (lab, n) in enumerate(rows):
        for j, s in enumerate(settings):
            key = (*s, n, lab)
            r = cells.loc[key] if key in cells.index else None
            states[i, j], texts[i, j] = cell_state(r)
            if states[i, j] == "value":
                M[i, j] = r["mean"]
    return M, states, texts


def spans(values):
    """[(value, first column, last column)] of the runs of equal values."""
    out = []
    for j, v in enumerate(values):
        if out and out[-1][0] == v:
            out[-1] = (v, out[-1][1], j)
        else:
            out.append((v, j, j))
    return out


def n_tick(n):
    return f"n = {n:.0e}".replace("e+0", "e")


def text_colour(value):
    """Black on light colours of the colour map, white on dark ones."""
    r, g, b, _ = CMAP(NORM(value))
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


def draw_cells(ax, M, states, texts):
    """The special cells (grey n/a, hatched no-answer) and every cell's text."""
    for i in range(M.shape[0]):
        for j in range(M.shape[1]):
            state, text = states[i, j], texts[i, j]
            if state == "n/a":
                ax.add_patch(Rectangle((j, i), 1, 1, facecolor=NA_GREY, edgecolor="white", lw=0.5))
            elif state == "no answer":
                ax.add_patch(
                    Rectangle((j, i), 1, 1, facecolor="white", edgecolor="0.55", hatch="////", lw=0)
                )
            colour = {"value": None, "n/a": "0.45"}.get(state, "black")
            ax.text(
                j + 0.5,
                i + 0.5,
                text,
                ha="center",
                va="center",
                fontsize=6.5 if "\n" in text else 7,
                linespacing=0.95,
                color=colour or text_colour(M[i, j]),
                fontweight="bold" if state == "no answer" else "normal",
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.6}
                if state == "no answer"
                else None,
            )


def headers(ax, chars_per_column):
    """Intervention kind (with the metric shown; wrapped at ``chars_per_column`` characters per
    column) and design above the columns, separators between the kinds (thick), designs (thin)
    and estimators."""
    top = -0.25
    for kind, a, b in spans([s[0] for s in settings]):
        ax.text(
            (a + b + 1) / 2,
            top - 1.45,
            textwrap.fill(
                f"{kind} interventions: {METRIC_NAMES.get(own_metric(kind), own_metric(kind))}",
                max(int(chars_per_column * (b - a + 1)), 12),
            ),
            ha="center",
            va="bottom",
            fontsize=9.5,
            fontweight="bold",
            clip_on=False,
        )
        ax.plot([a + 0.1, b + 0.9], [top - 1.3] * 2, color="black", lw=1, clip_on=False)
        if a:
            ax.axvline(a, color="white", lw=4)
    for (kind, design), a, b in spans([s[:2] for s in settings]):
        ax.text((a + b + 1) / 2, top, design, ha="center", va="bottom", fontsize=8.5, clip_on=False)
        if a and settings[a - 1][0] == kind:
            ax.axvline(a, color="white", lw=1.8)
    for i in range(len(ns), len(rows), len(ns)):
        ax.axhline(i, color="white", lw=3)


def peers_figure():
    """The heat map, laid out in inches: names and n left, headers above, colour bar right."""
    M, states, texts = grid()
    column = max(0.46, 6.0 / len(settings))  # inches; small grids (smoke runs) get wider
    left, width, right = 2.6, column * len(settings), 1.0
    bottom, height, top = 0.9, 0.32 * len(rows), 1.2
    fw, fh = left + width + right, bottom + height + top
    fig = plt.figure(figsize=(fw, fh))
    ax = fig.add_axes((left / fw, bottom / fh, width / fw, height / fh))
    cax = fig.add_axes(((left + width + 0.15) / fw, bottom / fh, 0.14 / fw, height / fh))
    sns.heatmap(
        pd.DataFrame(M),
        mask=~np.isfinite(M),
        cmap=CMAP,
        vmin=NORM.vmin,
        vmax=NORM.vmax,
        linewidths=0.5,
        linecolor="white",
        cbar_ax=cax,
        cbar_kws={"label": "mean MCC (soft: up to ancestors)"},
        ax=ax,
    )
    ax.grid(False)
    draw_cells(ax, M, states, texts)
    headers(ax, column / 0.075)
    ax.set_xticks(np.arange(len(settings)) + 0.5)
    ax.set_xticklabels([str(s[2]) for s in settings], fontsize=8)
    ax.set_xlabel("latent dimension d")
    ax.set_yticks(np.arange(len(rows)) + 0.5)
    ax.set_yticklabels([n_tick(n) for _, n in rows], fontsize=7, rotation=0)
    ax.tick_params(length=0, pad=2)
    for i in range(0, len(rows), len(ns)):
        ax.text(
            -0.6 / width,
            i + len(ns) / 2,
            textwrap.fill(names[rows[i][0]], 24 if len(ns) > 1 else 40),
            transform=ax.get_yaxis_transform(),
            ha="right",
            va="center",
            fontsize=8.5,
        )
    seeds = stats["fits"].max()
    fits = "fits" if seeds > 1 else "fit"
    key = [
        Patch(facecolor=NA_GREY, label="n/a: not covered by the estimator's theory (not fitted)"),
        Patch(facecolor="white", edgecolor="0.55", hatch="////", label="no fit answered"),
        Patch(
            facecolor="none",
            edgecolor="none",
            label=f"R k / F k: k of the {seeds} {fits} (seeds) refused / failed",
        ),
    ]
    fig.legend(handles=key, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle(TITLE, y=1 - 0.1 / fh)
    return fig


# %%
def cell_text(r):
    """'mean ± sd' over the answered fits, with the fits that gave no answer ('-': cell not
    run)."""
    if r is None:
        return "-"
    if r["not_applicable"] == r["fits"]:
        return "n/a"
    if r["answered"] > 1:
        text = f"{r['mean']:.3f} ± {r['sd']:.3f}"
    else:  # no sd of a single answer
        text = f"{r['mean']:.3f}, one fit" if r["answered"] else "no answer"
    missing = [
        f"{r[k]}/{r['fits']} {k.replace('_', ' ')}"
        for k in ("refused", "failed", "not_applicable")
        if r[k]
    ]
    return text + (f" ({', '.join(missing)})" if missing else "")


def peers_markdown():
    parts = [
        f"# {TITLE}\n\nMean ± sd over the seeds whose fit answered; refused / failed fits "
        "counted; n/a: the estimator's theory does not cover the setting (not fitted).\n"
    ]
    for kind in kinds:
        metric = own_metric(kind)
        parts.append(
            f"\n## {kind} interventions: {METRIC_NAMES.get(metric, metric)} (`{metric}`)\n\n"
        )
        lines = [
            "| design | d | n | " + " | ".join(names[lab] for lab in labels) + " |",
            "|" + "---|" * (len(labels) + 3),
        ]
        for s in [s for s in settings if s[0] == kind]:
            for n in ns:
                row = [
                    cell_text(cells.loc[(*s, n, lab)] if (*s, n, lab) in cells.index else None)
                    for lab in labels
                ]
                lines.append(f"| {s[1]} | {s[2]} | {n} | " + " | ".join(row) + " |")
        parts.append("\n".join(lines) + "\n")
    return "".join(parts)


print(plots.write_outputs(peers_figure(), peers_markdown(), out_stem))
