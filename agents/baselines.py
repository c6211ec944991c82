"""Baseline agents: random and rule-based (`qin_env.policies`), and stable-baselines3 PPO.

`RandomAgent` and `HeuristicAgent` wrap the environment's fixed policies and expose them as
`policy_fn`, so evaluators can run them compiled. `SB3PPOAgent` trains stable-baselines3's PPO
(`MlpPolicy`, default sizes) on the Gymnasium face `qin/Orchestrator-v0`: the orchestrator
learns while the heuristic plays the aggregators (and eve, where it is an agent), in training and
in `act` alike. Its checkpoint is SB3's own zip stored as one uint8 leaf of an `qin_env.agents.checkpoint`
file, so the format's checksum and metadata checks cover it.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from qin_env.agents.checkpoint import load_checkpoint, save_checkpoint
from qin_env.params import DEFAULT_SCENARIO, Params, config_hash, load_config, params_from_config
from qin_env.policies import heuristic_policy, random_policy

Policy = Callable[[jax.Array, dict[str, jax.Array], Params], dict[str, jax.Array]]

__all__ = ["HeuristicAgent", "PolicyAgent", "RandomAgent", "SB3PPOAgent"]


def _no_checkpoint(name: str, checkpoint: str | os.PathLike | None) -> None:
    if checkpoint is not None:
        raise ValueError(f"agent {name!r} has no parameters to load from a checkpoint")


class PolicyAgent:
    """An agent that is a fixed jit-able policy `(key, obs_dict, params) -> action_dict` of one scenario."""

    def __init__(self, name: str, policy_fn: Policy, params: Params) -> None:
        self.name = name
        self.policy_fn = policy_fn
        self.params = params
        self._act = jax.jit(policy_fn)

    def reset(self, params: Params) -> None:
        """Play the next episode with these environment params (e.g. another scenario)."""
        self.params = params

    def act(self, key: jax.Array, obs: Mapping[str, np.ndarray | jax.Array]) -> dict[str, np.ndarray]:
        """Every agent's action (int32 vectors) for one observation dict."""
        return jax.device_get(self._act(key, dict(obs), self.params))


class RandomAgent(PolicyAgent):
    """Uniform random action for every agent."""

    def __init__(self, scenario: str = DEFAULT_SCENARIO, overrides: Mapping[str, Any] | None = None,
                 checkpoint: str | os.PathLike | None = None) -> None:
        _no_checkpoint("random", checkpoint)
        super().__init__("random", random_policy, params_from_config(load_config(scenario, overrides)))


class HeuristicAgent(PolicyAgent):
    """Rule-based team of `qin_env.policies.heuristic_policy`."""

    def __init__(self, scenario: str = DEFAULT_SCENARIO, overrides: Mapping[str, Any] | None = None,
                 checkpoint: str | os.PathLike | None = None) -> None:
        _no_checkpoint("heuristic", checkpoint)
        super().__init__("heuristic", heuristic_policy, params_from_config(load_config(scenario, overrides)))


class SB3PPOAgent:
    """stable-baselines3 PPO (MlpPolicy) as the orchestrator; the heuristic plays every other agent.

    `ppo_kwargs` go to `stable_baselines3.PPO` (e.g. `n_steps=128`); `deterministic` chooses SB3's
    greedy action in `act`. With `checkpoint`, the model is loaded from a file written by `save`.
    """

    KIND = "sb3-ppo"

    def __init__(
        self, scenario: str = DEFAULT_SCENARIO, overrides: Mapping[str, Any] | None = None,
        checkpoint: str | os.PathLike | None = None, seed: int = 0, deterministic: bool = True,
        **ppo_kwargs: Any,
    ) -> None:
        import gymnasium
        from stable_baselines3 import PPO  # heavy (torch): imported only when this agent is built

        self.name = self.KIND
        self.scenario = scenario
        self.overrides = dict(overrides or {})
        self.deterministic = deterministic
        config = load_config(scenario, self.overrides)
        self.config_hash = config_hash(config)
        self.params = params_from_config(config)
        self.env = gymnasium.make("qin/Orchestrator-v0", scenario=scenario, overrides=self.overrides,
                                  others=heuristic_policy)
        self._team = jax.jit(heuristic_policy)
        if checkpoint is None:
            self.model = PPO("MlpPolicy", self.env, seed=seed, device="cpu", verbose=0, **ppo_kwargs)
        else:
            if ppo_kwargs:
                raise ValueError(f"PPO arguments {sorted(ppo_kwargs)} cannot be changed when loading a checkpoint")
            params, _ = load_checkpoint(checkpoint, expected={"kind": self.KIND, "scenario": scenario,
                                                              "config_hash": self.config_hash})
            self.model = PPO.load(io.BytesIO(params["sb3_zip"].tobytes()), env=self.env, device="cpu")

    def train(self, total_timesteps: int, seed: int | None = None) -> SB3PPOAgent:
        """Run PPO for `total_timesteps` environment steps (rounded up to whole rollouts)."""
        if seed is not None:
            self.model.set_random_seed(seed)
        self.model.learn(total_timesteps=total_timesteps, reset_num_timesteps=False)
        return self

    def act(self, key: jax.Array, obs: Mapping[str, np.ndarray | jax.Array]) -> dict[str, np.ndarray]:
        """The orchestrator's action from SB3's `predict`, every other agent's from the heuristic."""
        actions = jax.device_get(self._team(key, dict(obs), self.params))
        orchestrator, _ = self.model.predict(np.asarray(obs["orchestrator"], np.float32),
                                             deterministic=self.deterministic)
        actions["orchestrator"] = np.asarray(orchestrator, np.int32)
        return actions

    def save(self, path: str | os.PathLike) -> Path:
        """Write the SB3 model (its zip as one uint8 leaf) with our metadata to a checkpoint file."""
        import stable_baselines3
        import torch

        buffer = io.BytesIO()
        self.model.save(buffer)
        network = {"policy": "MlpPolicy", "net_arch": _jsonable(self.model.policy.net_arch)}
        metadata = {
            "kind": self.KIND, "scenario": self.scenario, "overrides": self.overrides,
            "config_hash": self.config_hash, "network": network, "timesteps": int(self.model.num_timesteps),
            "sb3_versions": {"stable-baselines3": stable_baselines3.__version__, "torch": torch.__version__},
        }
        return save_checkpoint(path, {"sb3_zip": np.frombuffer(buffer.getvalue(), np.uint8)}, metadata)


def _jsonable(value: Any) -> Any:
    """SB3's net_arch (lists and dicts of ints) as plain JSON."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
