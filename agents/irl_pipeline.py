"""The IRL experiment end to end: expert, demonstrations, AIRL, PPO on the learned reward, and its measurement.

1. Expert: the orchestrator trained by PPO on the true reward (aggregators played by the heuristic)
   or the heuristic orchestrator, whichever has the higher evaluated true return.
2. Demonstrations: `n_demos` greedy expert episodes (agents/irl_data.py).
3. AIRL (agents/irl.py) for several seeds at once, then a fresh PPO orchestrator per seed on the
   frozen learned reward f, which never sees the true reward.
4. Measurement on the true reward: `normalized_return` = (R - R_random) / (R_expert - R_random),
   with R_random the random orchestrator beside heuristic aggregators (the only agent IRL replaces);
   and on held-out transitions (fresh expert and random-orchestrator episodes, half each) the EPIC
   distance and Pearson correlation between learned and true reward.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from qin_env.agents.irl import (
    IRLConfig,
    evaluate_seeds,
    expert_transitions,
    learned_reward_fn,
    make_irl,
    num_iterations,
)
from qin_env.agents.irl_data import AGENT, Demonstrations, collect_demonstrations
from qin_env.agents.irl_epic import epic_distance, pearson
from qin_env.agents.irl_reward import airl_reward, state_reward_on_augmented, true_reward
from qin_env.agents.ppo import evaluate_policy, make_policy_fn, make_train
from qin_env.policies import heuristic_policy, random_policy

Progress = Callable[[str, int], Callable[[], None]]  # (stage description, total ticks) -> tick


def random_orchestrator(key: jax.Array, obs: dict[str, jax.Array], params: Any) -> dict[str, jax.Array]:
    """A uniformly random orchestrator beside heuristic aggregators: the 0 of `normalized_return`."""
    k_heuristic, k_random = jax.random.split(key)
    return heuristic_policy(k_heuristic, obs, params) | {AGENT: random_policy(k_random, obs, params)[AGENT]}


NOISE_LEVELS = (0.25, 0.5, 0.75, 1.0)  # D-REX's injected noise beyond the demonstrations (Brown et al., CoRL 2019)


def noise_ranked_rollouts(policy: Callable, demos: Demonstrations, episodes: int, seed: int,
                          levels: Sequence[float] = NOISE_LEVELS) -> list[Demonstrations]:
    """The demonstrations, then `episodes` rollouts of `policy` at each noise level, least noisy first (D-REX)."""
    return [demos] + [collect_demonstrations(policy, demos.scenario, demos.overrides, episodes, seed + i,
                                             f"{demos.expert}-eps{eps}", epsilon=eps) for i, eps in enumerate(levels)]


@dataclasses.dataclass(frozen=True)
class Expert:
    """The demonstrator: its name, policy, evaluated true return, and the two candidates' returns."""

    name: str
    policy: Callable
    mean_return: float
    candidates: dict[str, float]
    params: Any = None


def choose_expert(config: IRLConfig, timesteps: int, seed: int, eval_episodes: int,
                  progress: Progress | None = None) -> Expert:
    """Train the orchestrator with PPO on the true reward and keep it or the heuristic, whichever scores higher."""
    overrides = dict(config.overrides)
    eval_seed = 10_000 + seed
    heuristic = evaluate_policy(heuristic_policy, config.scenario, overrides, eval_episodes, eval_seed)["mean_return"]
    if timesteps <= 0:
        return Expert("heuristic", heuristic_policy, heuristic, {"heuristic": heuristic})
    ppo_config = config.ppo_config(timesteps)
    tick = progress("expert PPO on the true reward", ppo_config.total_timesteps // (
        ppo_config.num_envs * ppo_config.num_steps)) if progress else None
    params = jax.jit(make_train(ppo_config, tick))(jax.random.key(seed))["params"]
    ppo_return = float(evaluate_seeds(ppo_config, jax.tree.map(lambda x: x[None], params), eval_episodes,
                                      eval_seed)[0])
    candidates = {"heuristic": heuristic, "ppo": ppo_return}
    if ppo_return > heuristic:
        return Expert("ppo", make_policy_fn(ppo_config, params), ppo_return, candidates, params)
    return Expert("heuristic", heuristic_policy, heuristic, candidates)


def augmented_states(demos: Demonstrations) -> tuple[np.ndarray, np.ndarray]:
    """(z, z') per transition: the observation with the reward penalties realised on reaching it appended.

    Penalties are the reward terms other than quality; a reset state has none (irl_reward.true_reward).
    """
    penalty = demos.reward_terms[:, 1:].sum(axis=1)
    previous = np.where(demos.step == 0, 0.0, np.roll(penalty, 1)).astype(np.float32)
    z = np.concatenate([demos.obs, previous[:, None]], axis=1)
    z_next = np.concatenate([demos.next_obs, penalty[:, None]], axis=1)
    return z, z_next


def concatenate(parts: list[Demonstrations]) -> Demonstrations:
    """Several datasets of one scenario as one (episode indices renumbered to stay distinct)."""
    offset, out = 0, []
    for part in parts:
        out.append(dataclasses.replace(part, episode=part.episode + offset))
        offset += int(part.episode.max()) + 1
    arrays = {f: np.concatenate([getattr(p, f) for p in out]) for f in ("obs", "action", "next_obs", "reward_terms",
                                                                        "kpi", "episode", "step")}
    return dataclasses.replace(parts[0], **arrays, expert="+".join(p.expert for p in parts))


def reward_agreement(config: IRLConfig, reward_params: Any, heldout: Demonstrations, n_expert_episodes: int,
                     seed: int, n_transitions: int = 2000, n_states: int = 128, n_actions: int = 4) -> dict[str, Any]:
    """EPIC distance and Pearson correlations of the learned reward with the true one on held-out transitions.

    `heldout`'s first `n_expert_episodes` episodes are the expert's (marked in the plot data).
    """
    env_params = config.env_params()
    rng = np.random.default_rng(seed)
    z, z_next = augmented_states(heldout)
    pick = rng.choice(len(z), size=min(n_transitions, len(z)), replace=False)
    states = z_next[rng.choice(len(z), size=min(n_states, len(z)), replace=False)]
    actions = heldout.action[rng.choice(len(z), size=min(n_actions, len(z)), replace=False)].astype(np.float32)
    learned = state_reward_on_augmented(config.model().apply, reward_params["g"])
    truth = true_reward(env_params)
    epic = epic_distance(learned, truth, jnp.asarray(z[pick]), jnp.asarray(heldout.action[pick], jnp.float32),
                         jnp.asarray(z_next[pick]), jnp.asarray(states), jnp.asarray(actions), config.gamma)
    f = jax.vmap(airl_reward(config.model(), config.gamma), in_axes=(None, 0, 0))
    f_values = np.asarray(f(reward_params, jnp.asarray(heldout.obs[pick]), jnp.asarray(heldout.next_obs[pick])))
    true_values = heldout.reward_terms[pick].sum(axis=1)
    return {"epic_distance": epic["distance"], "canonical_pearson": epic["pearson"],
            "reward_pearson": pearson(f_values, true_values),
            "plot": {"canonical_learned": epic["canonical_a"], "canonical_true": epic["canonical_b"],
                     "learned": f_values, "true": true_values,
                     "from_expert": heldout.episode[pick] < n_expert_episodes}}


def airl_seeds(config: IRLConfig, expert: dict[str, dict], seeds: int, seed: int,
               tick: Callable[[], None] | None = None) -> tuple[tuple, list[dict[str, np.ndarray]]]:
    """The AIRL loop of `run_irl` for `seeds` seeds at once: the last carry (leading seed axis) and each
    iteration's metrics. `expert` is `expert_transitions(...)`; its programs compile once per configuration."""
    carry = _airl_init(config, jax.random.split(jax.random.key(seed), seeds))
    history = []
    for i in range(num_iterations(config)):
        keys = jax.random.split(jax.random.fold_in(jax.random.key(seed + 1), i), seeds)
        carry, metrics = _airl_iteration(config, carry, expert, keys)
        history.append(jax.device_get(metrics))
        if tick:
            tick()
    return carry, history


@functools.partial(jax.jit, static_argnums=0)
def _airl_init(config: IRLConfig, keys: jax.Array) -> tuple:
    """`make_irl(config)`'s init of every seed key [S]."""
    return jax.vmap(make_irl(config)[0])(keys)


@functools.partial(jax.jit, static_argnums=0)
def _airl_iteration(config: IRLConfig, carry: tuple, expert: dict[str, dict], keys: jax.Array) -> tuple:
    """One `make_irl(config)` iteration of every seed (carries and keys [S]) on shared expert data."""
    return jax.vmap(make_irl(config)[1], in_axes=(0, None, 0))(carry, expert, keys)


def run_irl(config: IRLConfig, demos: Demonstrations, seeds: int, seed: int, negatives: Demonstrations | None = None,
            progress: Progress | None = None, ranked: Sequence[Demonstrations] | None = None) -> dict[str, Any]:
    """AIRL for `seeds` seeds at once, then PPO on each seed's frozen learned reward; returns stacked params.

    `negatives`: random-orchestrator rollouts for the discriminator; `ranked`: the demonstrations and
    noise-injected expert rollouts, least noisy first, for the ranking loss (`qin_env.agents.irl.expert_transitions`).
    """
    expert = expert_transitions(demos, negatives, ranked)
    tick = progress(f"AIRL ({config.reward_model} reward, {seeds} seeds)", num_iterations(config)) if progress else None
    carry, history = airl_seeds(config, expert, seeds, seed, tick)
    reward_params = carry[1]
    if not all(np.all(np.isfinite(np.asarray(x))) for x in jax.tree.leaves(reward_params)):
        raise FloatingPointError(f"AIRL produced non-finite {config.reward_model} reward parameters")
    final_config = config.ppo_config(config.policy_timesteps)
    n_final = final_config.total_timesteps // (final_config.num_envs * final_config.num_steps)
    tick = progress(f"PPO on the learned {config.reward_model} reward", n_final * seeds) if progress else None
    train = jax.jit(jax.vmap(make_train(final_config, tick, reward_fn=learned_reward_fn(config))))
    final = train(jax.random.split(jax.random.key(seed + 2), seeds), reward_params)
    metrics = {k: np.stack([h[k] for h in history], axis=1) for k in history[0]}
    return {"reward_params": reward_params, "loop_policy_params": carry[0].params, "policy_params": final["params"],
            "loop_metrics": metrics, "final_metrics": jax.device_get(final["metrics"]), "final_config": final_config}
