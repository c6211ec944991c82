"""Evaluate any agent on a scenario's true team reward: compiled when it can be, step by step otherwise.

Both paths play the episodes of `qin_env.rollout` (its key convention) and reduce them with
`qin_env.rollout.episode_summary`, so an agent's numbers do not depend on which path ran it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np
from tqdm import tqdm

from qin_env import core
from qin_env.params import Params, load_params
from qin_env.rollout import Transition, compiled_rollouts, episode_keys, episode_summary, seed_keys, team_record


def stepwise_episodes(agent: Any, params: Params, progress: bool = True) -> Callable[[jax.Array], Any]:
    """`keys [E] -> team records [E, T]` of `compiled_rollouts`' episodes, one host `agent.act` call per slot."""
    step = jax.jit(lambda k, s, a: core.step(k, s, a, params))  # params closed over, as in compiled_rollouts
    reset = jax.jit(lambda k: core.reset(k, params))

    def run(keys: jax.Array) -> Any:
        episodes = []
        for key in tqdm(keys, desc=f"evaluating {agent.name}", leave=False, disable=not progress):
            if hasattr(agent, "reset"):
                agent.reset(params)
            k_reset, act_keys, step_keys = episode_keys(key, params.max_steps)
            obs, state = reset(k_reset)
            slots = []
            for k_act, k_step in zip(act_keys, step_keys, strict=True):
                actions = agent.act(k_act, jax.device_get(obs))
                next_obs, state, rewards, _, truncs, infos = step(k_step, state, actions)
                slots.append(team_record(Transition(obs, actions, next_obs, state, rewards, truncs["__all__"], infos)))
                obs = next_obs
            episodes.append(_stacked(jax.device_get(slots)))  # one transfer per episode, not per slot
        return _stacked(episodes)

    return run


def agent_episodes(agent: Any, params: Params, progress: bool = True) -> Callable[[jax.Array], Any]:
    """`keys [E] -> team records [E, T]` of `agent`: compiled when it has a `policy_fn`, step by step otherwise."""
    policy_fn = getattr(agent, "policy_fn", None)
    return compiled_rollouts(policy_fn, params) if policy_fn is not None else stepwise_episodes(agent, params, progress)


def _stacked(trees: list[Any]) -> Any:
    """Same-structure pytrees of numpy arrays stacked on a new leading axis."""
    return jax.tree.map(lambda *leaves: np.stack(leaves), *trees)


def evaluate_agent(agent: Any, scenario: str, overrides: Mapping[str, Any] | None = None, episodes: int = 16,
                   seed: int = 0) -> dict[str, Any]:
    """Mean true return (`mean_return`), per-episode returns and mean KPIs of `agent` over `episodes` of `seed`."""
    if episodes < 1:
        raise ValueError(f"episodes={episodes} is outside the allowed range [1, inf)")
    params = load_params(scenario, overrides)
    if hasattr(agent, "reset"):
        agent.reset(params)
    returns, kpi = episode_summary(agent_episodes(agent, params)(seed_keys(seed, episodes)))
    return {
        "agent": agent.name,
        "scenario": scenario,
        "episodes": episodes,
        "seed": seed,
        "mean_return": float(returns.mean()),
        "std_return": float(returns.std()),
        "returns": returns.tolist(),
        "kpi": {name: float(values.mean()) for name, values in kpi.items()},
    }
