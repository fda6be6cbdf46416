"""Machine-checked claims: every number the paper states (and our own statements) checked
against the workflow's metrics tables.

``paper/claims.yaml`` lists claims; each names an experiment, a selector (grid-cell parameters),
an estimator label and a metric, and one of these kinds:

- ``value``: the paper's number at one cell. With ``band = tolerance + 2 * SE`` (SE of our mean
  over seeds): ``|ours - paper| <= band`` -> *reproduced*; otherwise *higher than the paper* or
  *lower than the paper* (a discrepancy to explain), or *better* when ours is beyond the band in
  the metric's good direction and the estimator is one of ours (``our_estimators`` in the file
  header: the paper's own method and its baselines are never "better", a faithful
  reimplementation scoring above the paper is a discrepancy).
- ``range``: the paper gives ``[low, high]`` over several cells (e.g. Fig. 4 over mixing
  matrices); every matching cell's mean must lie in ``[low - band, high + band]``; otherwise
  *higher* / *lower than the paper* (every outlying cell on one side) or *outside the paper's
  range* (both sides).
- ``trend``: the means over the cells, ordered by the grid key ``over``, rise: the last exceeds
  the first by more than the band of their difference and no step falls by more than its band
  -> *reproduced*, else *not reproduced*.
- ``at_least`` / ``at_most``: our own statements: every seed of every matching cell is
  ``>= threshold`` (``<=``) -> *holds*, else *fails*.
- ``not_below``: our own comparative statement: in every matching cell where some estimator
  of ``compare`` (labels) has a fit that answered, the claim's estimator's mean over the seeds
  where that estimator answered is at least that estimator's mean over the same seeds minus
  ``tolerance`` -> *holds*, else *fails* (naming the cells). Paired on purpose: a compared
  estimator that refuses the hard data sets and answers the easy ones is compared on the easy
  ones only, never its easy seeds against our hard ones. The claim's own refused or failed fit
  on such a seed is behind (no answer cannot beat an answer) and, as for every claim, counts
  against it.
- ``ratio_at_most`` / ``ratio_at_least``: our own comparative statement about a size (an
  error): in every matching cell, the claim's estimator's mean over the seeds where it and the
  one estimator of ``compare`` answered, divided by that estimator's mean on the same seeds, is
  ``<= threshold`` (``>=``) -> *holds*, else *fails* (naming the cells). A ratio of means, not
  a mean of per-seed ratios: one seed whose reference error happens to be tiny does not
  dominate it.

Rows whose setting the estimator does not cover (status ``not_applicable``: never fitted) are
not part of any claim.

A failed fit (a NaN value, or ``n_failed`` > 0 on a summary row) counts against the claim: the
verdict is *failed runs* with the count, unless the claim says ``expect_failures: true`` (then
the failures are only counted). A claim whose cells are not in the tables (e.g. the smoke
configuration) gets *no data*.

Notes, statements and causes may contain template fields ``{name}``: numbers rendered from the
same tables, defined under ``fields`` in the file header (experiment(s), estimator, metric,
select, stat: ``mean``, ``mean_se``, ``min``, ``max``, ``span``, ``by`` (per value of the key
``by``), ``failed`` or ``n``), so that no result number is typed by hand.

Pure functions over pandas tables; ``python -m mncrl.claims`` writes the JSON and markdown
report (the ``claims`` rule), stamped with the commit and the hash of the config.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from mncrl.errors import MncrlError

KINDS = (
    "value",
    "range",
    "trend",
    "at_least",
    "at_most",
    "not_below",
    "ratio_at_most",
    "ratio_at_least",
)
RATIOS = ("ratio_at_most", "ratio_at_least")
SOURCES = ("paper", "ours")
LOWER_IS_BETTER = ("amari",)
HIGHER, LOWER, OUTSIDE = (
    "higher than the paper",
    "lower than the paper",
    "outside the paper's range",
)
VERDICTS = (
    "reproduced",
    HIGHER,
    LOWER,
    OUTSIDE,
    "not reproduced",
    "better",
    "holds",
    "fails",
    "failed runs",
    "no data",
)
#: Verdicts that are a difference from the paper (to be explained in the claim's note).
DISCREPANCIES = (HIGHER, LOWER, OUTSIDE, "not reproduced")
STATS = ("mean", "mean_se", "min", "max", "span", "by", "failed", "n")
FIELD_RE = re.compile(r"\{([A-Za-z0-9_.-]+)\}")


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
    expect_failures: bool = False
    statement: str = ""
    note: str = ""
    cause: str = ""
    compare: list | None = None
    may_be_better: bool = False


@dataclass(frozen=True)
class Field:
    """A number rendered into notes from the tables (module docstring)."""

    name: str
    experiment: tuple
    estimator: str
    metric: str
    stat: str = "mean"
    select: dict = field(default_factory=dict)
    by: str | None = None
    digits: int = 3


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
    failed: int = 0


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def _where(i: int, raw, what: str = "claims") -> str:
    name = raw.get("id", "?") if isinstance(raw, Mapping) else repr(raw)
    return f"{what}[{i}] ({name})"


def parse_claims(data: Mapping) -> tuple[dict, list[Claim]]:
    """(header, claims) from the parsed YAML; MncrlError naming the bad claim otherwise. The
    header's ``fields`` are parsed into :class:`Field` objects (``header["fields"]``)."""
    if not isinstance(data, Mapping) or "claims" not in data:
        raise MncrlError("claims file must be a mapping with a 'claims' list")
    header = {k: v for k, v in data.items() if k != "claims"}
    defaults = dict(header.get("defaults") or {})
    ours = set(header.get("our_estimators") or [])
    fields = parse_fields(header.get("fields") or {})
    header["fields"] = fields
    allowed = set(Claim.__dataclass_fields__) - {"may_be_better"}
    claims, seen = [], set()
    for i, raw in enumerate(data["claims"] or []):
        where = _where(i, raw)
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
            may_be_better=values["estimator"] in ours,
        )
        _check_claim(claim, where, fields)
        if claim.id in seen:
            raise MncrlError(f"{where}: duplicate id '{claim.id}'")
        seen.add(claim.id)
        claims.append(claim)
    return header, claims


def parse_fields(raw: Mapping) -> dict[str, Field]:
    """The header's ``fields`` (name -> mapping) as :class:`Field` objects."""
    if not isinstance(raw, Mapping):
        raise MncrlError("fields must be a mapping of name -> field")
    allowed = set(Field.__dataclass_fields__) - {"name"}
    out = {}
    for name, spec in raw.items():
        where = f"fields.{name}"
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", str(name)):
            raise MncrlError(f"{where}: a field name may use letters, digits, '_', '.', '-'")
        if not isinstance(spec, Mapping):
            raise MncrlError(f"{where}: must be a mapping")
        unknown = sorted(set(spec) - allowed)
        if unknown:
            raise MncrlError(
                f"{where}: unknown key '{unknown[0]}'; allowed: {', '.join(sorted(allowed))}"
            )
        for key in ("experiment", "estimator", "metric"):
            if not spec.get(key):
                raise MncrlError(f"{where}: missing '{key}'")
        exp = spec["experiment"]
        f = Field(
            name=str(name),
            **{**spec, "experiment": tuple(exp) if isinstance(exp, list) else (exp,)},
        )
        if f.stat not in STATS:
            raise MncrlError(f"{where}: stat '{f.stat}' not one of {', '.join(STATS)}")
        if (f.stat == "by") != bool(f.by):
            raise MncrlError(f"{where}: 'by' (a column) goes with stat 'by' and only with it")
        if not isinstance(f.select, Mapping):
            raise MncrlError(f"{where}: select must be a mapping of cell parameters")
        if not (isinstance(f.digits, int) and 0 <= f.digits <= 6):
            raise MncrlError(f"{where}: digits must be an integer 0-6")
        out[f.name] = f
    return out


def _check_claim(c: Claim, where: str, fields: Mapping) -> None:
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
    if c.kind == "not_below" and not (
        isinstance(c.compare, list) and c.compare and all(isinstance(x, str) for x in c.compare)
    ):
        raise MncrlError(f"{where}: a 'not_below' claim needs 'compare' (estimator labels)")
    if c.kind in RATIOS and not (
        isinstance(c.compare, list) and len(c.compare) == 1 and isinstance(c.compare[0], str)
    ):
        raise MncrlError(f"{where}: a '{c.kind}' claim needs 'compare' (one estimator label)")
    if c.kind in ("at_least", "at_most", *RATIOS) and not _is_number(c.threshold):
        raise MncrlError(f"{where}: an '{c.kind}' claim needs a number 'threshold'")
    if not (_is_number(c.tolerance) and c.tolerance >= 0):
        raise MncrlError(f"{where}: tolerance must be a number >= 0")
    if not isinstance(c.select, Mapping):
        raise MncrlError(f"{where}: select must be a mapping of cell parameters")
    if not isinstance(c.expect_failures, bool):
        raise MncrlError(f"{where}: expect_failures must be true or false")
    for key in ("statement", "note", "cause"):
        for name in FIELD_RE.findall(str(getattr(c, key) or "")):
            if name not in fields:
                raise MncrlError(f"{where}: {key} uses the field '{{{name}}}', not defined")


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
# Selecting rows
# --------------------------------------------------------------------------------------------


def select_rows(table, experiments, estimator: str, metric: str, select: Mapping):
    """The rows of ``table`` (tidy metrics) of these experiment(s), estimator, metric and cell
    parameters."""
    experiments = [experiments] if isinstance(experiments, str) else list(experiments)
    mask = (
        table["experiment"].isin(experiments)
        & (table["estimator"] == estimator)
        & (table["metric"] == metric)
    )
    if "status" in table.columns:
        mask &= table["status"] != "not_applicable"
    for key, value in select.items():
        if key not in table.columns:
            return table.iloc[0:0]
        col = table[key]
        if _is_number(value) and np.issubdtype(col.dtype, np.number):
            mask &= np.isclose(col.astype(float), float(value), rtol=1e-9, atol=1e-12)
        else:
            mask &= col.astype(str) == str(value)
    return table[mask]


def claim_rows(table, claim: Claim):
    """The rows of ``table`` the claim is about."""
    return select_rows(table, claim.experiment, claim.estimator, claim.metric, claim.select)


def _failed_count(g) -> int:
    """Failed fits among rows: NaN values, plus ``n_failed`` of summary rows."""
    v = g["value"].to_numpy(dtype=float)
    failed = int((~np.isfinite(v)).sum())
    if "n_failed" in g.columns:
        failed += int(np.nansum(g["n_failed"].to_numpy(dtype=float)))
    return failed


def cell_stats(rows, order_by: str | None = None) -> list[dict]:
    """Per cell: mean, SE (ddof 1; 0 for one seed), n, min, max over the seeds that did not
    fail, and the number of failed fits."""
    out = []
    for cell, g in rows.groupby(["experiment", "cell"], sort=False):
        v = g["value"].to_numpy(dtype=float)
        ok = v[np.isfinite(v)]
        n = int(ok.size)
        entry = {
            "cell": cell[1] if rows["experiment"].nunique() == 1 else "/".join(cell),
            "mean": float(ok.mean()) if n else float("nan"),
            "se": float(ok.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0,
            "n": n,
            "failed": _failed_count(g),
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


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def evaluate_claim(claim: Claim, table) -> Verdict:
    rows = claim_rows(table, claim)
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
    failed = sum(c["failed"] for c in cells)
    if sum(c["n"] for c in cells) == 0:
        return Verdict(
            claim.id,
            "failed runs",
            None,
            None,
            0,
            f"every fit failed ({failed}; see the cell's .json sidecar)",
            cells,
            failed,
        )
    if claim.kind == "not_below":
        verdict = replace(_not_below(claim, cells, table), failed=failed)
    elif claim.kind in RATIOS:
        verdict = replace(_ratio(claim, cells, table), failed=failed)
    else:
        verdict = replace(_EVALUATORS[claim.kind](claim, cells), failed=failed)
    if failed and not claim.expect_failures:
        return replace(
            verdict,
            verdict="failed runs",
            detail=f"{failed} failed fit(s) count against the claim; on the others: "
            f"{verdict.verdict} ({verdict.detail})",
        )
    if failed:
        return replace(verdict, detail=f"{verdict.detail}; {failed} failed fit(s), expected")
    return verdict


def _side(claim: Claim, diff: float) -> str:
    """The verdict of a value outside the band: better (ours, good direction) or the side."""
    if _good_sign(claim.metric) * diff > 0 and claim.may_be_better:
        return "better"
    return HIGHER if diff > 0 else LOWER


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
    verdict = "reproduced" if abs(diff) <= band else _side(claim, diff)
    detail = f"ours - paper = {diff:+.3f}, band +-{band:.3f} (tolerance {claim.tolerance:g} + 2 SE)"
    return Verdict(claim.id, verdict, c["mean"], c["se"], c["n"], detail, cells)


def _range(claim: Claim, cells: list[dict]) -> Verdict:
    low, high = (float(v) for v in claim.paper)
    above = below = 0
    for c in cells:
        band = claim.tolerance + 2 * c["se"]
        below += c["mean"] < low - band
        above += c["mean"] > high + band
    if above == below == 0:
        verdict = "reproduced"
    elif above and below:
        verdict = OUTSIDE
    else:
        verdict = _side(claim, 1.0 if above else -1.0)
    means = [c["mean"] for c in cells]
    detail = (
        f"our cell means span {min(means):.3f}-{max(means):.3f} over {len(cells)} cells; "
        f"{above} above, {below} below [{low:g}, {high:g}] +- (tolerance + 2 SE)"
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
    ok = worst >= claim.threshold if at_least else worst <= claim.threshold
    op = ">=" if at_least else "<="
    detail = (
        f"{'min' if at_least else 'max'} over {sum(c['n'] for c in cells)} values in "
        f"{len(cells)} cells = {worst:.6g} (claim: every value {op} {claim.threshold:g})"
    )
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


def _seed_values(rows) -> dict[str, dict[int, float]]:
    """{cell: {seed: value}} of tidy metric rows (NaN: the fit gave no answer)."""
    out: dict[str, dict[int, float]] = {}
    for cell, g in rows.groupby("cell", sort=False):
        out[cell] = dict(zip(g["seed"].astype(int), g["value"].astype(float), strict=True))
    return out


def _not_below(claim: Claim, cells: list[dict], table) -> Verdict:
    """``not_below`` (module docstring): per cell and compared estimator, the claim's mean
    against the compared estimator's mean on the seeds where the compared estimator answered
    (paired: the same data sets); the cell's margin is the smallest over the compared ones."""
    ours = _seed_values(claim_rows(table, claim))
    gaps: dict[str, tuple[float, str, float, float]] = {}  # cell: (gap, label, ours, theirs)
    for label in claim.compare:
        rows = select_rows(table, claim.experiment, label, claim.metric, claim.select)
        for cell, theirs in _seed_values(rows).items():
            seeds = [s for s, v in theirs.items() if math.isfinite(v)]
            if not seeds or cell not in ours:
                continue
            mine = [ours[cell].get(s, math.nan) for s in seeds]
            m, t = float(np.mean(mine)), float(np.mean([theirs[s] for s in seeds]))
            gap = m - t if all(map(math.isfinite, mine)) else -math.inf
            if cell not in gaps or gap < gaps[cell][0]:
                gaps[cell] = (gap, label, m, t)
    behind = [
        f"{cell}: {m:.4f} < {label} {t:.4f}"
        if math.isfinite(gap)
        else f"{cell}: no answer where {label} answered"
        for cell, (gap, label, m, t) in gaps.items()
        if gap < -claim.tolerance
    ]
    compared = [c for c in cells if c["cell"] in gaps]
    detail = (
        f"{len(compared)} cells compared with {', '.join(claim.compare)} on the seeds each "
        f"answered (tolerance {claim.tolerance:g}); smallest margin "
        f"{min(g[0] for g in gaps.values()):+.4f}"
        if compared
        else f"no cell where {', '.join(claim.compare)} answered"
    )
    if behind:
        detail += "; behind in " + "; ".join(behind[:5]) + (" ..." if len(behind) > 5 else "")
    return Verdict(
        claim.id,
        "fails" if behind or not compared else "holds",
        float(np.mean([c["mean"] for c in compared])) if compared else None,
        None,
        sum(c["n"] for c in compared),
        detail,
        cells,
    )


def _ratio(claim: Claim, cells: list[dict], table) -> Verdict:
    """``ratio_at_most`` / ``ratio_at_least`` (module docstring): per cell, the claim's mean
    over the seeds where both answered over the compared estimator's mean on the same seeds."""
    ours = _seed_values(claim_rows(table, claim))
    label = claim.compare[0]
    theirs = _seed_values(select_rows(table, claim.experiment, label, claim.metric, claim.select))
    at_most = claim.kind == "ratio_at_most"
    ratios = {}
    for cell, mine in ours.items():
        other = theirs.get(cell, {})
        seeds = [
            x for x, v in mine.items() if math.isfinite(v) and math.isfinite(other.get(x, math.nan))
        ]
        if seeds:
            den = float(np.mean([other[x] for x in seeds]))
            num = float(np.mean([mine[x] for x in seeds]))
            ratios[cell] = num / den if den > 0 else math.inf
    op = "<=" if at_most else ">="
    bad = [
        f"{cell}: {r:.3g}"
        for cell, r in ratios.items()
        if not (r <= claim.threshold if at_most else r >= claim.threshold)
    ]
    if ratios:
        worst = max(ratios.values()) if at_most else min(ratios.values())
        detail = (
            f"mean {claim.metric} over {label}'s on the same seeds in {len(ratios)} cells: "
            f"{'max' if at_most else 'min'} {worst:.4g} (claim: every cell {op} "
            f"{claim.threshold:g})"
        )
    else:
        detail = f"no cell where both {claim.estimator} and {label} answered"
    if bad:
        detail += "; not met in " + "; ".join(bad[:5]) + (" ..." if len(bad) > 5 else "")
    compared = [c for c in cells if c["cell"] in ratios]
    return Verdict(
        claim.id,
        "fails" if bad or not ratios else "holds",
        float(np.mean(list(ratios.values()))) if ratios else None,
        None,
        sum(c["n"] for c in compared),
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
# Template fields
# --------------------------------------------------------------------------------------------


def _num(x: float, digits: int) -> str:
    return f"{x:.{digits}f}"


def field_value(f: Field, table) -> str | None:
    """The field's text from the tables, None when no (finite) value matches."""
    rows = select_rows(table, f.experiment, f.estimator, f.metric, f.select)
    if rows.empty:
        return None
    v = rows["value"].to_numpy(dtype=float)
    ok = v[np.isfinite(v)]
    if f.stat == "failed":
        return str(_failed_count(rows))
    if f.stat == "n":
        return str(int(ok.size))
    if not ok.size:
        return None
    dg = f.digits
    if f.stat == "mean":
        return _num(ok.mean(), dg)
    if f.stat == "mean_se":
        se = ok.std(ddof=1) / math.sqrt(ok.size) if ok.size > 1 else 0.0
        return f"{_num(ok.mean(), dg)} ± {_num(se, dg)} (n = {ok.size})"
    if f.stat == "min":
        return _num(ok.min(), dg)
    if f.stat == "max":
        return _num(ok.max(), dg)
    if f.stat == "span":
        return f"{_num(ok.min(), dg)}–{_num(ok.max(), dg)}"
    if f.by not in rows.columns:
        return None
    groups = [(k, g["value"].to_numpy(dtype=float)) for k, g in rows.groupby(f.by, sort=True)]
    groups = [(k, x[np.isfinite(x)]) for k, x in groups]
    means = " / ".join(_num(x.mean(), dg) if x.size else "failed" for _, x in groups)
    keys = " / ".join(_key_text(k) for k, _ in groups)
    return f"{means} ({f.by} {keys})"


def _key_text(k) -> str:
    k = _plain(k)
    return f"{k:g}" if isinstance(k, float) else str(k)


def field_values(fields: Mapping[str, Field], table) -> dict[str, str | None]:
    return {name: field_value(f, table) for name, f in fields.items()}


def render_text(text: str, values: Mapping[str, str | None]) -> str:
    """``text`` with every ``{field}`` replaced by its value (``[no data: field]`` if none)."""
    return FIELD_RE.sub(lambda m: values.get(m.group(1)) or f"[no data: {m.group(1)}]", text)


def rendered(c: Claim, values: Mapping) -> dict:
    """The claim's statement, note and cause with the fields filled in (one line each)."""
    return {
        key: render_text(" ".join(str(getattr(c, key) or "").split()), values)
        for key in ("statement", "note", "cause")
    }


# --------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------


def to_json(
    header: Mapping,
    claims: Sequence[Claim],
    verdicts: Sequence[Verdict],
    values: Mapping | None = None,
    provenance: Mapping | None = None,
) -> dict:
    values = values or {}
    by_id = {v.claim: v for v in verdicts}
    entries = []
    for c in claims:
        v = by_id[c.id]
        entries.append(
            {
                **asdict(c),
                "rendered": rendered(c, values),
                "ours": {
                    "mean": v.mean,
                    "se": v.se,
                    "n": v.n,
                    "failed": v.failed,
                    "cells": v.cells,
                },
                "verdict": v.verdict,
                "detail": v.detail,
            }
        )
    return {
        "tolerance_rule": header.get("tolerance_rule", ""),
        "provenance": dict(provenance or {}),
        "summary": verdict_counts(verdicts),
        "fields": dict(values),
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
    if c.kind == "not_below":
        return f">= best of {', '.join(c.compare)} - {c.tolerance:g}, per cell"
    if c.kind in RATIOS:
        op = "<=" if c.kind == "ratio_at_most" else ">="
        return f"{op} {c.threshold:g} x {c.compare[0]}, per cell"
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
    if c.kind in RATIOS:
        return f"ratio {v.mean:.3g} (mean over {len(v.cells)} cells)"
    return f"{_fmt(v.mean)} +- {_fmt(v.se)} (n={v.n})"


def _selector_text(c: Claim) -> str:
    sel = ", ".join(f"{k}={v}" for k, v in c.select.items()) or "all cells"
    return f"{c.estimator}; {sel}" + (f"; over {c.over}" if c.over else "")


def provenance_text(provenance: Mapping) -> str:
    if not provenance:
        return ""
    parts = [f"{k} `{provenance[k]}`" for k in ("commit", "config_hash") if provenance.get(k)]
    return "Computed at " + ", ".join(parts) + "." if parts else ""


def render_report(
    header: Mapping,
    claims: Sequence[Claim],
    verdicts: Sequence[Verdict],
    sources: Sequence[str] = (),
    values: Mapping | None = None,
    provenance: Mapping | None = None,
) -> str:
    """The reviewer's markdown report: summary, then one table per figure, notes below."""
    values = values or {}
    by_id = {v.claim: v for v in verdicts}
    lines = [
        "# Claims report",
        "",
        "Generated by `snakemake claims` from `paper/claims.yaml` and the metrics tables"
        + (f" ({', '.join(sources)})" if sources else "")
        + ". Do not edit. "
        + provenance_text(provenance or {}),
        "",
    ]
    rule = str(header.get("tolerance_rule", "")).strip()
    if rule:
        lines += ["## Tolerance rule", "", rule, ""]
    counts = verdict_counts(verdicts)
    lines += ["## Summary", "", "| verdict | claims |", "|---|---|"]
    lines += [f"| {k} | {n} |" for k, n in counts.items()]
    failed = sum(v.failed for v in verdicts)
    lines += ["", f"Failed fits across all claims: {failed}.", ""]
    figures: dict[str, list[Claim]] = {}
    for c in claims:
        figures.setdefault(c.figure, []).append(c)
    for fig, group in figures.items():
        lines += [
            f"## {fig}",
            "",
            "| claim | source | selector | metric | paper | ours (mean +- SE) | failed | verdict |",
            "|---|---|---|---|---|---|---|---|",
        ]
        notes = []
        for c in group:
            v = by_id[c.id]
            text = rendered(c, values)
            mark = ""
            if text["note"]:
                notes.append((c.id, text["note"]))
                mark = f" [{len(notes)}]"
            lines.append(
                f"| `{c.id}`{mark} | {c.source} | {_selector_text(c)} | {c.metric} | "
                f"{_paper_text(c)} | {_ours_text(c, v)} | {v.failed} | **{v.verdict}** |"
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
            lines += [f"{i}. `{cid}`: {note}" for i, (cid, note) in enumerate(notes, 1)]
            lines.append("")
    return "\n".join(lines)


def one_claim_text(c: Claim, v: Verdict, values: Mapping) -> str:
    """What ``--only ID`` prints: the claim, our numbers, the verdict and why."""
    text = rendered(c, values)
    lines = [
        f"{c.id} ({c.figure}, {c.source}): {text['statement'] or _selector_text(c)}",
        f"  experiment {c.experiment}, {_selector_text(c)}, metric {c.metric}",
        f"  paper: {_paper_text(c)}   ours: {_ours_text(c, v)}   failed fits: {v.failed}",
        f"  verdict: {v.verdict} ({v.detail})",
    ]
    if text["cause"]:
        lines.append(f"  cause: {text['cause']}")
    if text["note"]:
        lines.append(f"  note: {text['note']}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def evaluate_files(claims_path, tables: Sequence[str]):
    """(header, claims, verdicts, field values, table) from a claims file and metrics tables."""
    from mncrl.experiments.tables import concat

    header, claims = load_claims(claims_path)
    table = concat(tables)
    verdicts = evaluate_all(claims, table)
    values = field_values(header["fields"], table)
    return header, claims, verdicts, values, table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mncrl.claims", description="Check paper/claims.yaml against metrics tables."
    )
    parser.add_argument("tables", nargs="+", help="metrics tables (results/<exp>/metrics.csv)")
    parser.add_argument("--claims", default="paper/claims.yaml", help="the claims file")
    parser.add_argument("--json", help="output: results/claims.json")
    parser.add_argument("--report", help="output: the markdown report")
    parser.add_argument(
        "--only", metavar="ID", help="print one claim's verdict and explanation, write nothing"
    )
    parser.add_argument(
        "--config-hash", default="", help="hash of the config the tables come from (stamped)"
    )
    parser.add_argument(
        "--commit", default=None, help="commit stamped in the outputs (default: git HEAD)"
    )
    args = parser.parse_args(argv)
    try:
        if args.only is None and not (args.json and args.report):
            raise MncrlError("give --json and --report (or --only ID)")
        header, claims, verdicts, values, _ = evaluate_files(args.claims, args.tables)
        if args.only is not None:
            by_id = {c.id: (c, v) for c, v in zip(claims, verdicts, strict=True)}
            if args.only not in by_id:
                raise MncrlError(f"no claim '{args.only}' in {args.claims}")
            print(one_claim_text(*by_id[args.only], values))
            return 0
        from mncrl.data import atomic_write
        from mncrl.experiments.tables import write_json
        from mncrl.provenance import git_commit

        provenance = {
            "commit": args.commit if args.commit is not None else git_commit(),
            "config_hash": args.config_hash,
        }
        write_json(to_json(header, claims, verdicts, values, provenance), args.json)
        text = render_report(header, claims, verdicts, args.tables, values, provenance)
        atomic_write(args.report, lambda tmp: Path(tmp).write_text(text + "\n"))
    except MncrlError as exc:
        print(f"mncrl.claims: error: {exc}", file=sys.stderr)
        return 2
    counts = verdict_counts(verdicts)
    print(f"{len(claims)} claims: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
