"""Trained JAX PPO agents as registry agents: save one seed's params, load them back as an `Agent`."""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax

from qin_env.agents.baselines import PolicyAgent
from qin_env.agents.checkpoint import FINAL_CHECKPOINT, load_checkpoint, save_checkpoint
from qin_env.agents.ppo import PPOConfig, init_params, make_policy_fn, network_param_count, resolved_n_qubits
from qin_env.params import DEFAULT_SCENARIO, config_hash, load_config


def config_to_json(config: PPOConfig) -> dict[str, Any]:
    """A PPOConfig as JSON-ready metadata (tuples become lists)."""
    out = dataclasses.asdict(config)
    out["overrides"] = [list(pair) for pair in config.overrides]
    return out


def config_from_json(data: Mapping[str, Any]) -> PPOConfig:
    """Inverse of `config_to_json`; unknown fields are refused by the dataclass."""
    fields = {f.name for f in dataclasses.fields(PPOConfig)}
    unknown = set(data) - fields
    if unknown:
        raise ValueError(f"checkpoint's ppo_config has unknown fields {sorted(unknown)}")
    kwargs = dict(data)
    for name in ("overrides",):
        kwargs[name] = tuple(tuple(pair) for pair in kwargs.get(name, ()))
    for name in ("learners", "hidden", "critic_hidden", "kpis"):
        if kwargs.get(name) is not None:
            kwargs[name] = tuple(kwargs[name])
    return PPOConfig(**kwargs)


def save_trained(path: str | os.PathLike, config: PPOConfig, params: Any, extra: Mapping[str, Any] | None = None
                 ) -> Path:
    """Atomically save one seed's trained params with the config that rebuilds the agent."""
    n_qubits = resolved_n_qubits(config) if config.network == "vqc" else None  # an MLP has no circuit width
    network = {"network": config.network, "n_qubits": n_qubits, "n_layers": config.n_layers,
               "hidden": list(config.hidden), "algorithm": config.algorithm,
               "param_count": network_param_count(config)}
    metadata = {"kind": f"{config.network}-ppo", "scenario": config.scenario,
                "overrides": dict(config.overrides), "network": network,
                "ppo_config": config_to_json(config), **(extra or {})}
    return save_checkpoint(path, jax.device_get(params), metadata)


def load_trained(path: str | os.PathLike, *, network: str | None = None, scenario: str | None = None,
                 overrides: Mapping[str, Any] | None = None) -> tuple[PPOConfig, Any, dict[str, Any]]:
    """Load and check a trained agent: kind, scenario and scenario configuration must match."""
    expected: dict[str, Any] = {}
    if network is not None:
        expected["kind"] = f"{network}-ppo"
    if scenario is not None:
        expected["scenario"] = Path(scenario).stem
        expected["config_hash"] = config_hash(load_config(scenario, overrides))
    _, metadata = load_checkpoint(path, expected=expected)
    config = config_from_json(metadata["ppo_config"])
    template = jax.eval_shape(functools.partial(init_params, config), jax.random.key(0))
    params, metadata = load_checkpoint(path, expected=expected, like=template)
    return config, params, metadata


def make_agent(network: str = "vqc", scenario: str = DEFAULT_SCENARIO, overrides: Mapping[str, Any] | None = None,
               checkpoint: str | os.PathLike | None = None, greedy: bool = True) -> PolicyAgent:
    """A trained PPO agent from its checkpoint (the registry's `vqc-ppo` / `mlp-ppo`)."""
    if checkpoint is None:
        raise ValueError(f"agent '{network}-ppo' needs a checkpoint: train one with "
                         f"`qin train --agent {network}-ppo --out DIR`, then pass --checkpoint DIR")
    if Path(checkpoint).is_dir():  # a `qin train` output folder: its final checkpoint
        checkpoint = Path(checkpoint) / FINAL_CHECKPOINT
    config, params, _ = load_trained(checkpoint, network=network, scenario=scenario, overrides=overrides)
    policy = make_policy_fn(config, params, greedy=greedy)
    return PolicyAgent(f"{network}-ppo", policy, config.env_params())
