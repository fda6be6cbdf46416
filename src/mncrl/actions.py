"""The action model of intervention extrapolation (Saengkyongam, Rosenfeld, Ravikumar, Pfister,
Peters, ICLR 2024, "Rep4Ex"), row-vector convention as :mod:`mncrl.simulation`::

    A ~ uniform on [-1, 1]^k, or on a grid of ``levels`` values per action   (exogenous actions)
    Z = A M0 + V,   V ~ N(0, Sigma_V)                                       (d latents)
    X = Z L + E                                                             (m >= d observed)
    Y = l(Z) + U,   U = gamma sd_U (V c) / sd(V c) + sqrt(1 - gamma^2) sd_U eps

M0 (k x d, rank d) is a *multi-node shift intervention* with unknown targets: each action moves
``targets_per_action`` latents at once. V has full support (Gaussian, correlated through a
random lower-triangular factor), and the outcome noise U shares the direction c of V with
correlation ``confounding`` (gamma): hidden confounding between the latents and the outcome,
so E[Y | Z] is not l(Z). The outcome functions l (:data:`OUTCOMES`, coefficients w with
random signs, from the seed):

- ``tanh``: sum_j w_j tanh(z_j) (additive, saturating);
- ``quadratic``: sum_j w_j z_j^2 / 2 (additive, unbounded);
- ``interaction``: tanh(z_1) z_2 + sum_{j > 2} w_j tanh(z_j) (not additive).

The target of intervention extrapolation is E[Y | do(A = a)] = E_V[l(a M0 + V)] (E[U] = 0),
computed by Monte Carlo over ``truth_draws`` draws of V (one set of draws for every a, from a
stream of its own) along the line a(s) = s u (``u``: a random direction scaled to max-norm 1,
so the training support is |s| <= 1) for s in ``grid_points`` values from -``reach`` to
``reach``: distance outside the support ``|s| - 1``.

Randomness: every draw comes from its own named stream under the seed
(:func:`mncrl.simulation.rng_for`): effects (M0, Sigma_V, c, w, u), mixing, actions, latent
residuals V, outcome noise, observation noise, and the Monte-Carlo truth; the same (scenario,
seed) gives bit-identical arrays.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from mncrl.errors import MncrlError
from mncrl.mixing import MIXINGS, make_mixing
from mncrl.simulation import rng_for
from mncrl.values import is_int as _int
from mncrl.values import is_real as _real

OUTCOMES = ("tanh", "quadratic", "interaction")
ACTIONS = ("uniform", "levels")


@dataclass(frozen=True)
class ActionScenario:
    """Everything that defines a simulated action data set except the seed (module
    docstring). ``k = None``: as many actions as latents; ``m = None``: square mixing."""

    d: int = 3
    k: int | None = None
    m: int | None = None
    n: int = 5000
    actions: str = "uniform"
    levels: int = 5
    targets_per_action: int = 2
    effect: float = 1.0
    v_std: float = 1.0
    v_coupling: float = 0.5
    confounding: float = 0.5
    u_std: float = 0.5
    outcome: str = "tanh"
    mixing: str = "gaussian"
    condition: float = 5.0
    obs_noise: float = 0.0
    reach: float = 3.0
    grid_points: int = 25
    truth_draws: int = 100_000

    @property
    def n_actions(self) -> int:
        return self.d if self.k is None else self.k

    @property
    def m_obs(self) -> int:
        return self.d if self.m is None else self.m

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data) -> ActionScenario:
        """A checked scenario from plain data; MncrlError naming the first bad key."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise MncrlError(
                f"unknown action-scenario key '{unknown[0]}'; keys: {', '.join(sorted(known))}"
            )
        s = cls(**dict(data))
        check(s)
        return s


def _fail(key: str, rule: str, value) -> None:
    raise MncrlError(f"action scenario: {key} must be {rule}, got {value!r}")


def check(s: ActionScenario) -> None:
    """MncrlError with one line for the first invalid field of ``s``."""
    for key, low in (("d", 1), ("n", 10), ("levels", 2), ("grid_points", 3), ("truth_draws", 100)):
        if not (_int(getattr(s, key)) and getattr(s, key) >= low):
            _fail(key, f"an integer >= {low}", getattr(s, key))
    if s.k is not None and not (_int(s.k) and s.k >= s.d):
        _fail("k", f"null or an integer >= d = {s.d} (M0 needs rank d)", s.k)
    if s.m is not None and not (_int(s.m) and s.m >= s.d):
        _fail("m", f"null or an integer >= d = {s.d}", s.m)
    if not (_int(s.targets_per_action) and 1 <= s.targets_per_action <= s.d):
        _fail("targets_per_action", f"an integer in [1, d = {s.d}]", s.targets_per_action)
    for key in ("effect", "v_std", "u_std", "reach"):
        if not (_real(getattr(s, key)) and getattr(s, key) > 0):
            _fail(key, "a number > 0", getattr(s, key))
    if not (_real(s.reach) and s.reach > 1):
        _fail("reach", "a number > 1 (the training support is |s| <= 1)", s.reach)
    if not (_real(s.v_coupling) and 0 <= s.v_coupling < 1):
        _fail("v_coupling", "a number in [0, 1)", s.v_coupling)
    if not (_real(s.confounding) and 0 <= s.confounding < 1):
        _fail("confounding", "a number in [0, 1)", s.confounding)
    if not (_real(s.obs_noise) and s.obs_noise >= 0):
        _fail("obs_noise", "a number >= 0", s.obs_noise)
    if not (_real(s.condition) and s.condition >= 1):
        _fail("condition", "a number >= 1", s.condition)
    if s.actions not in ACTIONS:
        _fail("actions", f"one of {', '.join(ACTIONS)}", s.actions)
    if s.outcome not in OUTCOMES:
        _fail("outcome", f"one of {', '.join(OUTCOMES)}", s.outcome)
    if s.outcome == "interaction" and s.d < 2:
        _fail("outcome", "tanh or quadratic when d = 1 (interaction needs 2 latents)", s.outcome)
    if s.mixing not in MIXINGS or s.mixing == "reference":
        _fail("mixing", "one of paper, gaussian, orthogonal", s.mixing)


# ------------------------------------------------------------------------------ the parameters


@dataclass(frozen=True)
class Effects:
    """The parameters a seed draws: M0 (k x d), the factor of Sigma_V (d x d, Sigma_V = C^T C
    in rows), the confounding direction c (d), the outcome coefficients w (d), the direction u
    of the extrapolation line (k, max-norm 1) and the mixing L (d x m)."""

    M0: np.ndarray
    C: np.ndarray
    c: np.ndarray
    w: np.ndarray
    u: np.ndarray
    L: np.ndarray

    @property
    def sigma_v(self) -> np.ndarray:
        return self.C.T @ self.C


def action_effects(s: ActionScenario, rng: np.random.Generator) -> np.ndarray:
    """M0 (k x d): each action moves ``targets_per_action`` latents (a random set) by
    ``effect`` x N(0, 1) (sign and size), redrawn until rank d with condition number <= 20."""
    k, d = s.n_actions, s.d
    for _ in range(1000):
        mask = np.zeros((k, d))
        for a in range(k):
            mask[a, rng.choice(d, size=s.targets_per_action, replace=False)] = 1.0
        M0 = s.effect * mask * rng.standard_normal((k, d))
        sv = np.linalg.svd(M0, compute_uv=False)
        if sv[-1] > 0 and sv[0] / sv[-1] <= 20:
            return M0
    raise MncrlError(
        f"action scenario: no well-conditioned rank-{d} M0 with {s.targets_per_action} targets "
        f"per action in 1000 draws (k = {k})"
    )


def effects(s: ActionScenario, seed: int) -> Effects:
    """The seed's parameters (:class:`Effects`), each from its own stream."""
    rng = rng_for(seed, "action_effects")
    M0 = action_effects(s, rng)
    d = s.d
    C = np.eye(d) + s.v_coupling * np.triu(rng.uniform(-1, 1, (d, d)), 1)
    C *= s.v_std / np.sqrt((C**2).sum(axis=0))  # unit-variance columns times v_std
    c = rng.standard_normal(d)
    w = rng.choice([-1.0, 1.0], size=d)
    u = rng.uniform(0.5, 1.0, s.n_actions) * rng.choice([-1.0, 1.0], size=s.n_actions)
    u /= np.abs(u).max()
    L = make_mixing(s.mixing, d, s.m_obs, rng_for(seed, "mixing"), condition=s.condition)
    return Effects(M0=M0, C=C, c=c / np.linalg.norm(c), w=w, u=u, L=L)


def outcome(kind: str, Z, w):
    """l(Z) of :data:`OUTCOMES` (rows of Z; numpy or jax arrays)."""
    xp = np if isinstance(Z, np.ndarray) else __import__("jax").numpy
    if kind == "tanh":
        return xp.tanh(Z) @ w
    if kind == "quadratic":
        return 0.5 * (Z**2) @ w
    if kind == "interaction":
        rest = xp.tanh(Z[:, 2:]) @ w[2:] if Z.shape[1] > 2 else 0.0
        return xp.tanh(Z[:, 0]) * Z[:, 1] + rest
    raise MncrlError(f"unknown outcome '{kind}'; allowed: {', '.join(OUTCOMES)}")


# ------------------------------------------------------------------------------ the data set


@dataclass(frozen=True)
class ActionData:
    """One simulated data set: actions A (n x k), observations X (n x m), outcome Y (n),
    ground truth Z, V, U, the parameters, the extrapolation line (``s``: positions, ``a``: the
    actions s u, len(s) x k) and the truth E[Y | do(A = a)] at each of them."""

    A: np.ndarray
    X: np.ndarray
    Y: np.ndarray
    Z: np.ndarray
    V: np.ndarray
    U: np.ndarray
    effects: Effects
    s: np.ndarray
    a: np.ndarray
    truth: np.ndarray

    @property
    def env(self) -> np.ndarray:
        """Environment index of each row: the distinct action vectors (discrete levels)."""
        return np.unique(self.A, axis=0, return_inverse=True)[1].ravel()


def draw_actions(s: ActionScenario, rng: np.random.Generator) -> np.ndarray:
    """A (n x k): uniform on [-1, 1]^k, or uniform over ``levels`` equally spaced values in
    [-1, 1] per action (environments)."""
    shape = (s.n, s.n_actions)
    if s.actions == "uniform":
        return rng.uniform(-1.0, 1.0, shape)
    return np.linspace(-1.0, 1.0, s.levels)[rng.integers(0, s.levels, shape)]


def extrapolation_line(s: ActionScenario, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(s, a): positions -reach..reach and the actions s u on them."""
    pos = np.linspace(-s.reach, s.reach, s.grid_points)
    return pos, pos[:, None] * u[None, :]


def interventional_mean(s: ActionScenario, eff: Effects, a: np.ndarray, seed: int) -> np.ndarray:
    """E[Y | do(A = a)] for each row of ``a``: Monte Carlo over ``truth_draws`` draws of V
    (one set for all rows, stream ``truth``), in chunks of rows."""
    V = rng_for(seed, "truth").standard_normal((s.truth_draws, s.d)) @ eff.C
    shifts = a @ eff.M0
    return np.array([outcome(s.outcome, V + shift, eff.w).mean() for shift in shifts])


def simulate_actions(s: ActionScenario, seed: int) -> ActionData:
    """The data set of ``seed`` (module docstring); float64."""
    check(s)
    eff = effects(s, seed)
    A = draw_actions(s, rng_for(seed, "actions"))
    V = rng_for(seed, "latent_residual").standard_normal((s.n, s.d)) @ eff.C
    Z = A @ eff.M0 + V
    vc = V @ eff.c
    eps = rng_for(seed, "outcome_noise").standard_normal(s.n)
    sd_vc = float(np.sqrt(eff.c @ eff.sigma_v @ eff.c))
    U = s.u_std * (s.confounding * vc / sd_vc + np.sqrt(1 - s.confounding**2) * eps)
    Y = outcome(s.outcome, Z, eff.w) + U
    X = Z @ eff.L
    if s.obs_noise > 0:
        sd = s.obs_noise * X.std(axis=0)
        X = X + sd * rng_for(seed, "obs_noise").standard_normal(X.shape)
    pos, a = extrapolation_line(s, eff.u)
    truth = interventional_mean(s, eff, a, seed)
    return ActionData(A=A, X=X, Y=Y, Z=Z, V=V, U=U, effects=eff, s=pos, a=a, truth=truth)


__all__ = [
    "ACTIONS",
    "OUTCOMES",
    "ActionData",
    "ActionScenario",
    "Effects",
    "action_effects",
    "check",
    "draw_actions",
    "effects",
    "extrapolation_line",
    "interventional_mean",
    "outcome",
    "simulate_actions",
]
