"""Reward models for inverse RL on the orchestrator's observations: a variational circuit and a classical MLP.

Features. The reward reads the orchestrator's observation (`core.ORCHESTRATOR_FIELDS` per
aggregator, then time and mean model quality): per aggregator its learners' model quality
(learning progress), round latency, update delivery, buffer fill, key pool, pair pool and pair
fidelity, QBER estimate and alarm. All are in [0, 1]; `feature_names` lists them.

Reward form (AIRL, Fu et al., ICLR 2018, "Learning Robust Rewards with Adversarial Inverse RL", eq. 4):

    f(s, a, s') = g(s') + gamma * h(s') - h(s)

with g the reward of reaching s' (the circuit or the MLP) and h a linear shaping potential. The
env's own reward (version 1) is a function of the state reached alone in observation terms:
g*(s') = w_quality * (m(s') - q_0) + penalties(s'), m the observed mean quality and q_0 the
initial quality, with h* = 0; see `true_reward`.

The circuit (`vqc_reward_model`) is the data re-uploading ansatz of agents/vqc.py (trainable input
projection and scaling per layer, RX encoding, RY RZ rotations, CNOT ring; Pérez-Salinas et al.,
Quantum 4, 226, 2020; Skolik et al., Quantum 6, 720, 2022, with trainable output weights on the
<Z_i> readout), simulated by the same fused statevector code that tests/agents/test_vqc.py holds
equal to PennyLane's `default.qubit` to 1e-5; `eager_qnode` is the PennyLane reference.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from qin_env import core
from qin_env.agents.networks import param_count
from qin_env.agents.vqc import BACKENDS, circuit_expectations, encoding_angles
from qin_env.params import Params

MEAN_QUALITY = -1  # index of the mean model quality in the orchestrator's observation


class RewardModel(NamedTuple):
    """A state reward g(s') as pure functions: `init(key) -> params`, `apply(params, obs[D]) -> []`.

    `input_weights(params)` are the weights that map the observation into the model; an L2 penalty
    on them keeps g smooth in the observation (`IRLConfig.input_l2`).
    """

    init: Callable[[jax.Array], Any]
    apply: Callable[[Any, jax.Array], jax.Array]
    kind: str
    config: dict[str, Any]
    input_weights: Callable[[Any], jax.Array]


def feature_names(params: Params) -> list[str]:
    """Name of every entry of the orchestrator's observation, the reward model's input."""
    links = [f"{field}[{i}]" for i in range(params.n_aggregators) for field in core.ORCHESTRATOR_FIELDS]
    return [*links, "time", "mean_quality"]


def vqc_reward_model(obs_dim: int, n_qubits: int = 4, n_layers: int = 3, backend: str = "fused") -> RewardModel:
    """g(s') = <Z> @ w + b of a data re-uploading circuit on the observation (module docstring)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")
    if n_qubits < 1 or n_layers < 1:
        raise ValueError(f"need n_qubits >= 1 and n_layers >= 1, got {n_qubits} and {n_layers}")

    def init(key: jax.Array) -> dict[str, Any]:
        k_in, k_rot, k_out = jax.random.split(key, 3)
        return {
            "w_in": jax.random.normal(k_in, (n_layers, n_qubits, obs_dim), jnp.float32) / np.sqrt(obs_dim),
            "b_in": jnp.zeros((n_layers, n_qubits), jnp.float32),
            "rot": jax.random.uniform(k_rot, (n_layers, n_qubits, 2), jnp.float32, 0.0, 2 * np.pi),
            "w_out": 0.1 * jax.random.normal(k_out, (n_qubits,), jnp.float32),
            "b_out": jnp.zeros((), jnp.float32),
        }

    def apply(params: dict[str, Any], obs: jax.Array) -> jax.Array:
        z = circuit_expectations(params["rot"], encoding_angles(params, obs), backend)
        return z @ params["w_out"] + params["b_out"]

    return RewardModel(init, apply, "vqc", {"obs_dim": obs_dim, "n_qubits": n_qubits, "n_layers": n_layers,
                                            "backend": backend}, lambda params: params["w_in"])


def mlp_reward_model(obs_dim: int, hidden: Sequence[int] = (12,)) -> RewardModel:
    """g(s') = a tanh MLP of the observation, the classical ablation of `vqc_reward_model`."""
    sizes = [obs_dim, *hidden, 1]

    def init(key: jax.Array) -> list[dict[str, jax.Array]]:
        keys = jax.random.split(key, len(sizes) - 1)
        # LeCun-normal weights (no orthogonal init: batched QR can deadlock XLA:CPU under vmap, agents/ppo.py)
        return [{"w": jax.random.normal(k, (a, b), jnp.float32) / np.sqrt(a), "b": jnp.zeros(b, jnp.float32)}
                for k, (a, b) in zip(keys, itertools.pairwise(sizes), strict=True)]

    def apply(layers: list[dict[str, jax.Array]], obs: jax.Array) -> jax.Array:
        x = obs
        for layer in layers[:-1]:
            x = jnp.tanh(x @ layer["w"] + layer["b"])
        return (x @ layers[-1]["w"] + layers[-1]["b"])[0]

    return RewardModel(init, apply, "mlp", {"obs_dim": obs_dim, "hidden": list(hidden)}, lambda layers: layers[0]["w"])


def matching_mlp_hidden(obs_dim: int, target_params: int) -> int:
    """Width of a one-hidden-layer MLP reward model whose parameter count is closest to `target_params`."""
    count = lambda h: obs_dim * h + h + h + 1  # noqa: E731
    return min(range(1, 1025), key=lambda h: (abs(count(h) - target_params), h))


def make_reward_model(kind: str, params: Params, n_qubits: int, n_layers: int = 3) -> RewardModel:
    """The VQC reward model, or the MLP whose parameter count matches it (`kind` "vqc" or "mlp")."""
    obs_dim = core.obs_size(params, "orchestrator")
    vqc = vqc_reward_model(obs_dim, n_qubits, n_layers)
    if kind == "vqc":
        return vqc
    if kind == "mlp":
        target = param_count(jax.eval_shape(vqc.init, jax.random.key(0)))
        return mlp_reward_model(obs_dim, (matching_mlp_hidden(obs_dim, target),))
    raise ValueError(f"unknown reward model {kind!r}; use 'vqc' or 'mlp'")


OFFSET_SCALE = 10.0


def init_airl(model: RewardModel, obs_dim: int, key: jax.Array, log_pi_start: float = 0.0) -> dict[str, Any]:
    """Parameters of the discriminator: {"g": the reward model's, "h": the linear potential's, "c": a constant}.

    c, a constant, starts at `log_pi_start` (the initial policy's log-likelihood, -sum log n_c for a
    uniform MultiDiscrete policy), so the discriminator starts at D = 1/2 instead of saturated; it is
    stored divided by OFFSET_SCALE so Adam moves it that much faster, to follow log pi as the policy sharpens.
    Its logit is f + c - log pi (Fu et al. 2018 with a learned log-partition offset).
    """
    return {"g": model.init(key), "h": {"w": jnp.zeros(obs_dim, jnp.float32), "b": jnp.zeros((), jnp.float32)},
            "c": jnp.asarray(log_pi_start / OFFSET_SCALE, jnp.float32)}


def potential(h: dict[str, jax.Array], obs: jax.Array) -> jax.Array:
    """The shaping potential h(s), linear in the observation."""
    return obs @ h["w"] + h["b"]


def airl_reward(model: RewardModel, gamma: float) -> Callable[[dict[str, Any], jax.Array, jax.Array], jax.Array]:
    """f(params, s, s') = g(s') + gamma h(s') - h(s) on single observations (Fu et al. 2018, eq. 4).

    The discriminator's constant c (`init_airl`) is not part of the reward: a constant per step
    changes no ranking of policies, and left in it would push PPO's value targets hundreds of units
    from zero (c follows log pi, about -8 nats for an untrained orchestrator).
    """

    def f(params: dict[str, Any], obs: jax.Array, next_obs: jax.Array) -> jax.Array:
        shaping = gamma * potential(params["h"], next_obs) - potential(params["h"], obs)
        return model.apply(params["g"], next_obs) + shaping

    return f


def true_reward(params: Params) -> Callable[[jax.Array, jax.Array, jax.Array], jax.Array]:
    """The env's team reward R(z, a, z') on batched augmented states z = [obs, penalties realised on reaching it].

    R = w_quality * (m(z') - q_0) + penalties(z'), m the observed mean quality and q_0 the initial
    quality: exactly the sum of `infos["orchestrator"]["reward_terms"]` (tests check it), in a form
    defined for any pair of states.
    """
    w_quality, q0 = float(params.reward["w_quality"]), float(params.learning["initial_quality"])

    def reward(z: jax.Array, action: jax.Array, z_next: jax.Array) -> jax.Array:
        del action, z
        return w_quality * (z_next[..., MEAN_QUALITY - 1] - q0) + z_next[..., -1]

    return reward


def state_reward_on_augmented(model_apply: Callable[[Any, jax.Array], jax.Array], model_params: Any
                              ) -> Callable[[jax.Array, jax.Array, jax.Array], jax.Array]:
    """A learned g(s') as a batched R(z, a, z') on augmented states (the penalty column is not read)."""

    def reward(z: jax.Array, action: jax.Array, z_next: jax.Array) -> jax.Array:
        del z, action
        flat = z_next[..., :-1].reshape(-1, z_next.shape[-1] - 1)
        return jax.vmap(model_apply, in_axes=(None, 0))(model_params, flat).reshape(z_next.shape[:-1])

    return reward
