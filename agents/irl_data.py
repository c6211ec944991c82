"""Expert demonstrations for inverse RL: recorded orchestrator transitions as one versioned, checked file.

A dataset holds, per transition of the orchestrator: its observation `obs` [N, D], its action
`action` [N, K] (MultiDiscrete indices), the next observation `next_obs` [N, D] (the last
observation of the episode at truncation), the env's `reward_terms` [N, 5] (quality, latency,
leak, budget, drop, as in `infos[agent]["reward_terms"]`), the KPIs `kpi` [N, len(kpi_names)],
and `episode` / `step` indices [N]. The reward terms and KPIs are there to *evaluate* a learned
reward (EPIC, plots); the IRL trainer reads only observations and actions (`expert_transitions`).

The file is an `qin_env.agents.checkpoint` file (atomic, SHA-256 checked) of kind `qin-irl-demos`; its
metadata carry `dataset_version`, scenario, overrides, `config_hash`, seed and the expert's name.
`load_demonstrations` refuses another kind or version, a missing or misshapen field, actions
outside the space, observations outside [0, 1], and a scenario or configuration other than the run's.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from qin_env import core
from qin_env.agents.checkpoint import load_checkpoint, save_checkpoint
from qin_env.params import Params, config_hash, load_config, load_params
from qin_env.policies import random_policy
from qin_env.rollout import Policy, Transition, rollouts, seed_keys

DATASET_KIND = "qin-irl-demos"
DATASET_VERSION = 1
REWARD_TERMS = core.REWARD_TERMS  # the env's reward terms, in the order of infos["reward_terms"]
AGENT = "orchestrator"
ARRAY_FIELDS = ("obs", "action", "next_obs", "reward_terms", "kpi", "episode", "step")
KPI_NAMES = tuple(sorted(core.KPI_UNITS))


@dataclasses.dataclass(frozen=True)
class Demonstrations:
    """Orchestrator transitions of an expert on one scenario configuration (arrays over transitions N)."""

    obs: np.ndarray  # [N, D] float32
    action: np.ndarray  # [N, K] int32
    next_obs: np.ndarray  # [N, D] float32
    reward_terms: np.ndarray  # [N, 5] float32, REWARD_TERMS order
    kpi: np.ndarray  # [N, len(kpi_names)] float32
    episode: np.ndarray  # [N] int32
    step: np.ndarray  # [N] int32
    scenario: str
    overrides: dict[str, Any]
    config_hash: str
    seed: int
    expert: str
    kpi_names: tuple[str, ...]

    @property
    def n_transitions(self) -> int:
        """N, the number of recorded transitions."""
        return int(self.obs.shape[0])

    @property
    def n_episodes(self) -> int:
        """Distinct episodes recorded."""
        return int(np.unique(self.episode).size)

    def episode_returns(self) -> np.ndarray:
        """True team return of each recorded episode (the sum of its reward terms)."""
        per_step = self.reward_terms.sum(axis=1)
        return np.array([per_step[self.episode == e].sum() for e in np.unique(self.episode)])

    def select(self, episodes: np.ndarray) -> Demonstrations:
        """The transitions of the given episode indices (e.g. a train / held-out split)."""
        keep = np.isin(self.episode, episodes)
        return dataclasses.replace(self, **{f: getattr(self, f)[keep] for f in ARRAY_FIELDS})


def noisy(policy: Policy, epsilon: float | jax.Array) -> Policy:
    """`policy` whose orchestrator acts uniformly at random with probability `epsilon` per step (D-REX's noise)."""
    return _noised_if(policy, epsilon, True)


def _noised_if(policy: Policy, epsilon: float | jax.Array, noised: bool | jax.Array) -> Policy:
    """`noisy(policy, epsilon)` where `noised` holds, else `policy` itself, act for act: `noised` may be traced.

    The un-noised branch hands `policy` its own key and never explores, so one compiled rollout
    records both plain and noise-injected episodes with the numbers each form alone gives.
    """

    def act(key: jax.Array, obs: dict[str, jax.Array], params: Params) -> dict[str, jax.Array]:
        k_policy, k_random, k_coin = jax.random.split(key, 3)
        actions = dict(policy(jnp.where(noised, k_policy, key), obs, params))
        explore = jnp.logical_and(noised, jax.random.uniform(k_coin) < epsilon)
        actions[AGENT] = jnp.where(explore, random_policy(k_random, obs, params)[AGENT], actions[AGENT])
        return actions

    return act


def collect_demonstrations(policy: Policy, scenario: str, overrides: Mapping[str, Any] | None, episodes: int,
                           seed: int, expert: str, epsilon: float | None = None) -> Demonstrations:
    """Roll `policy` (all agents' actions) for `episodes` full episodes and record the orchestrator's transitions.

    The episodes are `qin_env.rollout.seed_keys(seed, episodes)`. With `epsilon` the policy is
    `noisy(policy, epsilon)`. Epsilon, and whether there is one, are traced: one compiled rollout
    serves the plain episodes and every noise level, as it serves every call with the same policy,
    configuration and episode count.
    """
    if episodes < 1:
        raise ValueError(f"need at least one demonstration episode, got {episodes}")
    overrides = dict(overrides or {})
    config = _Config(config_hash(load_config(scenario, overrides)), load_params(scenario, overrides))
    try:
        run = _recorder(policy, config)
    except TypeError:  # an unhashable policy: compiled for this call alone
        run = _recorder.__wrapped__(policy, config)
    records = run(seed_keys(seed, episodes), jnp.float32(0.0 if epsilon is None else epsilon),
                  jnp.bool_(epsilon is not None))
    max_steps = config.params.max_steps
    flat = {k: np.asarray(v).reshape(episodes * max_steps, *np.shape(v)[2:]) for k, v in records.items()}
    return Demonstrations(
        obs=flat["obs"].astype(np.float32), action=flat["action"].astype(np.int32),
        next_obs=flat["next_obs"].astype(np.float32), reward_terms=flat["reward_terms"].astype(np.float32),
        kpi=flat["kpi"].astype(np.float32), step=flat["step"].astype(np.int32),
        episode=np.repeat(np.arange(episodes, dtype=np.int32), max_steps),
        scenario=Path(scenario).stem, overrides=overrides, config_hash=config.digest,
        seed=int(seed), expert=expert, kpi_names=KPI_NAMES)


@dataclasses.dataclass(frozen=True)
class _Config:
    """A scenario configuration that hashes and compares by its config hash alone (a `_recorder` cache key)."""

    digest: str
    params: Params = dataclasses.field(compare=False)


def _transition(tr: Transition) -> dict[str, jax.Array]:
    """What a dataset keeps of one slot (this module's docstring)."""
    info = tr.infos[AGENT]
    return {"obs": tr.obs[AGENT], "action": jnp.asarray(tr.actions[AGENT], jnp.int32), "next_obs": tr.next_obs[AGENT],
            "reward_terms": jnp.stack([info["reward_terms"][t] for t in REWARD_TERMS]),
            "kpi": jnp.stack([info["kpi"][k] for k in KPI_NAMES]), "step": tr.state.t - 1}


@functools.lru_cache(maxsize=16)
def _recorder(policy: Policy, config: _Config) -> Callable[[jax.Array, jax.Array, jax.Array], Any]:
    """A jitted `(episode keys, epsilon, noised) -> records [E, T]` of `policy`, noisy where `noised`, on one
    configuration: epsilon and `noised` are traced, so no noise level or data set compiles it again."""

    def run(keys: jax.Array, epsilon: jax.Array, noised: jax.Array) -> Any:
        return rollouts(_noised_if(policy, epsilon, noised), config.params, keys, _transition)

    return jax.jit(run)


def save_demonstrations(path: str | os.PathLike, demos: Demonstrations) -> Path:
    """Atomically write a dataset file (format: this module's docstring)."""
    arrays = {f: getattr(demos, f) for f in ARRAY_FIELDS}
    metadata = {"kind": DATASET_KIND, "dataset_version": DATASET_VERSION, "scenario": demos.scenario,
                "overrides": demos.overrides, "seed": demos.seed, "expert": demos.expert, "agent": AGENT,
                "reward_terms": list(REWARD_TERMS), "kpi_names": list(demos.kpi_names),
                "n_episodes": demos.n_episodes, "n_transitions": demos.n_transitions}
    path = save_checkpoint(path, arrays, metadata)
    return path


def _check_schema(name: str, arrays: Mapping[str, np.ndarray], metadata: Mapping[str, Any], params: Params) -> None:
    """Refuse missing fields, wrong dtypes or shapes, actions outside the space and observations outside [0, 1]."""
    missing = [f for f in ARRAY_FIELDS if f not in arrays]
    if missing:
        raise ValueError(f"demonstrations {name} lack the fields {missing} (dataset schema v{DATASET_VERSION})")
    extra = sorted(set(arrays) - set(ARRAY_FIELDS))
    if extra:
        raise ValueError(f"demonstrations {name} hold unknown fields {extra} (dataset schema v{DATASET_VERSION})")
    n = arrays["obs"].shape[0] if arrays["obs"].ndim else -1
    d, nvec = core.obs_size(params, AGENT), np.asarray(core.action_nvec(params, AGENT))
    expected = {"obs": ((n, d), np.float32), "next_obs": ((n, d), np.float32), "action": ((n, nvec.size), np.int32),
                "reward_terms": ((n, len(REWARD_TERMS)), np.float32),
                "kpi": ((n, len(metadata.get("kpi_names", []))), np.float32),
                "episode": ((n,), np.int32), "step": ((n,), np.int32)}
    for field, (shape, dtype) in expected.items():
        a = arrays[field]
        if a.shape != shape or a.dtype != dtype or n < 1:
            raise ValueError(f"demonstrations {name}: field {field!r} is {a.dtype}{list(a.shape)}, expected "
                             f"{np.dtype(dtype)}{list(shape)} with N >= 1 (D={d} observations, K={nvec.size} actions)")
    if np.any(arrays["action"] < 0) or np.any(arrays["action"] >= nvec):
        raise ValueError(f"demonstrations {name}: actions outside the orchestrator's MultiDiscrete{nvec.tolist()}")
    for field in ("obs", "next_obs"):
        x = arrays[field]
        if not np.all(np.isfinite(x)) or x.min() < 0.0 or x.max() > 1.0:
            raise ValueError(f"demonstrations {name}: {field} has values outside [0, 1] or non-finite values")
    if not np.all(np.isfinite(arrays["reward_terms"])) or not np.all(np.isfinite(arrays["kpi"])):
        raise ValueError(f"demonstrations {name}: reward terms or KPIs are not finite")


def load_demonstrations(path: str | os.PathLike, scenario: str, overrides: Mapping[str, Any] | None = None
                        ) -> Demonstrations:
    """Load and validate a dataset recorded on `scenario` with `overrides`; refuse anything else, saying why."""
    path, overrides = Path(path), dict(overrides or {})
    arrays, metadata = load_checkpoint(path)
    if metadata.get("kind") != DATASET_KIND:
        raise ValueError(f"{path.name} is not a demonstrations file (kind {metadata.get('kind')!r}, "
                         f"expected {DATASET_KIND!r})")
    if metadata.get("dataset_version") != DATASET_VERSION:
        raise ValueError(f"demonstrations {path.name} have dataset version {metadata.get('dataset_version')!r}; "
                         f"this qin-env reads version {DATASET_VERSION}: record them again")
    want_scenario, want_hash = Path(scenario).stem, config_hash(load_config(scenario, overrides))
    if metadata.get("scenario") != want_scenario:
        raise ValueError(f"demonstrations {path.name} were recorded on scenario {metadata.get('scenario')!r}, "
                         f"not {want_scenario!r}: record demonstrations on {want_scenario!r}")
    if metadata.get("config_hash") != want_hash:
        raise ValueError(f"demonstrations {path.name} were recorded on another configuration of {want_scenario!r} "
                         f"(overrides {metadata.get('overrides')}, config hash {metadata.get('config_hash')}) than "
                         f"this run's (overrides {overrides}, config hash {want_hash})")
    if list(metadata.get("reward_terms", [])) != list(REWARD_TERMS):
        raise ValueError(f"demonstrations {path.name} list reward terms {metadata.get('reward_terms')}, "
                         f"expected {list(REWARD_TERMS)}")
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    _check_schema(path.name, arrays, metadata, load_params(scenario, overrides))
    return Demonstrations(**arrays, scenario=want_scenario, overrides=dict(metadata.get("overrides") or {}),
                          config_hash=want_hash, seed=int(metadata["seed"]), expert=str(metadata["expert"]),
                          kpi_names=tuple(metadata["kpi_names"]))
