"""PettingZoo-level adapters: infos without the mask tuple for TorchRL, the aggregators as one team for SuperSuit."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from pettingzoo.utils.wrappers import BaseParallelWrapper

__all__ = ["aggregator_team", "tensor_infos"]


class _TensorInfos(BaseParallelWrapper):
    """Infos without `action_mask_parts`, the per-component tuple: TorchRL's `PettingZooWrapper` turns every
    info entry into one tensor, and a ragged tuple cannot be one (`info["action_mask"]` is already flat)."""

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        obs, infos = self.env.reset(seed=seed, options=options)
        return obs, {a: _flat(info) for a, info in infos.items()}

    def step(self, actions: Mapping[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        obs, rewards, terminations, truncations, infos = self.env.step(actions)
        return obs, rewards, terminations, truncations, {a: _flat(info) for a, info in infos.items()}


def _flat(info: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in info.items() if k != "action_mask_parts"}


def tensor_infos(env: Any) -> BaseParallelWrapper:
    """A qin PettingZoo ParallelEnv whose infos TorchRL can tensorise (the per-component mask tuple dropped)."""
    return _TensorInfos(env)


class _AggregatorTeam(BaseParallelWrapper):
    """The aggregators as the only agents (equal spaces: parameter sharing, SuperSuit's vector envs); the
    orchestrator and, where it acts, Eve are played by a fixed policy on their own observations."""

    def __init__(self, env: Any, others: str | Callable = "heuristic") -> None:
        super().__init__(env)
        from qin_env.faces.gymnasium import _resolve_policy

        base = env.unwrapped
        policy, params = _resolve_policy(others), base.params
        self._fixed = [a for a in base.possible_agents if not a.startswith("aggregator_")]
        self.possible_agents = [a for a in base.possible_agents if a.startswith("aggregator_")]
        self.agents: list[str] = []
        self._act = jax.jit(lambda key, obs: policy(key, obs, params))
        self._key: jax.Array | None = None
        self._obs: dict[str, Any] = {}

    def observation_space(self, agent: str) -> Any:
        return self.env.observation_space(agent)

    def action_space(self, agent: str) -> Any:
        return self.env.action_space(agent)

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        obs, infos = self.env.reset(seed=seed, options=options)
        if seed is not None or self._key is None:
            self._key = jax.random.key(np.random.default_rng(seed).integers(2**31))
        self._obs = obs
        self.agents = list(self.possible_agents)
        return self._team(obs), self._team(infos)

    def step(self, actions: Mapping[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        self._key, key = jax.random.split(self._key)
        fixed = self._act(key, {a: jnp.asarray(o) for a, o in self._obs.items()})
        full = {**{a: np.asarray(fixed[a]) for a in self._fixed}, **actions}
        obs, rewards, terminations, truncations, infos = self.env.step(full)
        self._obs = obs
        self.agents = [a for a in self.possible_agents if a in self.env.agents]
        return tuple(self._team(part) for part in (obs, rewards, terminations, truncations, infos))

    def state(self) -> np.ndarray:
        return self.env.state()

    def _team(self, by_agent: dict[str, Any]) -> dict[str, Any]:
        return {a: by_agent[a] for a in self.possible_agents if a in by_agent}


def aggregator_team(env: Any, others: str | Callable = "heuristic") -> BaseParallelWrapper:
    """A qin PettingZoo ParallelEnv whose agents are the aggregators alone (one shared space), the orchestrator
    (and Eve) played by `others` (`"heuristic"`, `"random"` or a `(key, obs, params) -> actions` policy)."""
    return _AggregatorTeam(env, others)
