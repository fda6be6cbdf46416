"""Helpers shared by the figure notebooks (figures/*.py): load tables, summarise, draw the
paper's layout (grouped bars with SE, line with SE band) with the paper's values as markers,
and save figures/tables atomically.

A figure of the metrics is :func:`figure_summary` (the statistics per cell and estimator, the
paper's values, legend order, names and colours), a plot of it (:func:`bar_plot`,
:func:`bar_panels`, :func:`line_plot`), its markdown (:func:`summary_markdown`,
:func:`panel_markdown`) and :func:`write_outputs`; :func:`bar_figure` and :func:`line_figure`
chain them for the single-panel figures."""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mncrl.data import atomic_write

#: A fixed colour per estimator label (colour-blind palette), others get the next colours.
COLOURS = {"sv-paper": 0, "icrl": 1, "ica": 2, "sv-best": 4, "subspace": 3}
PAPER_MARKER = {"marker": "D", "color": "black", "markersize": 5, "linestyle": "none", "zorder": 5}


def setup():
    """The common seaborn/matplotlib style of every figure."""
    import matplotlib

    matplotlib.use("Agg")
    import seaborn as sns

    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)
    matplotlib.rcParams.update(
        {"figure.dpi": 110, "savefig.dpi": 200, "svg.hashsalt": "mncrl", "pdf.compression": 6}
    )


def palette(labels: Sequence[str]) -> dict:
    import seaborn as sns

    colours = sns.color_palette("colorblind", 10)
    free = iter(i for i in range(10) if i not in COLOURS.values())
    return {lab: colours[COLOURS[lab] if lab in COLOURS else next(free)] for lab in labels}


def load_metrics(paths: Mapping[str, str]):
    """Concatenate the metrics tables of a figure (experiment -> path)."""
    import pandas as pd

    frames = [pd.read_csv(p) for p in paths.values()]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def load_tables(tables: Mapping[str, Mapping[str, str]], name: str):
    """Concatenate the derived table ``name`` (e.g. ``phase``) of every experiment of
    ``tables`` (experiment -> table name -> path)."""
    return load_metrics({exp: paths[name] for exp, paths in tables.items() if name in paths})


def random_phase(tables: Mapping[str, Mapping[str, str]]):
    """The rows of the random designs in the ``phase`` tables (one per d, K, k, estimator)."""
    phase = load_tables(tables, "phase")
    return phase[phase["design"] == "random"]


def summary(table, by: Sequence[str], metric: str):
    """Mean, SE (ddof 1) and number of seeds (n_seeds) of ``metric`` over seeds for every
    combination of ``by``."""
    rows = table[(table["metric"] == metric) & table["value"].notna()]
    g = rows.groupby(list(by), sort=True)["value"]
    out = g.agg(mean="mean", sd="std", n_seeds="count").reset_index()
    out["se"] = (out["sd"] / np.sqrt(out["n_seeds"])).fillna(0.0)
    return out


def paper_points(claims_file: str, figure: str):
    """The paper's numbers of one figure from paper/claims.yaml: one row per value claim
    (estimator, selector keys, paper) and per range claim (paper_low, paper_high)."""
    import pandas as pd

    from mncrl.claims import load_claims

    _, claims = load_claims(claims_file)
    rows = []
    for c in claims:
        if c.figure != figure or c.source != "paper":
            continue
        if c.kind == "value":
            rows.append(
                {
                    "estimator": c.estimator,
                    "metric": c.metric,
                    **c.select,
                    "paper": float(c.paper),
                    "paper_low": float(c.paper),
                    "paper_high": float(c.paper),
                }
            )
        elif c.kind == "range":
            rows.append(
                {
                    "estimator": c.estimator,
                    "metric": c.metric,
                    **c.select,
                    "paper": float(np.mean(c.paper)),
                    "paper_low": float(c.paper[0]),
                    "paper_high": float(c.paper[1]),
                }
            )
    return pd.DataFrame(rows)


def ordered_labels(present: Sequence[str], configured: Sequence[str]) -> list[str]:
    """Labels in config order, then any others present in the data."""
    present = list(dict.fromkeys(present))
    return [lab for lab in configured if lab in present] + [
        lab for lab in present if lab not in configured
    ]


def display_names(present: Sequence[str], estimators: Mapping[str, str]) -> tuple[list, dict]:
    """The labels of ``present`` in legend order (:func:`ordered_labels` with the order of
    ``estimators``) and label -> display name (``estimators``, else the label)."""
    labels = ordered_labels(present, list(estimators))
    return labels, {lab: estimators.get(lab, lab) for lab in labels}


def grouped_bars(
    ax,
    stats,
    x: str,
    labels: Sequence[str],
    names: Mapping[str, str],
    colours: Mapping,
    paper=None,
    x_order: Sequence | None = None,
    width: float = 0.8,
):
    """Bars of ``stats`` (columns x, estimator, mean, se) grouped by ``x``, coloured by
    estimator, with SE error bars; the paper's values (``paper``: columns x, estimator,
    paper_low, paper_high) as black diamonds on the matching bars (a line for a range)."""
    xs = list(x_order) if x_order is not None else sorted(stats[x].unique())
    if paper is not None and len(paper):
        xs = sorted(set(xs) | set(paper[x].dropna().unique())) if x_order is None else xs
    slot = width / max(len(labels), 1)
    centre = {v: i for i, v in enumerate(xs)}

    def position(xv, j):
        return centre[xv] - width / 2 + (j + 0.5) * slot

    for j, lab in enumerate(labels):
        s = stats[(stats["estimator"] == lab) & stats[x].isin(xs)]
        pos = [position(v, j) for v in s[x]]
        ax.bar(
            pos,
            s["mean"],
            width=slot * 0.95,
            yerr=s["se"],
            color=colours[lab],
            label=names.get(lab, lab),
            capsize=2,
            error_kw={"elinewidth": 1},
        )
        if paper is None or not len(paper):
            continue
        p = paper[(paper["estimator"] == lab) & paper[x].isin(xs)]
        for _, row in p.iterrows():
            px = position(row[x], j)
            if row["paper_high"] > row["paper_low"]:
                ax.plot(
                    [px, px], [row["paper_low"], row["paper_high"]], color="black", lw=2, zorder=5
                )
            ax.plot([px], [row["paper"]], **PAPER_MARKER)
    ax.set_xticks(range(len(xs)))
    ax.set_xticklabels([_tick(v) for v in xs])
    return xs


def _tick(v) -> str:
    if isinstance(v, float | np.floating) and float(v).is_integer() and abs(v) >= 1000:
        return f"{v:.0e}".replace("e+0", "e")
    if isinstance(v, int | np.integer) and abs(v) >= 1000:
        return f"{v:.0e}".replace("e+0", "e")
    return f"{v:g}" if isinstance(v, float | np.floating) else str(v)


def figure_title(figure: str, what: str) -> str:
    """'Fig. 2a: what' for the paper's figure names (fig2a, table1), else 'name: what'."""
    m = re.fullmatch(r"(fig|table)(\d+)([a-z]?)", figure)
    if not m:
        return f"{figure}: {what}"
    kind = "Fig." if m.group(1) == "fig" else "Table"
    return f"{kind} {m.group(2)}{m.group(3)}: {what}"


def paper_legend_handle():
    from matplotlib.lines import Line2D

    return Line2D([], [], label="paper (read from figure)", **PAPER_MARKER)


def add_legend(ax, **kwargs):
    handles, labels = ax.get_legend_handles_labels()
    handles.append(paper_legend_handle())
    labels.append("paper (read from figure)")
    ax.legend(handles, labels, **kwargs)


def markdown_table(
    stats, x: str, labels: Sequence[str], names: Mapping[str, str], paper=None, digits: int = 3
) -> str:
    """``x`` down, estimators across: 'mean +- se (paper p)'."""
    xs = sorted(
        set(stats[x].unique())
        | (set(paper[x].unique()) if paper is not None and len(paper) else set())
    )
    header = f"| {x} | " + " | ".join(names.get(lab, lab) for lab in labels) + " |"
    lines = [header, "|" + "---|" * (len(labels) + 1)]
    for v in xs:
        cells = []
        for lab in labels:
            s = stats[(stats[x] == v) & (stats["estimator"] == lab)]
            text = (
                f"{s['mean'].iloc[0]:.{digits}f} +- {s['se'].iloc[0]:.{digits}f}" if len(s) else "-"
            )
            if paper is not None and len(paper):
                p = paper[(paper[x] == v) & (paper["estimator"] == lab)]
                if len(p):
                    lo, hi = p["paper_low"].iloc[0], p["paper_high"].iloc[0]
                    text += f" (paper {lo:.2f})" if lo == hi else f" (paper {lo:.2f}-{hi:.2f})"
            cells.append(text)
        lines.append(f"| {_tick(v)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Summary:
    """What a figure of the metrics shows: ``stats`` (:func:`summary` per cell and estimator),
    ``paper`` (:func:`paper_points`), the estimator ``labels`` in legend order and their display
    ``names`` and ``colours``."""

    stats: object
    paper: object
    labels: list
    names: dict
    colours: dict


def figure_summary(
    metrics: Mapping[str, str],
    by: Sequence[str],
    metric: str,
    estimators: Mapping[str, str],
    claims_file: str,
    figure: str,
) -> Summary:
    """The :class:`Summary` of ``metric`` per combination of ``by`` and estimator over the
    metrics tables (experiment -> path); labels in the order of ``estimators`` (label -> display
    name), then any others; the paper's values are the claims of ``figure``."""
    table = load_metrics(metrics)
    labels, names = display_names(table["estimator"], estimators)
    return Summary(
        stats=summary(table, [*by, "estimator"], metric),
        paper=paper_points(claims_file, figure),
        labels=labels,
        names=names,
        colours=palette(labels),
    )


def _bar_axes(ax, s: Summary, x: str, stats, xlabel: str, x_order=None) -> None:
    grouped_bars(ax, stats, x, s.labels, s.names, s.colours, paper=s.paper, x_order=x_order)
    ax.set_xlabel(xlabel)
    ax.set_ylim(0, 1.05)


def _outside_legend(ax) -> None:
    add_legend(ax, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)


def bar_plot(s: Summary, x: str, xlabel: str, title: str, ylabel: str = "MCC"):
    """Grouped bars (mean +- SE per estimator) against ``x``, the paper's values as markers."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    _bar_axes(ax, s, x, s.stats, xlabel)
    ax.set_ylabel(ylabel)
    _outside_legend(ax)
    ax.set_title(title)
    return fig


def bar_panels(
    s: Summary, x: str, xlabel: str, panel: str, panel_title: str, title: str, ylabel: str = "MCC"
):
    """:func:`bar_plot` in one panel per value of ``panel`` (titled ``panel_title.format(v)``),
    side by side with a shared y axis and the same x ticks."""
    import matplotlib.pyplot as plt

    values = sorted(s.stats[panel].unique())
    fig, axes = plt.subplots(
        1, len(values), figsize=(3.4 * len(values) + 2.0, 3.4), sharey=True, squeeze=False
    )
    x_order = sorted(set(s.stats[x]) | (set(s.paper[x]) if len(s.paper) else set()))
    for ax, v in zip(axes[0], values, strict=True):
        _bar_axes(ax, s, x, s.stats[s.stats[panel] == v], xlabel, x_order)
        ax.set_title(panel_title.format(v))
    axes[0][0].set_ylabel(ylabel)
    _outside_legend(axes[0][-1])
    fig.suptitle(title, y=1.04)
    return fig


def line_plot(s: Summary, x: str, xlabel: str, title: str, ylabel: str = "MCC"):
    """Mean per estimator against ``x`` (log scale) with a +- SE band, the paper's values as
    markers on a line."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for lab in s.labels:
        r = s.stats[s.stats["estimator"] == lab].sort_values(x)
        ax.plot(r[x], r["mean"], marker="o", color=s.colours[lab], label=s.names[lab])
        ax.fill_between(
            r[x],
            r["mean"] - r["se"],
            r["mean"] + r["se"],
            color=s.colours[lab],
            alpha=0.25,
            linewidth=0,
        )
    if len(s.paper):
        p = s.paper.sort_values(x)
        ax.plot(p[x], p["paper"], **PAPER_MARKER)
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1.05)
    add_legend(ax, loc="lower right", fontsize=8)
    ax.set_title(title)
    return fig


def summary_markdown(s: Summary, x: str, title: str) -> str:
    """'# title' and the :func:`markdown_table` of ``s`` against ``x``."""
    return f"# {title}\n\n" + markdown_table(s.stats, x, s.labels, s.names, s.paper)


def panel_markdown(s: Summary, x: str, panel: str, panel_title: str, title: str) -> str:
    """'# title' and one :func:`markdown_table` per value of ``panel`` under the heading
    ``panel_title.format(v)``."""
    parts = [f"# {title}\n"]
    for v in sorted(s.stats[panel].unique()):
        stats = s.stats[s.stats[panel] == v]
        parts.append(
            f"\n## {panel_title.format(v)}\n\n"
            + markdown_table(stats, x, s.labels, s.names, s.paper)
        )
    return "".join(parts)


def dk_panels(ds: Sequence[int], Ks: Mapping[int, Sequence[int]], ylabel: str):
    """A grid of panels against the targets per environment k: one row per latent dimension d,
    one panel per number of environments K of that d (titled 'd = .., K = ..', ``ylabel`` on
    the first of a row), the panels a row does not need hidden. Returns the figure and the
    ``(ax, d, K)`` of every panel to draw in."""
    import matplotlib.pyplot as plt

    ncols = max([len(Ks[d]) for d in ds] + [1])
    fig, axes = plt.subplots(
        len(ds), ncols, figsize=(3.3 * ncols, 2.5 * max(len(ds), 1)), squeeze=False
    )
    panels = []
    for i, d in enumerate(ds):
        for j, ax in enumerate(axes[i]):
            if j >= len(Ks[d]):
                ax.set_axis_off()
                continue
            ax.set_title(f"d = {d}, K = {Ks[d][j]}", fontsize=9)
            ax.set_xlabel("targets per environment k", fontsize=8)
            if j == 0:
                ax.set_ylabel(ylabel)
            panels.append((ax, d, Ks[d][j]))
    return fig, panels


def finish_panels(fig, title: str, ncol: int, legend_y: float) -> None:
    """The legend of the first panel centred below the panels (at most ``ncol`` columns, its
    bottom at ``legend_y`` in figure coordinates), the ``title`` above them, and a tight layout
    leaving room for both."""
    handles, texts = fig.axes[0].get_legend_handles_labels()
    fig.legend(
        handles,
        texts,
        loc="lower center",
        ncol=min(ncol, len(texts)),
        fontsize=8,
        bbox_to_anchor=(0.5, legend_y),
    )
    fig.suptitle(title, fontsize=10)
    rows = fig.axes[0].get_gridspec().nrows
    fig.tight_layout(rect=(0, min(0.2, 0.36 / rows), 1, 0.97))


#: First cell of the rows of :func:`estimator_rows` that hold the paper's values.
PAPER_ROW = "  reported in the paper"


def paper_statements(claims_file: str, figure: str, key: str) -> dict:
    """(estimator, selector value of ``key``) -> the paper's value as stated in the claims of
    ``figure`` ('SCM 1: 0.96 +- 0.03' -> '0.96 ± 0.03'; the number itself without a
    statement)."""
    from mncrl.claims import load_claims

    _, claims = load_claims(claims_file)
    return {
        (c.estimator, c.select.get(key)): (c.statement or f"{c.paper:.2f}")
        .split(":")[-1]
        .strip()
        .replace("+-", "±")
        for c in claims
        if c.figure == figure and c.source == "paper"
    }


def estimator_rows(s: Summary, column: str, values: Sequence, paper: Mapping) -> list[list]:
    """One row per estimator: its display name and 'mean ± se' at each of ``values`` of
    ``column`` ('-' if absent), followed by a :data:`PAPER_ROW` row with the ``paper`` texts
    ((estimator, value) -> text, :func:`paper_statements`) where the paper reports any."""
    rows = []
    for lab in s.labels:
        row = [s.names[lab]]
        for v in values:
            r = s.stats[(s.stats[column] == v) & (s.stats["estimator"] == lab)]
            row.append(f"{r['mean'].iloc[0]:.3f} ± {r['se'].iloc[0]:.3f}" if len(r) else "-")
        rows.append(row)
        if any((lab, v) in paper for v in values):
            rows.append([PAPER_ROW] + [paper.get((lab, v), "-") for v in values])
    return rows


def rows_markdown(header: Sequence[str], rows: Sequence[Sequence[str]], title: str) -> str:
    """'# title' and a markdown table of ``rows`` under ``header``."""
    md = [f"# {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    md += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(md) + "\n"


def table_plot(header: Sequence[str], rows: Sequence[Sequence[str]], title: str):
    """``rows`` drawn as a table (bold header, :data:`PAPER_ROW` rows shaded grey)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.2, 0.36 * (len(rows) + 1) + 0.3))
    ax.axis("off")
    widths = [0.46] + [0.54 / (len(header) - 1)] * (len(header) - 1)
    tab = ax.table(
        cellText=rows,
        colLabels=header,
        loc="center",
        cellLoc="left",
        colLoc="left",
        colWidths=widths,
    )
    tab.auto_set_font_size(False)
    tab.set_fontsize(9)
    tab.scale(1.0, 1.4)
    for (r, _c), cell in tab.get_celld().items():
        if r == 0:
            cell.set_text_props(weight="bold")
        elif rows[r - 1][0] == PAPER_ROW:
            cell.set_facecolor("#eeeeee")
    ax.set_title(title, fontsize=10)
    return fig


def write_outputs(fig, text: str, out_stem: str) -> str:
    """Write ``out_stem``.pdf, .png (the figure) and .md (``text``); returns ``text``."""
    save_figure(fig, out_stem)
    save_text(text, f"{out_stem}.md")
    return text


def bar_figure(s: Summary, x: str, xlabel: str, title: str, out_stem: str) -> str:
    """:func:`bar_plot` and :func:`summary_markdown` of ``s`` written under ``out_stem``;
    returns the markdown."""
    return write_outputs(bar_plot(s, x, xlabel, title), summary_markdown(s, x, title), out_stem)


def line_figure(s: Summary, x: str, xlabel: str, title: str, out_stem: str) -> str:
    """:func:`line_plot` and :func:`summary_markdown` of ``s`` written under ``out_stem``;
    returns the markdown."""
    return write_outputs(line_plot(s, x, xlabel, title), summary_markdown(s, x, title), out_stem)


def save_figure(fig, out_stem: str) -> list[str]:
    """Write ``out_stem``.pdf and .png atomically (deterministic metadata)."""
    paths = []
    for ext in ("pdf", "png"):
        path = Path(f"{out_stem}.{ext}")
        buf = io.BytesIO()
        meta = {"CreationDate": None} if ext == "pdf" else {"Software": None}
        fig.savefig(buf, format=ext, bbox_inches="tight", metadata=meta)
        data = buf.getvalue()
        atomic_write(path, lambda tmp, data=data: Path(tmp).write_bytes(data))
        paths.append(str(path))
    return paths


def save_text(text: str, path: str) -> str:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    return path
