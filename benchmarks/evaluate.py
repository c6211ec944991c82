"""Evaluate any agent on a scenario's true team reward: compiled when it can be, step by step otherwise."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm import tqdm

from qin_env import core
from qin_env.params import load_params


def compiled_episodes(policy_fn: Any, params: Any) -> Any:
    """A jitted `keys -> (returns, mean KPIs)`: whole episodes of `policy_fn` under lax.scan, vmapped over keys."""

    def episode(key: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        obs, state = core.reset(key, params)

        def body(carry, k):
            obs, state = carry
            k1, k2 = jax.random.split(k)
            obs, state, rewards, _, _, infos = core.step(k2, state, policy_fn(k1, obs, params), params)
            return (obs, state), (rewards["orchestrator"], infos["orchestrator"]["kpi"])

        _, (rewards, kpi) = jax.lax.scan(body, (obs, state), jax.random.split(key, params.max_steps))
        return rewards.sum(), jax.tree.map(jnp.mean, kpi)

    return jax.jit(jax.vmap(episode))


def _episodes_stepwise(agent: Any, params: Any, keys: jax.Array) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    step = jax.jit(lambda k, s, a: core.step(k, s, a, params))
    returns, kpis = [], []
    for key in tqdm(keys, desc=f"evaluating {agent.name}", leave=False):
        if hasattr(agent, "reset"):
            agent.reset(params)
        obs, state = core.reset(key, params)
        total, sums = 0.0, {}
        for k in jax.random.split(key, params.max_steps):
            k1, k2 = jax.random.split(k)
            actions = {n: jnp.asarray(a) for n, a in agent.act(k1, jax.device_get(obs)).items()}
            obs, state, rewards, _, _, infos = step(k2, state, actions)
            total += float(rewards["orchestrator"])
            for name, value in infos["orchestrator"]["kpi"].items():
                sums[name] = sums.get(name, 0.0) + float(value)
        returns.append(total)
        kpis.append({n: v / params.max_steps for n, v in sums.items()})
    return np.asarray(returns), {n: np.asarray([k[n] for k in kpis]) for n in kpis[0]}


def evaluate_agent(agent: Any, scenario: str, overrides: Mapping[str, Any] | None = None, episodes: int = 16,
                   seed: int = 0) -> dict[str, Any]:
    """Mean true return (`mean_return`), per-episode returns and mean KPIs of `agent` over `episodes` seeds."""
    if episodes < 1:
        raise ValueError(f"episodes={episodes} is outside the allowed range [1, inf)")
    params = load_params(scenario, overrides)
    if hasattr(agent, "reset"):
        agent.reset(params)
    keys = jax.random.split(jax.random.PRNGKey(seed), episodes)
    policy_fn = getattr(agent, "policy_fn", None)
    if policy_fn is not None:
        returns, kpi = compiled_episodes(policy_fn, params)(keys)
    else:
        returns, kpi = _episodes_stepwise(agent, params, keys)
    returns = np.asarray(returns, np.float64)
    return {
        "agent": agent.name,
        "scenario": scenario,
        "episodes": episodes,
        "seed": seed,
        "mean_return": float(returns.mean()),
        "std_return": float(returns.std()),
        "returns": returns.tolist(),
        "kpi": {name: float(np.mean(values)) for name, values in kpi.items()},
    }
