"""Quantum inverse RL for the orchestrator: a variational-circuit reward learned from ranked demonstrations inside
an AIRL loop, then PPO on that reward alone.

The reward is AIRL's form f(s, a, s') = g(s') + gamma h(s') - h(s) (Fu et al., ICLR 2018, "Learning
Robust Rewards with Adversarial Inverse Reinforcement Learning"; agents/irl_reward.py), g the
circuit (or the MLP ablation), h a linear shaping potential. Each iteration runs one PPO update of
the orchestrator (aggregators played by the heuristic) rewarded by f alone, through
`qin_env.agents.ppo.make_trainer(reward_fn=...)`, which steps the env without its reward; then
`disc_steps` Adam steps on

- the ranking loss of g (D-REX, Brown et al., CoRL 2019; T-REX's Bradley-Terry likelihood,
  Brown et al., ICML 2019, the maximum-entropy model of preferences P(x > y) = e^g(x) / (e^g(x) +
  e^g(y))): pairs of states reached at the same step by the expert's rollouts with different
  injected noise, the less noisy ranked higher; no reward is read;
- AIRL's discriminator D = exp(f + c) / (exp(f + c) + pi(a|s)), a learned constant c, separating
  expert transitions from fresh policy transitions, a replay ring of earlier ones and (optionally)
  random-orchestrator rollouts, each scored with the log-likelihood of the policy that generated it.
  By default (`adversarial_g=False`) it trains the shaping h and c only;
- an L2 penalty on g's input weights (`input_l2`), which keeps g smooth in the observation.

Why this split (measured in docs/irl.md): trained by the discriminator, g becomes an
expert-versus-rest classifier, far from the true reward in EPIC distance, since the discriminator
of a near-deterministic expert carries no grades; the ranking of noise levels does, and g trained
by it alone comes closest. Why AIRL's reward form and not MaxEnt
feature matching: the env's reward is itself a state reward plus potential shaping by the mean
model quality in the observations (irl_reward.py), so the state-only g plus h can represent it;
feature matching would need a reward linear in fixed features and a full policy solve per reward
step. Policy and reward of several seeds run at once under `jax.vmap`; the reward parameters are
a traced input, so nothing recompiles.

After the loop the learned f is frozen and a fresh orchestrator trains on it with PPO
(`make_train(reward_fn=...)`); only then is it evaluated on the true reward.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from qin_env import core
from qin_env.agents.irl_data import AGENT, Demonstrations
from qin_env.agents.irl_reward import OFFSET_SCALE, RewardModel, airl_reward, init_airl, make_reward_model
from qin_env.agents.networks import param_count
from qin_env.agents.ppo import PPOConfig, RewardFn, make_policy_fn, make_trainer, network_param_count
from qin_env.params import Params
from qin_env.rollout import episode_summary, rollouts, seed_keys


@dataclasses.dataclass(frozen=True)
class IRLConfig:
    """Everything an IRL run depends on (frozen and hashable)."""

    scenario: str = "metro_qkd"
    """Scenario name or TOML path."""
    overrides: tuple[tuple[str, Any], ...] = ()
    """Dotted-key scenario overrides as (key, value) pairs."""
    reward_model: str = "vqc"
    """"vqc" (variational circuit) or "mlp" (classical ablation of matching parameter count)."""
    n_qubits: int | None = None
    """Circuit width; None: the scenario's computation share of a node's qubits (`vqc.circuit_qubits`)."""
    n_layers: int = 3
    """Re-uploading layers of the reward circuit."""
    gamma: float = 0.99
    """Discount of the MDP, of AIRL's shaping term and of EPIC's canonicalisation."""
    irl_timesteps: int = 400_000
    """Env steps per seed of the policy inside the AIRL loop (one PPO update per iteration)."""
    policy_timesteps: int = 300_000
    """Env steps per seed of PPO on the frozen learned reward."""
    num_envs: int = 64
    """Parallel env copies per PPO rollout."""
    num_steps: int = 128
    """Env steps per copy per PPO rollout."""
    policy_lr: float = 1e-3
    """PPO learning rate (annealed to 0)."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden sizes of the orchestrator's MLP actor-critic."""
    disc_lr: float = 3e-3
    """Adam learning rate of the reward model and potential."""
    policy_term: bool = True
    """AIRL's -log pi(a|s) in the discriminator's logit; False classifies transitions by f + c alone (docs/irl.md)."""
    offset_lr: float = 2e-2
    """Adam learning rate of the discriminator's constant c (stored / OFFSET_SCALE: 0.2 nats per step at most)."""
    disc_steps: int = 32
    """Discriminator (and ranking) minibatch steps per PPO update."""
    disc_batch: int = 512
    """Expert and policy transitions (each) per discriminator step; half the policy ones from the replay."""
    replay_size: int = 65_536
    """Policy transitions kept from past iterations (a ring), so the reward keeps ranking early policies' states."""
    replay_insert: int = 2_048
    """Policy transitions of each rollout written into the replay ring."""
    negative_fraction: float = 0.25
    """Share of the discriminator's non-expert batch drawn from random-orchestrator rollouts, when given."""
    rank_weight: float = 1.0
    """Weight of the D-REX ranking loss on noise-graded expert rollouts, when given (0: AIRL alone)."""
    adversarial_g: bool = False
    """Whether the discriminator's loss trains g too; False: g learns from the ranking alone, AIRL trains h and c."""
    input_l2: float = 0.1
    """L2 penalty on the reward model's input weights: keeps g smooth in the observation (docs/irl.md)."""

    def env_params(self) -> Params:
        """The scenario's Params with the overrides applied."""
        return self.ppo_config(self.num_envs * self.num_steps).env_params()

    def ppo_config(self, total_timesteps: int) -> PPOConfig:
        """The orchestrator-only PPO configuration (aggregators played by the heuristic)."""
        return PPOConfig(scenario=self.scenario, overrides=self.overrides, learners=(AGENT,),
                         others_policy="heuristic", network="mlp", hidden=self.hidden, num_envs=self.num_envs,
                         num_steps=self.num_steps, total_timesteps=total_timesteps, lr=self.policy_lr,
                         gamma=self.gamma)

    def circuit_qubits(self) -> int:
        """The reward circuit's width."""
        from qin_env.agents.vqc import circuit_qubits

        return self.n_qubits if self.n_qubits is not None else circuit_qubits(self.env_params())

    def model(self) -> RewardModel:
        """The reward model g of this configuration."""
        return make_reward_model(self.reward_model, self.env_params(), self.circuit_qubits(), self.n_layers)


def reward_param_counts(config: IRLConfig) -> dict[str, int]:
    """Trainable scalars of the reward model g, the potential h, the offset c and the orchestrator's policy network."""
    obs_dim = core.obs_size(config.env_params(), AGENT)
    model = config.model()
    shapes = jax.eval_shape(lambda k: init_airl(model, obs_dim, k), jax.random.key(0))
    return {"reward_model": param_count(shapes["g"]), "potential": param_count(shapes["h"]), "offset": 1,
            "policy": network_param_count(config.ppo_config(config.num_envs * config.num_steps))}


def learned_reward_fn(config: IRLConfig) -> RewardFn:
    """The trainer's hook: every learner is rewarded f(s, s') on the orchestrator's observations."""
    f = airl_reward(config.model(), config.gamma)

    def reward(reward_params: Any, obs: dict, actions: dict, next_obs: dict) -> jax.Array:
        del actions  # AIRL's f is state-only; the action enters the discriminator only through log pi
        return f(reward_params, obs[AGENT], next_obs[AGENT])

    return reward


def expert_transitions(demos: Demonstrations, negatives: Demonstrations | None = None,
                       ranked: Sequence[Demonstrations] | None = None) -> dict[str, dict]:
    """What the IRL trainer may read of datasets: observations, actions, next observations (never rewards).

    `negatives`: rollouts of the uniformly random orchestrator, kept as extra non-expert samples for
    the discriminator (noise-injected rollouts ranked below demonstrations, as in D-REX, Brown et
    al., CoRL 2019), so the reward keeps ranking poor behaviour low after the policy stops visiting it.
    `ranked`: rollouts of the expert at increasing noise, least noisy first (`ranked_states`).
    """
    def part(d: Demonstrations) -> dict[str, jax.Array]:
        return {"obs": jnp.asarray(d.obs), "action": jnp.asarray(d.action), "next_obs": jnp.asarray(d.next_obs)}

    out = {"expert": part(demos)} | ({} if negatives is None else {"negatives": part(negatives)})
    return out | ({} if ranked is None else {"ranked": ranked_states(ranked)})


def ranked_states(levels: Sequence[Demonstrations]) -> dict[str, jax.Array]:
    """Reached states of rollouts ranked by their noise (D-REX), laid out so states of equal time can be paired.

    `levels[0]` is the least noisy; each holds whole episodes of one length T. Returns the next
    observations [episodes, T, D] (episodes by level), each level's first episode and episode count.
    D-REX's ranking needs no reward: more injected noise ranks lower (Brown et al., CoRL 2019).
    """
    if len(levels) < 2:
        raise ValueError(f"ranked rollouts need at least 2 noise levels, got {len(levels)}")
    steps = {int(d.step.max()) + 1 for d in levels}
    if len(steps) != 1 or any(d.n_transitions != d.n_episodes * min(steps) for d in levels):
        raise ValueError(f"ranked rollouts must hold whole episodes of one length, got lengths {sorted(steps)}")
    episodes = np.array([d.n_episodes for d in levels])
    return {"obs": jnp.asarray(np.concatenate([d.next_obs.reshape(d.n_episodes, min(steps), -1) for d in levels])),
            "start": jnp.asarray(np.concatenate([[0], np.cumsum(episodes)[:-1]]), jnp.int32),
            "episodes": jnp.asarray(episodes, jnp.int32)}


def make_irl(config: IRLConfig) -> tuple[Callable[[jax.Array], Any], Callable[[Any, dict, jax.Array], tuple]]:
    """Pure `(init(key) -> carry, iteration(carry, expert, key) -> (carry, metrics))` of one seed's AIRL loop.

    `carry` = (PPO runner, AIRL reward params, their Adam state, replay ring of past policy transitions,
    transitions written to it so far); `data` = `expert_transitions(demos, negatives)`.
    Run `jax.jit(jax.vmap(iteration, in_axes=(0, None, 0)))` for several seeds; `num_iterations(config)` times.
    """
    ppo_config = config.ppo_config(config.irl_timesteps)
    trainer = make_trainer(ppo_config, learned_reward_fn(config))
    model, env_params = config.model(), ppo_config.env_params()
    f = airl_reward(model, config.gamma)
    obs_dim = core.obs_size(env_params, AGENT)
    stack = trainer.stack
    # The offset c follows log pi, which climbs some 8 nats as the policy sharpens: it gets its own, faster
    # optimiser so the discriminator stays calibrated and its gradient goes into the reward's shape.
    tx = optax.multi_transform({"shape": optax.adam(config.disc_lr), "offset": optax.adam(config.offset_lr)},
                               lambda params: {k: jax.tree.map(lambda _, k=k: "offset" if k == "c" else "shape", v)
                                               for k, v in params.items()})
    log_pi_start = -float(np.sum(np.log(stack.nvecs[0])))  # the untrained policy is near uniform
    offset_start = log_pi_start if config.policy_term else 0.0

    n_actions = len(stack.nvecs[0])
    episode_steps = env_params.max_steps
    insert = min(config.replay_insert, config.replay_size, config.num_envs * config.num_steps)

    def init(key: jax.Array) -> tuple:
        k_policy, k_reward = jax.random.split(key)
        reward_params = init_airl(model, obs_dim, k_reward, offset_start)
        replay = {"obs": jnp.zeros((config.replay_size, obs_dim), jnp.float32),
                  "next_obs": jnp.zeros((config.replay_size, obs_dim), jnp.float32),
                  "action": jnp.zeros((config.replay_size, n_actions), jnp.int32),
                  "log_prob": jnp.zeros(config.replay_size, jnp.float32)}
        return trainer.init(k_policy), reward_params, tx.init(reward_params), replay, jnp.int32(0)

    def log_pi(policy_params: dict, obs: jax.Array, action: jax.Array) -> jax.Array:
        inputs = stack.network_inputs({AGENT: obs})
        mask = stack.masks({AGENT: jnp.ones((*obs.shape[:-1], sum(stack.nvecs[0])), bool)})
        return trainer.log_prob(policy_params, inputs, mask, stack.pad_actions({AGENT: action}))[..., 0]

    def logits(reward_params: dict, batch: dict[str, jax.Array]) -> jax.Array:
        """Logit of D = exp(f + c) / (exp(f + c) + pi(a|s)), pi the policy whose log-likelihood the batch carries."""
        f_value = jax.vmap(f, in_axes=(None, 0, 0))(reward_params, batch["obs"], batch["next_obs"])
        log_pi_term = batch["log_prob"] if config.policy_term else 0.0
        return f_value + OFFSET_SCALE * reward_params["c"] - log_pi_term

    def rank_loss(g_params: Any, ranked: dict[str, jax.Array], key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Bradley-Terry loss of g on pairs of states reached at the same step under different noise (T-REX on
        one-state snippets; the same step, so g cannot rank by time)."""
        k_t, k_a, k_b, k_ea, k_eb = jax.random.split(key, 5)
        n = config.disc_batch
        n_levels = ranked["start"].shape[0]
        t = jax.random.randint(k_t, (n,), 0, episode_steps)
        a = jax.random.randint(k_a, (n,), 0, n_levels)
        b = jax.random.randint(k_b, (n,), 0, n_levels - 1)
        b = jnp.where(b >= a, b + 1, b)

        def states(level: jax.Array, k: jax.Array) -> jax.Array:
            episode = ranked["start"][level] + jax.random.randint(k, (n,), 0, ranked["episodes"][level])
            return ranked["obs"][episode, t]

        g_of = jax.vmap(model.apply, in_axes=(None, 0))
        gap = g_of(g_params, states(a, k_ea)) - g_of(g_params, states(b, k_eb))
        margin = gap * jnp.where(a < b, 1.0, -1.0)  # the less noisy state should score higher
        return jnp.mean(jax.nn.softplus(-margin)), jnp.mean(margin > 0)

    def disc_loss(reward_params: dict, expert: dict, policy: dict, negatives: dict | None,
                  ranked: dict | None, k_rank: jax.Array) -> tuple[jax.Array, dict]:
        """AIRL's discriminator loss (reaching g only with `adversarial_g`), g's ranking loss and its input penalty."""
        frozen_g = {"g": jax.lax.stop_gradient(reward_params["g"])}
        disc_params = reward_params if config.adversarial_g else reward_params | frozen_g
        le, lp = logits(disc_params, expert), logits(disc_params, policy)
        if negatives is not None:
            lp = jnp.concatenate([lp, logits(disc_params, negatives)])
        airl = jnp.mean(jax.nn.softplus(-le)) + jnp.mean(jax.nn.softplus(lp))  # -log D(expert) - log(1 - D(policy))
        smooth = config.input_l2 * jnp.sum(jnp.square(model.input_weights(reward_params["g"])))
        aux = {"disc_loss": airl, "disc_accuracy": 0.5 * (jnp.mean(le > 0) + jnp.mean(lp < 0)),
               "disc_expert_logit": jnp.mean(le), "disc_policy_logit": jnp.mean(lp)}
        if ranked is None:
            return airl + smooth, aux
        ranking, rank_accuracy = rank_loss(reward_params["g"], ranked, k_rank)
        aux = aux | {"rank_loss": ranking, "rank_accuracy": rank_accuracy}
        return airl + config.rank_weight * ranking + smooth, aux

    def iteration(carry: tuple, data: dict[str, dict[str, jax.Array]], key: jax.Array
                  ) -> tuple[tuple, dict[str, jax.Array]]:
        runner, reward_params, opt_state, replay, inserted = carry
        expert, negatives, ranked = data["expert"], data.get("negatives"), data.get("ranked")
        if ranked is None and not config.adversarial_g:
            raise ValueError("nothing would train the reward model g: pass ranked rollouts (expert_transitions(..., "
                             "ranked=...)) or set IRLConfig(adversarial_g=True)")
        if ranked is not None and ranked["obs"].shape[1] != episode_steps:
            raise ValueError(f"ranked rollouts have episodes of {ranked['obs'].shape[1]} steps; the scenario's "
                             f"episode.max_steps is {episode_steps}")
        k_ppo, k_disc, k_insert = jax.random.split(key, 3)
        runner, metrics, rollout = trainer.update(runner, reward_params, k_ppo)
        # Non-expert samples carry the log-likelihood of the policy that generated them (this rollout's, an
        # earlier iteration's in the replay, the uniform one for negatives); expert samples are scored by the
        # current policy, as in AIRL.
        policy = {"obs": rollout["obs"][AGENT].reshape(-1, obs_dim),
                  "next_obs": rollout["next_obs"][AGENT].reshape(-1, obs_dim),
                  "action": stack.unpad_actions(rollout["action"])[AGENT].reshape(-1, n_actions),
                  "log_prob": rollout["log_prob"][..., 0].reshape(-1)}
        expert_log_pi = jax.vmap(log_pi, in_axes=(None, 0, 0))(runner.params, expert["obs"], expert["action"])
        expert = expert | {"log_prob": jax.lax.stop_gradient(expert_log_pi)}
        if negatives is not None:
            negatives = negatives | {"log_prob": jnp.full(negatives["obs"].shape[0], log_pi_start)}
        n_expert, n_policy = expert["obs"].shape[0], policy["obs"].shape[0]
        take = lambda data, idx: jax.tree.map(lambda x: x[idx], data)  # noqa: E731
        fresh = take(policy, jax.random.choice(k_insert, n_policy, (insert,), replace=False))
        slots = (inserted + jnp.arange(insert)) % config.replay_size
        replay = jax.tree.map(lambda buf, x: buf.at[slots].set(x), replay, fresh)
        inserted = inserted + insert
        filled = jnp.minimum(inserted, config.replay_size)
        n_neg = 0 if negatives is None else round(config.negative_fraction * config.disc_batch)
        n_replay = (config.disc_batch - n_neg) // 2
        n_fresh = config.disc_batch - n_neg - n_replay

        def disc_step(state: tuple, k: jax.Array) -> tuple[tuple, dict]:
            params, opt = state
            k_e, k_p, k_r, k_n, k_rank = jax.random.split(k, 5)
            batch_e = take(expert, jax.random.randint(k_e, (config.disc_batch,), 0, n_expert))
            batch_p = jax.tree.map(lambda a, b: jnp.concatenate([a, b]),
                                   take(policy, jax.random.randint(k_p, (n_fresh,), 0, n_policy)),
                                   take(replay, jax.random.randint(k_r, (n_replay,), 0, filled)))
            batch_n = None if negatives is None else take(
                negatives, jax.random.randint(k_n, (n_neg,), 0, negatives["obs"].shape[0]))
            grads, aux = jax.grad(disc_loss, has_aux=True)(params, batch_e, batch_p, batch_n, ranked, k_rank)
            updates, opt = tx.update(grads, opt, params)
            return (optax.apply_updates(params, updates), opt), aux

        (reward_params, opt_state), aux = jax.lax.scan(disc_step, (reward_params, opt_state),
                                                       jax.random.split(k_disc, config.disc_steps))
        metrics = metrics | {k: v[-1] for k, v in aux.items()}
        return (runner, reward_params, opt_state, replay, inserted), metrics

    return init, iteration


def num_iterations(config: IRLConfig) -> int:
    """AIRL iterations (PPO updates) per seed."""
    n = config.irl_timesteps // (config.num_envs * config.num_steps)
    if n < 1:
        raise ValueError(f"irl_timesteps={config.irl_timesteps} is below one rollout of "
                         f"{config.num_envs * config.num_steps} env steps")
    return n


def evaluate_seeds(ppo_config: PPOConfig, stacked_params: Any, episodes: int, key: int | jax.Array) -> np.ndarray:
    """True team return per seed [S] of greedy orchestrators (leading seed axis), all seeds in one compiled call.

    Every seed meets the same episodes, those `qin_env.agents.ppo.evaluate_policy` plays for `key`.
    """
    returns, _ = episode_summary(_seed_rollouts(ppo_config, stacked_params, seed_keys(key, episodes)))
    return returns.mean(axis=-1)


@functools.partial(jax.jit, static_argnums=0)
def _seed_rollouts(ppo_config: PPOConfig, stacked_params: Any, keys: jax.Array) -> Any:
    """Team records [S, E, T] of each seed's greedy policy on every episode key; compiled once per config and shape."""
    env_params = ppo_config.env_params()
    return jax.vmap(lambda params: rollouts(make_policy_fn(ppo_config, params), env_params, keys))(stacked_params)
