"""Claims: parsing, every verdict of every kind on synthetic tables, the report and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mncrl import claims as cl
from mncrl.errors import MncrlError

ROOT = Path(__file__).resolve().parents[1]


def table(cells, experiment="exp", estimator="est", metric="mcc_paper", key="d"):
    """Tidy rows from {key value: [per-seed values]}."""
    rows = []
    for value, seeds in cells.items():
        for seed, v in enumerate(seeds):
            rows.append(
                {
                    "experiment": experiment,
                    "cell": f"{key}-{value}",
                    key: value,
                    "seed": seed,
                    "estimator": estimator,
                    "metric": metric,
                    "value": v,
                }
            )
    return pd.DataFrame(rows)


def claim(**kw):
    base = {
        "id": "c",
        "figure": "f",
        "experiment": "exp",
        "estimator": "est",
        "metric": "mcc_paper",
        "tolerance": 0.03,
    }
    _, out = cl.parse_claims({"improvable": ["est"], "claims": [{**base, **kw}]})
    return out[0]


def test_paper_claims_file_parses_and_covers_section_7():
    header, claims = cl.load_claims(ROOT / "paper/claims.yaml")
    assert "tolerance_rule" in header
    by_fig = {}
    for c in claims:
        by_fig.setdefault((c.figure, c.source), []).append(c)
    # Fig 2a: 3 estimators x 4 d; Fig 2b: 3 x 6 p; Fig 2c: 5 points + trend; Table 1: 2;
    # Fig 4: 3 estimators x 4 d ranges.
    assert len(by_fig["fig2a", "paper"]) == 12
    assert len(by_fig["fig2b", "paper"]) == 18
    assert len(by_fig["fig2c", "paper"]) == 6
    assert len(by_fig["table1", "paper"]) == 2
    assert len(by_fig["fig4", "paper"]) == 12
    assert any(c.kind == "trend" for c in by_fig["fig2c", "paper"])
    assert all(c.kind == "range" for c in by_fig["fig4", "paper"])
    assert all(c.source == "ours" for c in claims if c.kind in ("at_least", "at_most"))
    fig2a_icrl = {
        c.select["d"]: c.paper for c in claims if c.figure == "fig2a" and c.estimator == "icrl"
    }
    assert fig2a_icrl == {3: 0.83, 6: 0.59, 10: 0.48, 30: 0.27}
    # every paper claim has the stated tolerance rule: 0.01 + 0.02, Table 1: 0.01 + its +-
    for c in claims:
        if c.source == "paper" and c.figure != "table1":
            assert c.tolerance == pytest.approx(0.03)
    assert {c.tolerance for c in by_fig["table1", "paper"]} == {0.04, 0.06}
    # the baselines may not be "better" than the paper
    assert not any(c.improvable for c in claims if c.estimator in ("icrl", "ica"))


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ({"claims": [{"id": "a"}]}, ["missing 'figure'"]),
        (
            {
                "claims": [
                    {
                        "id": "a",
                        "figure": "f",
                        "experiment": "e",
                        "estimator": "x",
                        "metric": "m",
                        "paper": 1,
                        "kind": "median",
                    }
                ]
            },
            ["kind 'median'", "value"],
        ),
        (
            {
                "claims": [
                    {
                        "id": "a",
                        "figure": "f",
                        "experiment": "e",
                        "estimator": "x",
                        "metric": "m",
                        "paper": 1,
                        "colour": "red",
                    }
                ]
            },
            ["unknown key 'colour'"],
        ),
        (
            {
                "claims": [
                    {
                        "id": "a",
                        "figure": "f",
                        "experiment": "e",
                        "estimator": "x",
                        "metric": "m",
                        "kind": "range",
                        "paper": [0.9, 0.8],
                    }
                ]
            },
            ["[low, high]"],
        ),
        (
            {
                "claims": [
                    {
                        "id": "a",
                        "figure": "f",
                        "experiment": "e",
                        "estimator": "x",
                        "metric": "m",
                        "paper": 1,
                    },
                    {
                        "id": "a",
                        "figure": "f",
                        "experiment": "e",
                        "estimator": "x",
                        "metric": "m",
                        "paper": 1,
                    },
                ]
            },
            ["duplicate id 'a'"],
        ),
        ({"nothing": []}, ["'claims' list"]),
    ],
)
def test_bad_claims_are_rejected(raw, words):
    with pytest.raises(MncrlError) as info:
        cl.parse_claims(raw)
    for w in words:
        assert w in str(info.value)


def test_value_verdicts_use_tolerance_plus_two_se():
    t = table({3: [0.95, 0.97, 0.99], 6: [0.50, 0.50, 0.50], 10: [0.99, 1.0, 1.0]})
    se = np.std([0.95, 0.97, 0.99], ddof=1) / np.sqrt(3)
    v = cl.evaluate_claim(claim(select={"d": 3}, paper=0.97 + 0.03 + 2 * se - 1e-6), t)
    assert v.verdict == "reproduced" and v.n == 3
    assert v.mean == pytest.approx(0.97) and v.se == pytest.approx(se)
    v = cl.evaluate_claim(claim(select={"d": 3}, paper=0.97 + 0.03 + 2 * se + 1e-3), t)
    assert v.verdict == "not reproduced"  # ours below the paper
    v = cl.evaluate_claim(claim(select={"d": 10}, paper=0.90), t)
    assert v.verdict == "better"  # above, and the estimator is improvable
    c = cl.Claim(**{**claim(select={"d": 10}, paper=0.90).__dict__, "improvable": False})
    assert cl.evaluate_claim(c, t).verdict == "not reproduced"  # a baseline above the paper
    assert cl.evaluate_claim(claim(select={"d": 30}, paper=0.9), t).verdict == "no data"
    assert cl.evaluate_claim(claim(select={"p": 0.2}, paper=0.9), t).verdict == "no data"
    assert cl.evaluate_claim(claim(select={}, paper=0.9), t).verdict == "no data"  # 3 cells


def test_lower_is_better_metrics_flip_the_direction():
    t = table({3: [0.001, 0.001]}, metric="amari")
    assert (
        cl.evaluate_claim(claim(metric="amari", select={"d": 3}, paper=0.2), t).verdict == "better"
    )


def test_failed_fits_count_as_not_reproduced():
    t = table({3: [np.nan, np.nan]})
    assert cl.evaluate_claim(claim(select={"d": 3}, paper=0.9), t).verdict == "not reproduced"
    v = cl.evaluate_claim(claim(select={"d": 3}, paper=0.9), table({3: [0.9, np.nan, 0.9]}))
    assert v.verdict == "reproduced" and v.n == 2 and "1 failed" in v.detail


def test_range_claims_check_every_cell():
    cells = {1: [0.85, 0.85], 2: [0.86, 0.86], 3: [0.87, 0.87]}
    t = table(cells, key="mixing_seed")
    assert cl.evaluate_claim(claim(kind="range", paper=[0.84, 0.87]), t).verdict == "reproduced"
    t2 = table({**cells, 4: [0.70, 0.70]}, key="mixing_seed")
    v = cl.evaluate_claim(claim(kind="range", paper=[0.84, 0.87]), t2)
    assert v.verdict == "not reproduced" and "1 outside" in v.detail
    t3 = table({**cells, 4: [1.0, 1.0]}, key="mixing_seed")
    assert (
        cl.evaluate_claim(claim(kind="range", paper=[0.80, 0.87], tolerance=0.01), t3).verdict
        == "better"
    )


def test_trend_claims():
    rising = table(
        {5000: [0.6, 0.6], 10000: [0.65, 0.65], 50000: [0.9, 0.9], 100000: [0.99, 0.99]}, key="n"
    )
    c = claim(kind="trend", over="n", paper=[0.58, 0.62, 0.85, 0.97])
    v = cl.evaluate_claim(c, rising)
    assert v.verdict == "reproduced" and v.mean == pytest.approx(0.39)
    flat = table({5000: [0.99, 0.99], 100000: [0.99, 1.0]}, key="n")
    assert cl.evaluate_claim(c, flat).verdict == "not reproduced"
    dip = table(
        {5000: [0.5, 0.5], 10000: [0.9, 0.9], 50000: [0.6, 0.6], 100000: [0.99, 0.99]}, key="n"
    )
    v = cl.evaluate_claim(c, dip)
    assert v.verdict == "not reproduced" and "falls" in v.detail
    # the order is the numeric order of `over`, not the table's row order
    shuffled = rising.sample(frac=1.0, random_state=0)
    assert cl.evaluate_claim(c, shuffled).verdict == "reproduced"


def test_bound_claims_look_at_every_seed():
    t = table({3: [1.0, 0.9995], 6: [0.9999, 1.0]})
    assert (
        cl.evaluate_claim(claim(kind="at_least", threshold=0.999, source="ours"), t).verdict
        == "holds"
    )
    t2 = table({3: [1.0, 0.998], 6: [1.0, 1.0]})
    v = cl.evaluate_claim(claim(kind="at_least", threshold=0.999, source="ours"), t2)
    assert v.verdict == "fails" and "0.998" in v.detail
    ta = table({3: [1e-5, 2e-4]}, metric="amari")
    assert (
        cl.evaluate_claim(
            claim(kind="at_most", metric="amari", threshold=1e-3, source="ours"), ta
        ).verdict
        == "holds"
    )
    t3 = table({3: [1.0, np.nan]})
    assert (
        cl.evaluate_claim(claim(kind="at_least", threshold=0.5, source="ours"), t3).verdict
        == "fails"
    )


def test_report_and_json(tmp_path):
    t = table({3: [0.95, 0.97], 6: [0.5, 0.5]})
    t.to_csv(tmp_path / "metrics.csv", index=False)
    claims_yaml = tmp_path / "claims.yaml"
    claims_yaml.write_text(
        "tolerance_rule: the rule\nimprovable: [est]\n"
        "defaults: {experiment: exp, estimator: est, metric: mcc_paper, tolerance: 0.03}\n"
        "claims:\n"
        "  - {id: a, figure: f1, select: {d: 3}, paper: 0.96, note: explained here}\n"
        "  - {id: b, figure: f1, select: {d: 6}, paper: 0.9}\n"
        "  - {id: c, figure: f2, select: {d: 10}, paper: 0.9}\n"
        "  - {id: d, figure: f2, kind: at_least, threshold: 0.4, source: ours}\n"
    )
    out_json, out_md = tmp_path / "claims.json", tmp_path / "report.md"
    assert (
        cl.main(
            [
                str(tmp_path / "metrics.csv"),
                "--claims",
                str(claims_yaml),
                "--json",
                str(out_json),
                "--report",
                str(out_md),
            ]
        )
        == 0
    )
    data = json.loads(out_json.read_text())
    verdicts = {c["id"]: c["verdict"] for c in data["claims"]}
    assert verdicts == {"a": "reproduced", "b": "not reproduced", "c": "no data", "d": "holds"}
    assert data["summary"] == {"reproduced": 1, "not reproduced": 1, "holds": 1, "no data": 1}
    assert data["claims"][0]["ours"]["mean"] == pytest.approx(0.96)
    text = out_md.read_text()
    assert "## f1" in text and "## f2" in text and "the rule" in text
    assert "explained here" in text and "**not reproduced**" in text
    assert "0.960 +- 0.010 (n=2)" in text


def test_cli_bad_claims_file_is_one_line(tmp_path, capsys):
    bad = tmp_path / "claims.yaml"
    bad.write_text("claims: [ {id: x")
    (tmp_path / "m.csv").write_text("experiment,cell,estimator,metric,value\n")
    code = cl.main(
        [
            str(tmp_path / "m.csv"),
            "--claims",
            str(bad),
            "--json",
            str(tmp_path / "o.json"),
            "--report",
            str(tmp_path / "o.md"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "not valid YAML" in err
    assert not (tmp_path / "o.json").exists()
