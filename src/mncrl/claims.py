"""Machine-checked claims: every number the paper states (and our own statements) checked
against the workflow's metrics tables.

``paper/claims.yaml`` lists claims; each names an experiment, a selector (grid-cell parameters),
an estimator label and a metric, and one of these kinds:

- ``value``: the paper's number at one cell. With ``band = tolerance + 2 * SE`` (SE of our mean
  over seeds): ``|ours - paper| <= band`` -> *reproduced*; ours beyond the band in the metric's
  good direction and the estimator may improve on the paper (``improvable`` in the file header)
  -> *better*; otherwise *not reproduced*.
- ``range``: the paper gives ``[low, high]`` over several cells (e.g. Fig. 4 over mixing
  matrices); every matching cell's mean must lie in ``[low - band, high + band]``.
- ``trend``: the means over the cells, ordered by the grid key ``over``, rise: the last exceeds
  the first by more than the band of their difference and no step falls by more than its band.
- ``at_least`` / ``at_most``: our own statements: every seed of every matching cell is
  ``>= threshold`` (``<=``) -> *holds*, else *fails*.

A claim whose cells are not in the tables (e.g. the smoke configuration) gets *no data*.
Pure functions over pandas tables; ``python -m mncrl.claims`` writes the JSON and markdown
report (the ``claims`` rule).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mncrl.errors import MncrlError

KINDS = ("value", "range", "trend", "at_least", "at_most")
SOURCES = ("paper", "ours")
LOWER_IS_BETTER = ("amari",)
VERDICTS = ("reproduced", "better", "not reproduced", "holds", "fails", "no data")


@dataclass(frozen=True)
class Claim:
    """One checkable statement (see the module docstring for the kinds)."""

    id: str
    figure: str
    experiment: str
    estimator: str
    metric: str
    kind: str = "value"
    select: dict = field(default_factory=dict)
    paper: float | list | None = None
    tolerance: float = 0.0
    threshold: float | None = None
    over: str | None = None
    source: str = "paper"
    improvable: bool = False
    statement: str = ""
    note: str = ""


@dataclass(frozen=True)
class Verdict:
    """The outcome of one claim: our numbers, the verdict and a one-line explanation."""

    claim: str
    verdict: str
    mean: float | None
    se: float | None
    n: int
    detail: str
    cells: list = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def parse_claims(data: Mapping) -> tuple[dict, list[Claim]]:
    """(header, claims) from the parsed YAML; MncrlError naming the bad claim otherwise."""
    if not isinstance(data, Mapping) or "claims" not in data:
        raise MncrlError("claims file must be a mapping with a 'claims' list")
    header = {k: v for k, v in data.items() if k != "claims"}
    defaults = dict(header.get("defaults") or {})
    improvable = set(header.get("improvable") or [])
    allowed = set(Claim.__dataclass_fields__) - {"improvable"}
    claims, seen = [], set()
    for i, raw in enumerate(data["claims"] or []):
        where = f"claims[{i}] ({raw.get('id', '?') if isinstance(raw, Mapping) else raw!r})"
        if not isinstance(raw, Mapping):
            raise MncrlError(f"{where}: must be a mapping")
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise MncrlError(
                f"{where}: unknown key '{unknown[0]}'; allowed: {', '.join(sorted(allowed))}"
            )
        values = {**defaults, **raw}
        for key in ("id", "figure", "experiment", "estimator", "metric"):
            if not values.get(key):
                raise MncrlError(f"{where}: missing '{key}'")
        claim = Claim(
            **{k: v for k, v in values.items() if k in allowed},
            improvable=values["estimator"] in improvable,
        )
        _check_claim(claim, where)
        if claim.id in seen:
            raise MncrlError(f"{where}: duplicate id '{claim.id}'")
        seen.add(claim.id)
        claims.append(claim)
    return header, claims


def _check_claim(c: Claim, where: str) -> None:
    if c.kind not in KINDS:
        raise MncrlError(f"{where}: kind '{c.kind}' not one of {', '.join(KINDS)}")
    if c.source not in SOURCES:
        raise MncrlError(f"{where}: source '{c.source}' not one of {', '.join(SOURCES)}")
    if c.kind == "value" and not _is_number(c.paper):
        raise MncrlError(f"{where}: a 'value' claim needs a number 'paper'")
    if c.kind == "range" and not (
        isinstance(c.paper, list)
        and len(c.paper) == 2
        and all(_is_number(v) for v in c.paper)
        and c.paper[0] <= c.paper[1]
    ):
        raise MncrlError(f"{where}: a 'range' claim needs 'paper: [low, high]'")
    if c.kind == "trend" and not c.over:
        raise MncrlError(f"{where}: a 'trend' claim needs 'over' (the grid key)")
    if c.kind in ("at_least", "at_most") and not _is_number(c.threshold):
        raise MncrlError(f"{where}: an '{c.kind}' claim needs a number 'threshold'")
    if not (_is_number(c.tolerance) and c.tolerance >= 0):
        raise MncrlError(f"{where}: tolerance must be a number >= 0")
    if not isinstance(c.select, Mapping):
        raise MncrlError(f"{where}: select must be a mapping of cell parameters")


def _is_number(x) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def load_claims(path: str | Path) -> tuple[dict, list[Claim]]:
    import yaml

    path = Path(path)
    if not path.exists():
        raise MncrlError(f"claims file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise MncrlError(f"{path} is not valid YAML: {' '.join(str(exc).split())}") from None
    return parse_claims(data)


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def select_rows(table, claim: Claim):
    """The rows of ``table`` (tidy metrics) the claim is about."""
    mask = (
        (table["experiment"] == claim.experiment)
        & (table["estimator"] == claim.estimator)
        & (table["metric"] == claim.metric)
    )
    for key, value in claim.select.items():
        if key not in table.columns:
            return table.iloc[0:0]
        col = table[key]
        if _is_number(value) and np.issubdtype(col.dtype, np.number):
            mask &= np.isclose(col.astype(float), float(value), rtol=1e-9, atol=1e-12)
        else:
            mask &= col.astype(str) == str(value)
    return table[mask]


def cell_stats(rows, order_by: str | None = None) -> list[dict]:
    """Per cell: mean, SE (ddof 1; 0 for one seed), n, min, max over seeds (NaN = failed)."""
    out = []
    for cell, g in rows.groupby("cell", sort=False):
        v = g["value"].to_numpy(dtype=float)
        ok = v[np.isfinite(v)]
        n = int(ok.size)
        mean = float(ok.mean()) if n else float("nan")
        se = float(ok.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0
        entry = {
            "cell": cell,
            "mean": mean,
            "se": se,
            "n": n,
            "failed": int(v.size - n),
            "min": float(ok.min()) if n else float("nan"),
            "max": float(ok.max()) if n else float("nan"),
        }
        if order_by is not None and order_by in g.columns:
            entry[order_by] = _plain(g[order_by].iloc[0])
        out.append(entry)
    if order_by is not None:
        out.sort(key=lambda e: e.get(order_by))
    return out


def _plain(x):
    return x.item() if isinstance(x, np.generic) else x


def _good_sign(metric: str) -> int:
    return -1 if metric in LOWER_IS_BETTER else 1


def evaluate_claim(claim: Claim, table) -> Verdict:
    rows = select_rows(table, claim)
    if rows.empty:
        return Verdict(
            claim.id,
            "no data",
            None,
            None,
            0,
            "no matching rows in the metrics tables (cell not run in this config)",
        )
    cells = cell_stats(rows, claim.over)
    if sum(c["n"] for c in cells) == 0:
        return Verdict(
            claim.id,
            "fails" if claim.source == "ours" else "not reproduced",
            None,
            None,
            0,
            "every fit failed (see the cell's .json sidecar)",
            cells,
        )
    return _EVALUATORS[claim.kind](claim, cells)


def _value(claim: Claim, cells: list[dict]) -> Verdict:
    if len(cells) != 1:
        return Verdict(
            claim.id,
            "no data",
            None,
            None,
            0,
            f"selector matches {len(cells)} cells; a 'value' claim needs exactly one",
            cells,
        )
    c = cells[0]
    band = claim.tolerance + 2 * c["se"]
    diff = c["mean"] - float(claim.paper)
    if abs(diff) <= band:
        verdict = "reproduced"
    elif _good_sign(claim.metric) * diff > 0 and claim.improvable:
        verdict = "better"
    else:
        verdict = "not reproduced"
    detail = f"ours - paper = {diff:+.3f}, band +-{band:.3f} (tolerance {claim.tolerance:g} + 2 SE)"
    if c["failed"]:
        detail += f"; {c['failed']} failed fit(s) excluded"
    return Verdict(claim.id, verdict, c["mean"], c["se"], c["n"], detail, cells)


def _range(claim: Claim, cells: list[dict]) -> Verdict:
    low, high = (float(v) for v in claim.paper)
    sign = _good_sign(claim.metric)
    outside_good = outside_bad = 0
    for c in cells:
        band = claim.tolerance + 2 * c["se"]
        if c["mean"] < low - band:
            outside_good += sign < 0
            outside_bad += sign > 0
        elif c["mean"] > high + band:
            outside_good += sign > 0
            outside_bad += sign < 0
    if outside_good == outside_bad == 0:
        verdict = "reproduced"
    elif outside_bad == 0 and claim.improvable:
        verdict = "better"
    else:
        verdict = "not reproduced"
    means = [c["mean"] for c in cells]
    lo_, hi_ = min(means), max(means)
    detail = (
        f"our cell means span {lo_:.3f}-{hi_:.3f} over {len(cells)} cells; "
        f"{outside_good + outside_bad} outside [{low:g}, {high:g}] +- (tolerance + 2 SE)"
    )
    pooled_se = math.sqrt(sum(c["se"] ** 2 for c in cells)) / len(cells)
    return Verdict(
        claim.id,
        verdict,
        float(np.mean(means)),
        pooled_se,
        sum(c["n"] for c in cells),
        detail,
        cells,
    )


def _trend(claim: Claim, cells: list[dict]) -> Verdict:
    if len(cells) < 2:
        return Verdict(
            claim.id,
            "no data",
            None,
            None,
            0,
            f"a trend needs at least 2 cells over '{claim.over}', found {len(cells)}",
            cells,
        )
    sign = _good_sign(claim.metric)
    means = [c["mean"] for c in cells]

    def band(a, b):
        return claim.tolerance + 2 * math.sqrt(a["se"] ** 2 + b["se"] ** 2)

    first, last = cells[0], cells[-1]
    rise = sign * (last["mean"] - first["mean"])
    drops = [
        i
        for i in range(len(cells) - 1)
        if sign * (cells[i + 1]["mean"] - cells[i]["mean"]) < -band(cells[i], cells[i + 1])
    ]
    rising = rise > band(first, last) and not drops
    detail = (
        f"means over {claim.over}: "
        + ", ".join(f"{m:.3f}" for m in means)
        + f"; last - first = {last['mean'] - first['mean']:+.3f} "
        f"(band {band(first, last):.3f})" + (f"; falls after step(s) {drops}" if drops else "")
    )
    return Verdict(
        claim.id,
        "reproduced" if rising else "not reproduced",
        float(last["mean"] - first["mean"]),
        math.sqrt(first["se"] ** 2 + last["se"] ** 2),
        sum(c["n"] for c in cells),
        detail,
        cells,
    )


def _bound(claim: Claim, cells: list[dict]) -> Verdict:
    at_least = claim.kind == "at_least"
    worst = min(c["min"] for c in cells) if at_least else max(c["max"] for c in cells)
    failed = sum(c["failed"] for c in cells)
    ok = (worst >= claim.threshold if at_least else worst <= claim.threshold) and not failed
    op = ">=" if at_least else "<="
    detail = (
        f"{'min' if at_least else 'max'} over {sum(c['n'] for c in cells)} seeds in "
        f"{len(cells)} cells = {worst:.6g} (claim: every value {op} {claim.threshold:g})"
    )
    if failed:
        detail += f"; {failed} failed fit(s)"
    means = [c["mean"] for c in cells]
    return Verdict(
        claim.id,
        "holds" if ok else "fails",
        float(np.mean(means)),
        None,
        sum(c["n"] for c in cells),
        detail,
        cells,
    )


_EVALUATORS = {
    "value": _value,
    "range": _range,
    "trend": _trend,
    "at_least": _bound,
    "at_most": _bound,
}


def evaluate_all(claims: Sequence[Claim], table) -> list[Verdict]:
    return [evaluate_claim(c, table) for c in claims]


def verdict_counts(verdicts: Sequence[Verdict]) -> dict:
    counts = {v: 0 for v in VERDICTS}
    for v in verdicts:
        counts[v.verdict] += 1
    return {k: n for k, n in counts.items() if n}


# --------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------


def to_json(header: Mapping, claims: Sequence[Claim], verdicts: Sequence[Verdict]) -> dict:
    by_id = {v.claim: v for v in verdicts}
    entries = []
    for c in claims:
        v = by_id[c.id]
        entries.append(
            {
                **asdict(c),
                "ours": {"mean": v.mean, "se": v.se, "n": v.n, "cells": v.cells},
                "verdict": v.verdict,
                "detail": v.detail,
            }
        )
    return {
        "tolerance_rule": header.get("tolerance_rule", ""),
        "summary": verdict_counts(verdicts),
        "claims": entries,
    }


def _fmt(x, digits=3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{x:.{digits}f}"


def _paper_text(c: Claim) -> str:
    if c.kind == "value":
        return f"{c.paper:.2f}"
    if c.kind == "range":
        return f"{c.paper[0]:.2f}-{c.paper[1]:.2f}"
    if c.kind == "trend":
        values = c.paper if isinstance(c.paper, list) else []
        return "rising" + (f" ({', '.join(f'{v:.2f}' for v in values)})" if values else "")
    return f"{'>=' if c.kind == 'at_least' else '<='} {c.threshold:g}"


def _ours_text(c: Claim, v: Verdict) -> str:
    if v.mean is None:
        return "-"
    if c.kind == "range":
        means = [e["mean"] for e in v.cells]
        return f"{min(means):.3f}-{max(means):.3f} ({len(v.cells)} cells)"
    if c.kind == "trend":
        return ", ".join(f"{e['mean']:.3f}" for e in v.cells)
    if c.kind in ("at_least", "at_most"):
        worst = (
            min(e["min"] for e in v.cells)
            if c.kind == "at_least"
            else max(e["max"] for e in v.cells)
        )
        return f"{'min' if c.kind == 'at_least' else 'max'} {worst:.4g}"
    return f"{_fmt(v.mean)} +- {_fmt(v.se)} (n={v.n})"


def _selector_text(c: Claim) -> str:
    sel = ", ".join(f"{k}={v}" for k, v in c.select.items()) or "all cells"
    return f"{c.estimator}; {sel}" + (f"; over {c.over}" if c.over else "")


def render_report(
    header: Mapping,
    claims: Sequence[Claim],
    verdicts: Sequence[Verdict],
    sources: Sequence[str] = (),
) -> str:
    """The reviewer's markdown report: summary, then one table per figure, notes below."""
    by_id = {v.claim: v for v in verdicts}
    lines = [
        "# Claims report",
        "",
        "Generated by `snakemake claims` from `paper/claims.yaml` and the metrics tables"
        + (f" ({', '.join(sources)})" if sources else "")
        + ". Do not edit.",
        "",
    ]
    rule = str(header.get("tolerance_rule", "")).strip()
    if rule:
        lines += ["## Tolerance rule", "", rule, ""]
    counts = verdict_counts(verdicts)
    lines += ["## Summary", "", "| verdict | claims |", "|---|---|"]
    lines += [f"| {k} | {n} |" for k, n in counts.items()]
    lines.append("")
    figures: dict[str, list[Claim]] = {}
    for c in claims:
        figures.setdefault(c.figure, []).append(c)
    for fig, group in figures.items():
        lines += [
            f"## {fig}",
            "",
            "| claim | source | selector | metric | paper | ours (mean +- SE) | verdict |",
            "|---|---|---|---|---|---|---|",
        ]
        notes = []
        for c in group:
            v = by_id[c.id]
            mark = ""
            if c.note:
                notes.append((c.id, c.note))
                mark = f" [{len(notes)}]"
            lines.append(
                f"| `{c.id}`{mark} | {c.source} | {_selector_text(c)} | {c.metric} | "
                f"{_paper_text(c)} | {_ours_text(c, v)} | **{v.verdict}** |"
            )
        lines.append("")
        details = [f"- `{c.id}`: {by_id[c.id].detail}" for c in group]
        lines += [
            "<details><summary>how each verdict was reached</summary>",
            "",
            *details,
            "",
            "</details>",
            "",
        ]
        if notes:
            lines += ["Notes:", ""]
            lines += [
                f"{i}. `{cid}`: {' '.join(str(note).split())}"
                for i, (cid, note) in enumerate(notes, 1)
            ]
            lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mncrl.claims", description="Check paper/claims.yaml against metrics tables."
    )
    parser.add_argument("tables", nargs="+", help="metrics tables (results/<exp>/metrics.csv)")
    parser.add_argument("--claims", default="paper/claims.yaml", help="the claims file")
    parser.add_argument("--json", required=True, help="output: results/claims.json")
    parser.add_argument("--report", required=True, help="output: the markdown report")
    args = parser.parse_args(argv)
    try:
        from mncrl.experiments.tables import concat, write_json

        header, claims = load_claims(args.claims)
        table = concat(args.tables)
        verdicts = evaluate_all(claims, table)
        write_json(to_json(header, claims, verdicts), args.json)
        text = render_report(header, claims, verdicts, sources=args.tables)
        from mncrl.data import atomic_write

        atomic_write(args.report, lambda tmp: Path(tmp).write_text(text))
    except MncrlError as exc:
        print(f"mncrl.claims: error: {exc}", file=sys.stderr)
        return 2
    counts = verdict_counts(verdicts)
    print(f"{len(claims)} claims: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
