"""The config schema and the library checks: good configs pass, every kind of bad value stops
``snakemake -n`` before any job with one message naming the key and the allowed values."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from mncrl import config as config_mod
from mncrl import estimators, experiments, interventions, mixing, scm, simulation
from mncrl.errors import MncrlError

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
SCHEMA = yaml.safe_load((ROOT / "config/schema.yaml").read_text())


def load(name):
    return yaml.safe_load((ROOT / "config" / name).read_text())


def merged(*names):
    """Snakemake's deep merge of config files (mappings merged, everything else replaced)."""
    out: dict = {}
    for name in names:
        out = config_mod.deep_merge(out, load(name))
    return out


def validated(config):
    return config_mod.validate(config, ROOT / "config/schema.yaml")


def schema_errors(config):
    validator = jsonschema.Draft202012Validator(SCHEMA)
    return list(validator.iter_errors(config))


@pytest.mark.parametrize("names", [("config.yaml",), ("config.yaml", "smoke.yaml")])
def test_shipped_configs_are_valid(names):
    config = merged(*names)
    assert schema_errors(config) == []
    validated(config)
    assert config_mod.load(*(ROOT / "config" / n for n in names)) == config


def test_schema_supplies_the_defaults():
    """Defaults live in the schema only: a minimal config comes back complete."""
    config = validated(
        {
            "scenarios": {"s": {"d": 3, "n": 100}},
            "estimators": {"sub": {"estimator": "subspace"}},
            "experiments": {
                "e": {"scenario": "s", "estimators": ["sub"], "seeds": [0]},
                "c": {"scenario": "s", "estimators": ["sub"], "seeds": [0], "coverage": {"d": [4]}},
            },
        }
    )
    assert config["results_dir"] == "results" and config["max_batch_mb"] == 3000
    assert config["estimators"]["sub"] == {
        "estimator": "subspace",
        "preset": None,
        "overrides": {},
        "role": "ours",
    }
    e = config["experiments"]["e"]
    assert e["set"] == {} and e["grid"] == {} and e["test_fraction"] == 0.25
    assert e["metrics"] == ["mcc", "mcc_paper", "amari", "target_f1"]
    cov = config["experiments"]["c"]["coverage"]
    assert cov["K"] == ["2log2d", "d", "2d"] and cov["designs"] == 20 and cov["k"] == "all"
    assert cov["recovered"] == 0.01 and cov["draws_per_job"] == "auto"
    assert config["figures"] == {} and config["claims"]["file"] == "paper/claims.yaml"


def test_load_errors_are_one_line(tmp_path):
    with pytest.raises(MncrlError, match="config file not found"):
        config_mod.load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(MncrlError, match="not valid YAML") as info:
        config_mod.load(bad, schema=ROOT / "config/schema.yaml")
    assert "\n" not in str(info.value)


def test_schema_enums_match_the_library():
    defs = SCHEMA["$defs"]
    assert set(defs["graph"]["enum"]) == set(simulation.GRAPHS)
    assert set(defs["mechanism"]["enum"]) == set(scm.MECHANISMS)
    assert set(defs["noise"]["enum"]) == set(scm.NOISES)
    assert set(defs["design"]["enum"]) == set(interventions.DESIGNS)
    assert set(defs["intervention"]["enum"]) == set(interventions.INTERVENTION_TYPES)
    assert set(defs["mixing"]["enum"]) == set(mixing.MIXINGS)
    assert set(defs["scm2_variant"]["enum"]) == set(scm.SCM2_VARIANTS)
    assert set(defs["dtype"]["enum"]) == set(simulation.DTYPES)
    assert set(estimators.names()) <= set(defs["estimator"]["properties"]["estimator"]["enum"])
    fields = set(simulation.Scenario.__dataclass_fields__)
    assert set(defs["scenario"]["properties"]) == fields
    assert set(defs["grid"]["properties"]) == fields


def test_smoke_config_shrinks_every_experiment():
    """Every experiment of config.yaml is small in smoke.yaml (a new block must be shrunk)."""
    smoke = validated(merged("config.yaml", "smoke.yaml"))
    assert smoke["results_dir"] != "results" and smoke["figures_dir"] != "figures"
    for name in load("config.yaml")["experiments"]:
        cells = experiments.cells(smoke, name)
        block = smoke["experiments"][name]
        assert len(block["seeds"]) <= 2, name
        assert len(cells) <= 4, name
        for cell in cells:
            assert cell.scenario["d"] <= 6 and cell.scenario["n"] <= 5000, (name, cell.id)


BAD = [
    # (path in the config, bad value, words the message must contain)
    (("experiments", "fig2a", "grid", "dd"), [3], ["unknown key 'dd'", "d, ", "mixing_seed"]),
    (("scenarios", "paper-linear", "d"), 1, ["scenarios.paper-linear.d", ">= 2"]),
    (("scenarios", "paper-linear", "n"), 1, ["scenarios.paper-linear.n", ">= 2"]),
    (("experiments", "fig2a", "grid", "d"), [3, 1], ["experiments.fig2a.grid.d.1", ">= 2"]),
    (("experiments", "fig2b", "grid", "p"), [0.5, 1.5], ["grid.p.1", "<= 1"]),
    (("scenarios", "paper-linear", "p"), -0.1, ["scenarios.paper-linear.p", ">= 0"]),
    (
        ("estimators", "icrl", "estimator"),
        "icrll",
        ["estimators.icrl.estimator", "'icrll'", "sparse-variance", "subspace", "icrl", "ica"],
    ),
    (
        ("scenarios", "paper-linear", "design"),
        "leave-two-out",
        ["scenarios.paper-linear.design", "leave-one-out", "atomic", "random"],
    ),
    (("scenarios", "paper-linear", "d"), "six", ["scenarios.paper-linear.d", "integer"]),
    (("experiments", "fig2a", "seeds"), [0, -1], ["seeds.1", ">= 0"]),
    (("headline_metric",), "accuracy", ["headline_metric", "mcc_paper"]),
]


def _set(config, path, value):
    node = config
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


@pytest.mark.parametrize(("path", "value", "words"), BAD, ids=[".".join(b[0]) for b in BAD])
def test_bad_values_give_one_message_naming_key_and_allowed_values(path, value, words):
    config = load("config.yaml")
    _set(config, path, value)
    validator = jsonschema.Draft202012Validator(SCHEMA)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    assert error is not None
    message = config_mod.format_schema_error(error)
    assert "\n" not in message
    for word in words:
        assert word in message, message


SEMANTIC = [
    (
        ("experiments", "fig2a", "estimators"),
        ["sv-paper", "nope"],
        ["unknown estimator label", "'nope'", "sv-best"],
    ),
    (
        ("estimators", "sv-paper", "preset"),
        "fastest",
        ["estimators.sv-paper", "'fastest'", "paper", "best"],
    ),
    (("experiments", "fig2a", "scenario"), "paper-quadratic", ["unknown scenario", "paper-linear"]),
    (("experiments", "table1", "grid", "mechanism"), ["scm2"], []),  # valid: only SCM 2
    (
        ("experiments", "fig2a", "grid", "mechanism"),
        ["scm2"],
        ["experiments.fig2a", "scm2", "paper-nonlinear"],
    ),
    (("figures", "fig2a", "experiments"), ["fig9"], ["figures.fig2a.experiments", "'fig9'"]),
    (
        ("estimators", "sv-paper", "overrides"),
        {"epochs": 2.5},
        ["estimators.sv-paper", "epochs must be an integer"],
    ),
    (("estimators", "sv-paper", "overrides"), {"epoch": 2}, ["unknown hyper-parameter 'epoch'"]),
]


@pytest.mark.parametrize(
    ("path", "value", "words"), SEMANTIC, ids=[".".join(b[0]) for b in SEMANTIC]
)
def test_library_checks(path, value, words):
    config = load("config.yaml")
    _set(config, path, value)
    assert schema_errors(config) == []
    if not words:
        validated(config)
        return
    with pytest.raises(MncrlError) as info:
        validated(config)
    for word in words:
        assert word in str(info.value), str(info.value)


def _workflow_copy(tmp_path):
    for item in ("Snakefile", "rules", "config", "envs", "profiles", "figures", "paper"):
        src = ROOT / item
        if src.is_dir():
            shutil.copytree(src, tmp_path / item, ignore=shutil.ignore_patterns("*.pdf", "*.png"))
        else:
            shutil.copy(src, tmp_path / item)
    return tmp_path


@pytest.mark.workflow
@pytest.mark.parametrize(
    ("path", "value", "words"),
    [
        (("experiments", "fig2a", "grid", "dd"), [3], ["unknown key 'dd'", "mixing_seed"]),
        (("scenarios", "paper-linear", "d"), 1, ["scenarios.paper-linear.d", ">= 2"]),
        (("estimators", "ica", "estimator"), "pca", ["'pca'", "sparse-variance, subspace"]),
        (("experiments", "fig2a", "estimators"), ["sv-paper", "nope"], ["'nope'", "sv-best"]),
    ],
    ids=["unknown-key", "d-too-small", "unknown-estimator", "unknown-label"],
)
def test_snakemake_stops_before_any_job(tmp_path, path, value, words):
    wf = _workflow_copy(tmp_path)
    config = load("config.yaml")
    _set(config, path, value)
    (wf / "config/config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    proc = subprocess.run(
        [str(SNAKEMAKE), "-n", "--cores", "1"], cwd=wf, capture_output=True, text=True, timeout=120
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    for word in words:
        assert word in out, out
    assert "rule estimate" not in out and "Job stats" not in out
    assert not (wf / "results").exists()
