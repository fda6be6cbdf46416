"""`mncrl simulate`: write one simulated multi-environment data set to .npz or .csv.

The scenario comes from ``--config`` (a YAML mapping of Scenario keys) with command-line flags
overriding it; every flag maps to the Scenario key of the same name (dashes -> underscores).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mncrl.errors import MncrlError

_SUFFIXES = (".npz", ".csv")


def add_parser(subparsers) -> None:
    from mncrl import interventions, mixing, scm, sensors, simulation

    p = subparsers.add_parser(
        "simulate",
        help="simulate multi-environment data (X, env, Z, L, targets)",
        description="Simulate latents from an SCM under per-environment interventions, mix them "
        "linearly and write the data set atomically. Flags override --config.",
        epilog="Examples: mncrl simulate --out data.npz --d 10 --seed 3 ; "
        "mncrl simulate --out d.npz --design random --design-param K=7 --design-param k=2",
    )
    S = argparse.SUPPRESS  # unset flags do not override the config file
    p.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="output file, .npz (X, env, Z, L, targets) or .csv (X columns x0.. + env)",
    )
    p.add_argument(
        "--config",
        metavar="YAML",
        help="YAML file with a mapping of scenario keys (see docs/simulator.md)",
    )
    p.add_argument(
        "--seed", type=int, default=0, help="data seed (graph, weights, noise, random designs) [0]"
    )
    g = p.add_argument_group("latent SCM")
    g.add_argument("--d", type=int, default=S, help="latent dimension [6]")
    g.add_argument("--n", type=int, default=S, help="samples per environment [100000]")
    g.add_argument(
        "--graph",
        choices=simulation.GRAPHS,
        default=S,
        help="DAG: Erdos-Renyi in order 0<1<..<d-1, the paper's fixed 6-node "
        "nonlinear graph, or --edges [erdos-renyi]",
    )
    g.add_argument("--p", type=float, default=S, help="Erdos-Renyi edge probability [0.75]")
    g.add_argument(
        "--edges",
        default=S,
        metavar="I-J,...",
        help="edges for --graph custom, 0-based parent-child pairs, e.g. 0-1,0-2,1-2",
    )
    g.add_argument(
        "--weight-range",
        type=float,
        nargs=2,
        default=S,
        metavar=("LOW", "HIGH"),
        help="linear edge weights ~ U(LOW, HIGH) [0.1 1.0]",
    )
    g.add_argument(
        "--mechanism",
        choices=scm.MECHANISMS,
        default=S,
        help="linear additive, or the paper's nonlinear SCM 1 / SCM 2 [linear]",
    )
    g.add_argument(
        "--scm2-variant",
        choices=scm.SCM2_VARIANTS,
        default=S,
        help="SCM 2's Z4: 'paper' (+Z3^2) or 'reference' code (+Z3) [paper]",
    )
    g.add_argument(
        "--noise",
        choices=scm.NOISES,
        default=S,
        help="latent noise distribution, scaled to --noise-std [gaussian]",
    )
    g.add_argument("--noise-std", type=float, default=S, help="latent noise std [0.1]")
    g.add_argument(
        "--paired-noise",
        action=argparse.BooleanOptionalAction,
        default=S,
        help="reuse the same latent noise draws in every environment (reference quirk) [off]",
    )
    g = p.add_argument_group("interventions")
    g.add_argument(
        "--design",
        choices=tuple(interventions.DESIGNS),
        default=S,
        help="target design (which nodes each environment intervenes on) [leave-one-out]",
    )
    g.add_argument(
        "--design-param",
        action="append",
        default=S,
        metavar="KEY=VALUE",
        help="design parameter, repeatable; VALUE is YAML, e.g. K=7, k=2, size=3, "
        "'targets=[[0,1],[2]]'",
    )
    g.add_argument(
        "--design-seed", type=int, default=S, help="seed of a random design [derived from --seed]"
    )
    g.add_argument(
        "--intervention",
        choices=interventions.INTERVENTION_TYPES,
        default=S,
        help="do: constant; stochastic: parents cut, shift + scale*noise; soft: "
        "parents kept with weights*weight-scale, + shift + scale*noise [do]",
    )
    g.add_argument("--do-value", type=float, default=S, help="value of do-interventions [1.0]")
    g.add_argument(
        "--shift", type=float, default=S, help="mean shift of stochastic/soft interventions [1.0]"
    )
    g.add_argument(
        "--scale",
        type=float,
        default=S,
        help="noise-std factor of stochastic/soft interventions [2.0]",
    )
    g.add_argument(
        "--weight-scale",
        type=float,
        default=S,
        help="factor on incoming edge weights of soft interventions [0.5]",
    )
    g.add_argument(
        "--observational",
        action=argparse.BooleanOptionalAction,
        default=S,
        help="append an observational environment (last, all-False target row) [off]",
    )
    g = p.add_argument_group("mixing")
    g.add_argument("--m", type=int, default=S, help="observed dimension, >= d [d]")
    g.add_argument(
        "--mixing", choices=mixing.MIXINGS, default=S, help="mixing matrix L (d x m) [paper]"
    )
    g.add_argument("--mixing-seed", type=int, default=S, help="seed of L [0]")
    g.add_argument(
        "--condition", type=float, default=S, help="condition number of --mixing gaussian [10.0]"
    )
    g.add_argument(
        "--obs-noise", type=float, default=S, help="std of additive Gaussian noise on X [0.0]"
    )
    g.add_argument(
        "--obs-noise-relative",
        type=float,
        default=S,
        metavar="R",
        help="per-column Gaussian noise on X with std R x that column's std in the pooled "
        "noiseless X (e.g. 0.01) [0.0]",
    )
    g = p.add_argument_group("observation model")
    g.add_argument(
        "--observation",
        choices=simulation.OBSERVATIONS,
        default=S,
        help="linear: X = Z L; light-tunnel: X = raw readings of the causalchamber light-tunnel "
        "sensor model driven by the latents (d = 5; --mixing is unused) [linear]",
    )
    g.add_argument(
        "--sensors",
        default=S,
        metavar="NAME,...",
        help=f"light-tunnel sensors, comma-separated, from {','.join(sensors.SENSORS)} "
        f"[{','.join(sensors.LINEAR_SENSORS)}]",
    )
    g.add_argument(
        "--dtype",
        choices=simulation.DTYPES,
        default=S,
        help="dtype of X and Z in the output [float32]",
    )
    p.set_defaults(func=run)


def _parse_yaml(text: str, what: str):
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MncrlError(f"cannot parse {what} as YAML: {str(exc).splitlines()[0]}") from None


def _read_config(path: str) -> dict:
    p = Path(path)
    if not p.is_file():
        raise MncrlError(f"config file not found: {p}")
    values = _parse_yaml(p.read_text(), f"config file {p}")
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise MncrlError(
            f"config file {p} must contain a mapping of scenario keys, got {type(values).__name__}"
        )
    return values


def _parse_edges(text: str) -> list[list[int]]:
    edges = []
    for part in filter(None, (t.strip() for t in text.split(","))):
        try:
            i, j = (int(v) for v in part.split("-"))
        except ValueError:
            raise MncrlError(
                f"--edges: cannot read {part!r}; use PARENT-CHILD pairs like 0-1,1-2"
            ) from None
        edges.append([i, j])
    return edges


def _parse_design_params(items: list[str]) -> dict:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise MncrlError(f"--design-param expects KEY=VALUE, got {item!r}")
        params[key.strip()] = _parse_yaml(value, f"--design-param {key.strip()}")
    return params


def scenario_from_args(args: argparse.Namespace):
    """The Scenario given by ``--config`` and the flags (flags win)."""
    from mncrl.simulation import Scenario

    values = _read_config(args.config) if args.config else {}
    skip = {"out", "config", "seed", "func", "command"}
    for key, value in vars(args).items():
        if key in skip:
            continue
        if key == "edges":
            value = _parse_edges(value)
            values.setdefault("graph", "custom")
        elif key == "sensors":
            value = [t.strip() for t in value.split(",") if t.strip()]
        elif key == "design_param":
            base = values.get("design_params") or {}
            if not isinstance(base, dict):
                raise MncrlError(f"design_params must be a mapping, got {base!r}")
            key, value = "design_params", {**base, **_parse_design_params(value)}
        values[key] = value
    return Scenario.from_dict(values)


def run(args: argparse.Namespace) -> int:
    from mncrl.data import save
    from mncrl.simulation import simulate

    out = Path(args.out)
    if out.suffix.lower() not in _SUFFIXES:
        raise MncrlError(f"--out must end in .npz or .csv, got {out.name!r}")
    if out.is_dir():
        raise MncrlError(f"--out {out} is a directory")
    if args.seed < 0:
        raise MncrlError(f"--seed must be a non-negative integer, got {args.seed}")
    scenario = scenario_from_args(args)
    ds = simulate(scenario, args.seed)
    save(ds, out)
    K = ds.targets.shape[0]
    extra = ""
    if "observation" in ds.meta:
        clipped = sum(ds.meta["observation"]["clipped"].values())
        extra = f", light-tunnel sensors, {clipped} clipped actuator values"
    print(
        f"wrote {out}: {K} environments x {scenario.n} samples, d={scenario.d}, "
        f"m={scenario.m_obs}, seed={args.seed}{extra}"
    )
    return 0
