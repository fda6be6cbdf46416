"""Helpers shared by the figure notebooks (figures/*.py): load tables, summarise, draw the
paper's layout (grouped bars with SE, line with SE band) with the paper's values as markers,
and save figures/tables atomically."""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from mncrl.data import atomic_write

#: A fixed colour per estimator label (colour-blind palette), others get the next colours.
COLOURS = {"sv-paper": 0, "icrl": 1, "ica": 2, "sv-best": 4, "subspace": 3}
PAPER_MARKER = {"marker": "D", "color": "black", "markersize": 5, "linestyle": "none",
                "zorder": 5}


def setup():
    """The common seaborn/matplotlib style of every figure."""
    import matplotlib

    matplotlib.use("Agg")
    import seaborn as sns

    sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)
    matplotlib.rcParams.update({"figure.dpi": 110, "savefig.dpi": 200,
                                "svg.hashsalt": "mncrl", "pdf.compression": 6})


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


def summary(table, by: Sequence[str], metric: str):
    """Mean, SE (ddof 1) and number of seeds (n_seeds) of ``metric`` over seeds for every combination of ``by``."""
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
            rows.append({"estimator": c.estimator, "metric": c.metric, **c.select,
                         "paper": float(c.paper), "paper_low": float(c.paper),
                         "paper_high": float(c.paper)})
        elif c.kind == "range":
            rows.append({"estimator": c.estimator, "metric": c.metric, **c.select,
                         "paper": float(np.mean(c.paper)), "paper_low": float(c.paper[0]),
                         "paper_high": float(c.paper[1])})
    return pd.DataFrame(rows)


def ordered_labels(present: Sequence[str], configured: Sequence[str]) -> list[str]:
    """Labels in config order, then any others present in the data."""
    present = list(dict.fromkeys(present))
    return [lab for lab in configured if lab in present] + \
        [lab for lab in present if lab not in configured]


def grouped_bars(ax, stats, x: str, labels: Sequence[str], names: Mapping[str, str],
                 colours: Mapping, paper=None, x_order: Sequence | None = None,
                 width: float = 0.8):
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
        ax.bar(pos, s["mean"], width=slot * 0.95, yerr=s["se"], color=colours[lab],
               label=names.get(lab, lab), capsize=2, error_kw={"elinewidth": 1})
        if paper is None or not len(paper):
            continue
        p = paper[(paper["estimator"] == lab) & paper[x].isin(xs)]
        for _, row in p.iterrows():
            px = position(row[x], j)
            if row["paper_high"] > row["paper_low"]:
                ax.plot([px, px], [row["paper_low"], row["paper_high"]], color="black", lw=2,
                        zorder=5)
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


def markdown_table(stats, x: str, labels: Sequence[str], names: Mapping[str, str],
                   paper=None, digits: int = 3) -> str:
    """``x`` down, estimators across: 'mean +- se (paper p)'."""
    xs = sorted(set(stats[x].unique()) | (set(paper[x].unique()) if paper is not None
                                          and len(paper) else set()))
    header = f"| {x} | " + " | ".join(names.get(lab, lab) for lab in labels) + " |"
    lines = [header, "|" + "---|" * (len(labels) + 1)]
    for v in xs:
        cells = []
        for lab in labels:
            s = stats[(stats[x] == v) & (stats["estimator"] == lab)]
            text = f"{s['mean'].iloc[0]:.{digits}f} +- {s['se'].iloc[0]:.{digits}f}" \
                if len(s) else "-"
            if paper is not None and len(paper):
                p = paper[(paper[x] == v) & (paper["estimator"] == lab)]
                if len(p):
                    lo, hi = p["paper_low"].iloc[0], p["paper_high"].iloc[0]
                    text += f" (paper {lo:.2f})" if lo == hi else f" (paper {lo:.2f}-{hi:.2f})"
            cells.append(text)
        lines.append(f"| {_tick(v)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


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
