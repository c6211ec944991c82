"""IPPO, MAPPO and REINFORCE for the env's agents, end to end in JAX (PureJaxRL style).

`make_train(config)` returns a pure `train(key)`: rollouts are a `lax.scan` of `core.step` over
`num_envs` vmapped copies, and the updates are `lax.scan`s over epochs and minibatches, so
`jax.jit(jax.vmap(make_train(cfg)))(keys)` trains several seeds at once (Lu et al., NeurIPS 2022,
"Discovered Policy Optimisation", purejaxrl/ppo.py). Every learning agent lives on one leading
axis (`qin_env.agents.multiagent.AgentStack`) and one `jax.vmap` runs all their networks.
`make_seeds_trainer(cfg)` runs the same updates one compiled call each, so `qin train` can save
the state between two updates and resume it bitwise.

- IPPO: each agent its own actor and critic on its own observation (de Witt et al. 2020, "Is
  independent learning all you need in the StarCraft multi-agent challenge?").
- MAPPO: the same actors; the critic is a separate MLP whose input is the global state, the
  concatenation of every agent's observation (Yu et al., NeurIPS 2022 Datasets and Benchmarks,
  "The Surprising Effectiveness of PPO in Cooperative Multi-Agent Games"). The actor network's
  own value head is unused.
- REINFORCE: discounted Monte-Carlo returns within the rollout minus their batch mean per agent,
  one full-batch gradient step per rollout, no critic (Williams 1992). Returns are cut at the
  rollout's end, so set `num_steps` to a multiple of the episode length for unbiased returns.

Without `share_parameters` each agent also has its own optimiser state and gradient clipping
(a vmapped optax update), so agents are independent learners in the full sense.

Episodes end only at `max_steps`; every observation carries the time fraction, so treating
truncation as terminal (no bootstrap across it) keeps the value target Markov.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from qin_env import core
from qin_env.agents.multiagent import AgentStack
from qin_env.agents.networks import ActorCritic, mlp_actor_critic, param_count
from qin_env.params import Params, load_params
from qin_env.policies import POLICIES, action_masks_from_obs
from qin_env.rollout import Policy, compiled_rollouts, episode_summary, seed_keys

ALGORITHMS = ("ippo", "mappo", "reinforce")


@dataclasses.dataclass(frozen=True)
class PPOConfig:
    """Everything a training run depends on (frozen and hashable)."""

    scenario: str = "metro_qkd"
    """Scenario name (scenarios/*.toml) or path to a TOML file."""
    overrides: tuple[tuple[str, Any], ...] = ()
    """Dotted-key scenario overrides as (key, value) pairs, e.g. (("episode.max_steps", 50),)."""
    learners: tuple[str, ...] | None = None
    """Agents that learn, in stack order; None means every agent of the scenario."""
    others_policy: str = "heuristic"
    """Fixed policy (qin_env.policies.POLICIES) playing the agents that do not learn."""
    algorithm: str = "ippo"
    """"ippo" (own critics), "mappo" (centralised critic on the global state) or "reinforce"."""
    network: str = "mlp"
    """Actor-critic of each agent: "mlp" or "vqc" (agents/vqc.py)."""
    hidden: tuple[int, ...] = (64, 64)
    """MLP hidden sizes (stable-baselines3's default MlpPolicy is (64, 64))."""
    n_qubits: int | None = None
    """Qubits of the variational circuit (network="vqc"); None: the scenario's computation share
    of a node's qubit budget (`qin_env.agents.vqc.circuit_qubits`, 4 in metro_qkd)."""
    n_layers: int = 3
    """Variational layers with data re-uploading (network="vqc")."""
    vqc_backend: str = "fused"
    """Simulator backend of agents/vqc.py (network="vqc")."""
    share_parameters: bool = False
    """One network for all learners, an agent one-hot appended to its input."""
    critic_hidden: tuple[int, ...] = (64, 64)
    """Hidden sizes of MAPPO's centralised critic MLP."""
    num_envs: int = 64
    """Parallel env copies per rollout."""
    num_steps: int = 128
    """Env steps per copy per rollout."""
    total_timesteps: int = 1_000_000
    """Env steps over the whole run (all copies); updates = total // (num_envs * num_steps)."""
    update_epochs: int = 4
    """PPO epochs over each rollout (REINFORCE: always 1)."""
    num_minibatches: int = 4
    """Minibatches per epoch (REINFORCE: always 1, the full batch)."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE λ (Schulman et al., ICLR 2016)."""
    clip_eps: float = 0.2
    """PPO ratio clip, also used for the value clip."""
    ent_coef: float = 0.01
    """Weight of the summed component entropies."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    max_grad_norm: float = 0.5
    """Global-norm gradient clip (per agent unless parameters are shared)."""
    lr: float = 3e-4
    """Adam learning rate."""
    anneal_lr: bool = True
    """Decay the learning rate linearly to 0 over the run."""
    normalize_advantages: bool = True
    """Standardise advantages per minibatch and agent."""
    kpis: tuple[str, ...] = ("model_quality", "latency_s", "leaked_bits", "slo_violation", "dropped_bits")
    """KPIs (core.KPI_UNITS) averaged over each rollout in the metrics."""

    def env_params(self) -> Params:
        """The scenario's `Params` with the overrides applied."""
        return load_params(self.scenario, dict(self.overrides))


class Transition(NamedTuple):
    """One env step of every copy, learners on axis -2 where there is one."""

    inputs: jax.Array  # [N, I] network inputs
    global_state: jax.Array  # [G]
    mask: jax.Array  # [N, K*M]
    action: jax.Array  # [N, K]
    log_prob: jax.Array  # [N]
    value: jax.Array  # [N]
    reward: jax.Array  # [N]
    done: jax.Array  # []
    team_reward: jax.Array  # []
    kpi: dict[str, jax.Array]


def _mlp_critic(in_dim: int, hidden: Sequence[int]) -> tuple[Callable, Callable]:
    """A tanh MLP value function (init, apply) for MAPPO's centralised critic."""
    sizes = [in_dim, *hidden, 1]

    def init(key: jax.Array) -> list[dict[str, jax.Array]]:
        keys = jax.random.split(key, len(sizes) - 1)
        scales = [np.sqrt(2)] * (len(sizes) - 2) + [1.0]
        return [{"w": jax.nn.initializers.orthogonal(s)(k, (a, b), jnp.float32), "b": jnp.zeros(b, jnp.float32)}
                for k, s, (a, b) in zip(keys, scales, itertools.pairwise(sizes), strict=True)]

    def apply(layers: list[dict[str, jax.Array]], x: jax.Array) -> jax.Array:
        for layer in layers[:-1]:
            x = jnp.tanh(x @ layer["w"] + layer["b"])
        return (x @ layers[-1]["w"] + layers[-1]["b"])[0]

    return init, apply


def resolved_n_qubits(config: PPOConfig, env_params: Params | None = None) -> int:
    """The circuit width a config trains with: its `n_qubits`, or the scenario's computation share."""
    if config.n_qubits is not None:
        return config.n_qubits
    from qin_env.agents.vqc import circuit_qubits

    return circuit_qubits(config.env_params() if env_params is None else env_params)


def make_network(config: PPOConfig, stack: AgentStack, env_params: Params | None = None) -> ActorCritic:
    """The actor-critic every learner uses, sized for the stack's padded layout."""
    in_dim = stack.input_dim(config.share_parameters)
    if config.network == "mlp":
        return mlp_actor_critic(in_dim, stack.n_logits, config.hidden)
    if config.network == "vqc":
        from qin_env.agents.vqc import vqc_actor_critic

        return vqc_actor_critic(in_dim, stack.n_logits, n_qubits=resolved_n_qubits(config, env_params),
                                n_layers=config.n_layers, backend=config.vqc_backend)
    raise ValueError(f"unknown network {config.network!r}; use 'mlp' or 'vqc'")


class _Model(NamedTuple):
    """The stacked networks of a config: how to initialise them and run them on [N, ...] inputs."""

    stack: AgentStack
    init: Callable[[jax.Array], dict[str, Any]]
    policy: Callable[[dict[str, Any], jax.Array], tuple[jax.Array, jax.Array]]  # inputs [N, I] -> [N, K*M], [N]
    forward: Callable[[dict[str, Any], jax.Array, jax.Array], tuple[jax.Array, jax.Array]]  # + global state


def _build(config: PPOConfig, env_params: Params) -> _Model:
    """Stack, networks and (for MAPPO) the centralised critic of a config."""
    if config.algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {config.algorithm!r}; use one of {ALGORITHMS}")
    stack = AgentStack.from_params(env_params, config.learners)
    net = make_network(config, stack, env_params)
    n, shared = stack.n_agents, config.share_parameters
    critic_in = stack.global_state_dim + (n if shared else 0)
    critic_init, critic_apply = _mlp_critic(critic_in, config.critic_hidden)
    axis = None if shared else 0

    # Batched LAPACK QR (the MLP's orthogonal init) can deadlock XLA:CPU in jaxlib 0.10.2 once it
    # feeds the training loop; sequential_vmap keeps every agent's and every seed's init unbatched.
    net_init, critic_init = (jax.custom_batching.sequential_vmap(f) for f in (net.init, critic_init))

    def init(key: jax.Array) -> dict[str, Any]:
        k_net, k_critic = jax.random.split(key)
        one = (lambda f, k: f(k)) if shared else (lambda f, k: jax.vmap(f)(jax.random.split(k, n)))
        params = {"net": one(net_init, k_net)}
        if config.algorithm == "mappo":
            params["critic"] = one(critic_init, k_critic)
        return params

    def policy(params: dict[str, Any], inputs: jax.Array) -> tuple[jax.Array, jax.Array]:
        return jax.vmap(net.apply, in_axes=(axis, 0))(params["net"], inputs)

    def forward(params: dict[str, Any], inputs: jax.Array, global_state: jax.Array) -> tuple[jax.Array, jax.Array]:
        logits, value = policy(params, inputs)
        if config.algorithm != "mappo":
            return logits, value
        g = jnp.broadcast_to(global_state, (n, global_state.shape[-1]))
        if shared:
            g = jnp.concatenate([g, jnp.eye(n, dtype=g.dtype)], axis=-1)
        return logits, jax.vmap(critic_apply, in_axes=(axis, 0))(params["critic"], g)

    return _Model(stack, init, policy, forward)


def init_params(config: PPOConfig, key: jax.Array) -> dict[str, Any]:
    """Fresh parameters as `train` starts from them: {"net": stacked actor-critics, "critic": MAPPO's}."""
    return _build(config, config.env_params()).init(key)


def network_param_count(config: PPOConfig, total: bool = False) -> int:
    """Trainable scalars of one learner's actor-critic, or (`total`) of everything `train` optimises."""
    model = _build(config, config.env_params())
    shapes = jax.eval_shape(model.init, jax.random.key(0))
    if total:
        return param_count(shapes)
    net = param_count(shapes["net"])
    return net if config.share_parameters else net // model.stack.n_agents


RewardFn = Callable[[Any, dict[str, jax.Array], dict[str, jax.Array], dict[str, jax.Array]], jax.Array]
"""A learned team reward `(reward_params, obs, actions, next_obs) -> []` of one transition of one env copy."""


class RunnerState(NamedTuple):
    """What one PPO update carries to the next: learners' params and optimiser state, the env copies."""

    params: dict[str, Any]
    opt_state: Any
    env_state: core.State
    obs: dict[str, jax.Array]
    ep_sum: jax.Array  # [E] return of the running episode
    last_return: jax.Array  # [E] return of the last finished episode (nan until one ends)


class Trainer(NamedTuple):
    """PPO as a resumable pair of pure functions, so other learners (an IRL discriminator) can interleave.

    `init(key) -> RunnerState`; `update(runner, reward_params, key) -> (runner, metrics, rollout)`, one
    rollout and its PPO epochs. `rollout` holds the learners' padded network `inputs` [T, E, N, I],
    `mask` [T, E, N, K*M], `action` [T, E, N, K], the behaviour policy's `log_prob` [T, E, N], their
    observations `obs` and `next_obs` (dicts of [T, E, D_a]; `next_obs` is the pre-reset observation
    at an episode's end) and `done` [T, E].
    """

    init: Callable[[jax.Array], RunnerState]
    update: Callable[[RunnerState, Any, jax.Array], tuple[RunnerState, dict[str, jax.Array], dict[str, Any]]]
    num_updates: int
    stack: AgentStack
    log_prob: Callable[[dict[str, Any], jax.Array, jax.Array, jax.Array], jax.Array]  # inputs, mask, action -> [.., N]


def gae_advantages(rewards: jax.Array, values: jax.Array, dones: jax.Array, last_value: jax.Array, gamma: float,
                   lam: float) -> tuple[jax.Array, jax.Array]:
    """GAE(gamma, lam) advantages and value targets (advantage + value) over a rollout's leading time axis [T, ...].

    `dones[t]` (broadcast against `rewards`) marks an episode that ended at step t: no bootstrap across
    it. `last_value` is the value of the observation after the last step (Schulman et al., ICLR 2016).
    """
    def body(carry: tuple, step: tuple) -> tuple[tuple, jax.Array]:
        gae, next_value = carry
        reward, value, done = step
        not_done = 1.0 - done
        delta = reward + gamma * next_value * not_done - value
        gae = delta + gamma * lam * not_done * gae
        return (gae, value), gae

    _, adv = jax.lax.scan(body, (jnp.zeros_like(last_value), last_value), (rewards, values, dones), reverse=True)
    return adv, adv + values


def step_without_reward(key: jax.Array, state: core.State, actions: dict[str, jax.Array], params: Params
                        ) -> tuple[dict, core.State, dict, dict]:
    """`core.step` with auto-reset, minus the env's reward: (obs, state, truncations, infos without reward_terms).

    The learned-reward trainer steps the env only through this, so the true reward cannot reach it.
    """
    obs, state, _, _, truncs, infos = core.step(key, state, actions, params, True)
    infos = {agent: {k: v for k, v in info.items() if k != "reward_terms"} for agent, info in infos.items()}
    return obs, state, truncs, infos


def make_trainer(config: PPOConfig, reward_fn: RewardFn | None = None,
                 progress: Callable[[], None] | None = None) -> Trainer:
    """The PPO update of `make_train` as a resumable `Trainer`; with `reward_fn`, learners see only that reward.

    With `reward_fn` every learner is rewarded `reward_fn(reward_params, obs, actions, next_obs)` and
    the env is stepped through `step_without_reward`; the metrics `episode_return` and `mean_reward`
    then measure the learned reward. `reward_params` is a traced input: changing it does not recompile.
    """
    env_params = config.env_params()
    model = _build(config, env_params)
    stack, n_envs, n_steps = model.stack, config.num_envs, config.num_steps
    num_updates = config.total_timesteps // (n_envs * n_steps)
    if num_updates < 1:
        raise ValueError("total_timesteps must cover at least one rollout of num_envs * num_steps")
    reinforce = config.algorithm == "reinforce"
    n_epochs, n_minibatches = (1, 1) if reinforce else (config.update_epochs, config.num_minibatches)
    batch_size = n_envs * n_steps
    if batch_size % n_minibatches:
        raise ValueError("num_envs * num_steps must be divisible by num_minibatches")
    others = POLICIES[config.others_policy]
    fixed_agents = set(stack.all_names) != set(stack.names)
    vmap_agents = not config.share_parameters

    def schedule(count: jax.Array) -> jax.Array:
        frac = 1.0 - (count // (n_epochs * n_minibatches)) / num_updates
        return config.lr * frac if config.anneal_lr else config.lr

    tx = optax.chain(optax.clip_by_global_norm(config.max_grad_norm), optax.adam(schedule, eps=1e-5))
    tx_init = jax.vmap(tx.init) if vmap_agents else tx.init
    tx_update = jax.vmap(tx.update) if vmap_agents else tx.update
    team = "orchestrator"  # every team agent gets the same reward

    def _act(key: jax.Array, params: dict, obs: dict, state: core.State) -> tuple[dict, Transition]:
        k_others, k_sample = jax.random.split(key)
        inputs = stack.network_inputs(obs, config.share_parameters)
        global_state = stack.global_state(obs)
        mask = stack.masks(core.action_masks(state.model_qubits, env_params))
        logits, value = model.forward(params, inputs, global_state)
        action = stack.sample(k_sample, logits, mask)
        log_prob, _ = stack.log_prob_entropy(logits, mask, action)
        actions = (dict(others(k_others, obs, env_params)) if fixed_agents else {}) | stack.unpad_actions(action)
        return actions, Transition(inputs, global_state, mask, action, log_prob, value,
                                   jnp.zeros(stack.n_agents), jnp.bool_(False), jnp.float32(0.0), {})

    def _env_step(carry: tuple, key: jax.Array) -> tuple[tuple, tuple[Transition, dict]]:
        runner, reward_params = carry
        params, opt_state, env_state, obs, ep_sum, last_return = runner
        k_act, k_step = jax.random.split(key)
        actions, tr = jax.vmap(_act, in_axes=(0, None, 0, 0))(jax.random.split(k_act, n_envs), params, obs, env_state)
        keys = jax.random.split(k_step, n_envs)
        if reward_fn is None:
            next_obs, env_state, rewards, _, truncs, infos = jax.vmap(core.step, in_axes=(0, 0, 0, None, None))(
                keys, env_state, actions, env_params, True)
            team_reward = rewards[team]
            reward = jnp.stack([rewards[a] for a in stack.names], axis=-1)
        else:
            next_obs, env_state, truncs, infos = jax.vmap(step_without_reward, in_axes=(0, 0, 0, None))(
                keys, env_state, actions, env_params)
            final_obs = {a: infos[a]["final_observation"] for a in next_obs}
            team_reward = jax.vmap(reward_fn, in_axes=(None, 0, 0, 0))(reward_params, obs, actions, final_obs)
            reward = jnp.broadcast_to(team_reward[:, None], (n_envs, stack.n_agents))
        done = truncs["__all__"]
        ep_sum = ep_sum + team_reward
        last_return = jnp.where(done, ep_sum, last_return)
        ep_sum = jnp.where(done, 0.0, ep_sum)
        kpi = {k: infos[team]["kpi"][k] for k in config.kpis}
        tr = tr._replace(reward=reward, done=done, team_reward=team_reward, kpi=kpi)
        seen = {"obs": {a: obs[a] for a in stack.names},
                "next_obs": {a: infos[a]["final_observation"] for a in stack.names}}
        return (RunnerState(params, opt_state, env_state, next_obs, ep_sum, last_return), reward_params), (tr, seen)

    def _monte_carlo(traj: Transition) -> tuple[jax.Array, jax.Array]:
        def body(ret: jax.Array, t: Transition) -> tuple[jax.Array, jax.Array]:
            ret = t.reward + config.gamma * ret * (1.0 - t.done[:, None])
            return ret, ret

        _, returns = jax.lax.scan(body, jnp.zeros_like(traj.reward[0]), traj, reverse=True)
        return returns - jnp.mean(returns, axis=(0, 1)), returns  # mean baseline per agent

    def _loss_fn(params: dict, batch: Transition, adv: jax.Array, targets: jax.Array) -> tuple[jax.Array, dict]:
        logits, value = jax.vmap(model.forward, in_axes=(None, 0, 0))(params, batch.inputs, batch.global_state)
        log_prob, entropy = stack.log_prob_entropy(logits, batch.mask, batch.action)  # [B, N]
        if config.normalize_advantages:
            adv = (adv - adv.mean(0)) / (adv.std(0) + 1e-8)
        if reinforce:
            actor_loss = -jnp.mean(log_prob * adv, axis=0)
            value_loss = jnp.zeros_like(actor_loss)
            approx_kl = clip_frac = jnp.zeros_like(actor_loss)
        else:
            ratio = jnp.exp(log_prob - batch.log_prob)
            clipped = jnp.clip(ratio, 1.0 - config.clip_eps, 1.0 + config.clip_eps)
            actor_loss = -jnp.mean(jnp.minimum(ratio * adv, clipped * adv), axis=0)
            value_clipped = batch.value + jnp.clip(value - batch.value, -config.clip_eps, config.clip_eps)
            value_loss = 0.5 * jnp.mean(jnp.maximum((value - targets) ** 2, (value_clipped - targets) ** 2), axis=0)
            approx_kl = jnp.mean((ratio - 1.0) - jnp.log(ratio), axis=0)
            clip_frac = jnp.mean(jnp.abs(ratio - 1.0) > config.clip_eps, axis=0)
        entropy = jnp.mean(entropy, axis=0)
        per_agent = actor_loss + config.vf_coef * value_loss - config.ent_coef * entropy
        # Summed over agents: with separate parameters each agent's gradient is its own loss's.
        aux = {"actor_loss": actor_loss, "value_loss": value_loss, "entropy": entropy,
               "approx_kl": approx_kl, "clip_frac": clip_frac}
        return jnp.sum(per_agent), jax.tree.map(jnp.mean, aux)

    def _update_minibatch(train_state: tuple, minibatch: tuple) -> tuple[tuple, dict]:
        params, opt_state = train_state
        grads, aux = jax.grad(_loss_fn, has_aux=True)(params, *minibatch)
        updates, opt_state = tx_update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), aux

    def _update_epoch(update_state: tuple, _: None) -> tuple[tuple, dict]:
        params, opt_state, traj, adv, targets, key = update_state
        key, k_perm = jax.random.split(key)
        perm = jax.random.permutation(k_perm, batch_size)

        def shuffle(x: jax.Array) -> jax.Array:
            x = x.reshape(batch_size, *x.shape[2:])[perm]
            return x.reshape(n_minibatches, -1, *x.shape[1:])

        batch = (traj._replace(kpi={}), adv, targets)
        minibatches = jax.tree.map(shuffle, batch)
        (params, opt_state), aux = jax.lax.scan(_update_minibatch, (params, opt_state), minibatches)
        return (params, opt_state, traj, adv, targets, key), aux

    def update(runner: RunnerState, reward_params: Any, key: jax.Array
               ) -> tuple[RunnerState, dict[str, jax.Array], dict[str, Any]]:
        k_roll, k_epochs = jax.random.split(key)
        (runner, _), (traj, seen) = jax.lax.scan(_env_step, (runner, reward_params), jax.random.split(k_roll, n_steps))
        params, opt_state, env_state, obs, ep_sum, last_return = runner
        if reinforce:
            adv, targets = _monte_carlo(traj)
        else:
            inputs = stack.network_inputs(obs, config.share_parameters)
            _, last_value = jax.vmap(model.forward, in_axes=(None, 0, 0))(params, inputs, stack.global_state(obs))
            adv, targets = gae_advantages(traj.reward, traj.value, traj.done[..., None], last_value,
                                          config.gamma, config.gae_lambda)
        update_state = (params, opt_state, traj, adv, targets, k_epochs)
        update_state, aux = jax.lax.scan(_update_epoch, update_state, None, n_epochs)
        params, opt_state = update_state[:2]
        metrics = {
            "episode_return": jnp.mean(last_return),  # nan until the first episode ends
            "episodes_completed": jnp.sum(traj.done),
            "mean_reward": jnp.mean(traj.team_reward),
            **{f"kpi/{k}": jnp.mean(v) for k, v in traj.kpi.items()},
            **{k: jnp.mean(v) for k, v in aux.items()},
        }
        if progress is not None:
            jax.debug.callback(lambda _: progress(), metrics["mean_reward"])
        rollout = {"inputs": traj.inputs, "mask": traj.mask, "action": traj.action, "log_prob": traj.log_prob,
                   "done": traj.done, **seen}
        return RunnerState(params, opt_state, env_state, obs, ep_sum, last_return), metrics, rollout

    def init(key: jax.Array) -> RunnerState:
        k_init, k_reset, _ = jax.random.split(key, 3)  # `train(key)` runs its updates on the third key
        params = model.init(k_init)
        obs, env_state = jax.vmap(core.reset, in_axes=(0, None))(jax.random.split(k_reset, n_envs), env_params)
        zeros = jnp.zeros(n_envs, jnp.float32)
        return RunnerState(params, tx_init(params), env_state, obs, zeros, jnp.full(n_envs, jnp.nan, jnp.float32))

    def log_prob(params: dict[str, Any], inputs: jax.Array, mask: jax.Array, action: jax.Array) -> jax.Array:
        logits, _ = model.policy(params, inputs)
        return stack.log_prob_entropy(logits, mask, action)[0]

    return Trainer(init, update, num_updates, stack, log_prob)


def make_train(config: PPOConfig, progress: Callable[[], None] | None = None,
               reward_fn: RewardFn | None = None) -> Callable[..., dict[str, Any]]:
    """A pure, jit-able `train(key) -> {"params", "metrics"}`; metrics have one entry per update.

    Metrics: `episode_return` (mean over copies of the last finished episode's team return, nan
    until one ends), `episodes_completed`, `mean_reward` (team reward per step of the rollout; all
    copies start together, so it depends on which part of the episode the rollout covered),
    `kpi/<name>` (rollout means), and `actor_loss`, `value_loss`, `entropy` (summed over action
    components), `approx_kl`, `clip_frac` (means over agents, epochs and minibatches).

    `progress`, if given, is called on the host after every update (of every seed under vmap),
    to drive a progress bar; it never feeds anything back into the computation.
    With `reward_fn` (see `make_trainer`) it is `train(key, reward_params)` and the env's reward is hidden.
    """
    trainer = make_trainer(config, reward_fn, progress)

    def train(key: jax.Array, reward_params: Any = None) -> dict[str, Any]:
        """Train from scratch; returns the final stacked params and per-update metrics."""
        if (reward_fn is None) != (reward_params is None):
            raise ValueError("train(key, reward_params) takes reward_params exactly when make_train got a reward_fn")
        runner = trainer.init(key)

        def body(runner: RunnerState, k: jax.Array) -> tuple[RunnerState, dict[str, jax.Array]]:
            runner, metrics, _ = trainer.update(runner, reward_params, k)
            return runner, metrics

        runner, metrics = jax.lax.scan(body, runner, update_keys(key, trainer.num_updates))
        return {"params": runner.params, "metrics": metrics}

    return train


def update_keys(key: jax.Array, num_updates: int) -> jax.Array:
    """The key of every update of `train(key)` ([num_updates, ...]); `Trainer.init(key)` uses the other splits."""
    return jax.random.split(jax.random.split(key, 3)[2], num_updates)


def _strong(tree: Any) -> Any:
    """The tree with weak types made strong, so a state read back from a file traces like the one it was saved from."""
    return jax.tree.map(lambda x: jax.lax.convert_element_type(x, x.dtype), tree)


class SeedsTrainer(NamedTuple):
    """PPO on several seeds at once, one compiled call per update, so a run can stop at any update and go on bitwise.

    `start(seed_keys [S, ...]) -> (runner, keys)`: every seed's `RunnerState` (leaves [S, ...]) and the
    key of each of its updates (`keys [S, num_updates, ...]`). `update(runner, keys[:, u]) -> (runner,
    metrics)`: update `u` of every seed, metrics [S] per name. The state between two updates is the
    runner and the keys, nothing else, and `update` reads nothing but them: saved and loaded back
    (`qin_env.bench.train`), it continues exactly as the run that never stopped.
    """

    start: Callable[[jax.Array], tuple[RunnerState, jax.Array]]
    update: Callable[[RunnerState, jax.Array], tuple[RunnerState, dict[str, jax.Array]]]
    num_updates: int


def make_seeds_trainer(config: PPOConfig) -> SeedsTrainer:
    """The jitted, seed-vmapped `start` and `update` of a config (see `SeedsTrainer`)."""
    trainer = make_trainer(config)

    def start(seed_keys: jax.Array) -> tuple[RunnerState, jax.Array]:
        runner = jax.vmap(trainer.init)(seed_keys)
        return _strong(runner), jax.vmap(lambda key: update_keys(key, trainer.num_updates))(seed_keys)

    def update(runner: RunnerState, keys: jax.Array) -> tuple[RunnerState, dict[str, jax.Array]]:
        runner, metrics, _ = jax.vmap(trainer.update, in_axes=(0, None, 0))(runner, None, keys)
        return _strong(runner), metrics

    return SeedsTrainer(jax.jit(start), jax.jit(update), trainer.num_updates)


def make_policy_fn(config: PPOConfig, params: dict[str, Any], greedy: bool = True) -> Policy:
    """Trained params (one seed's) as a policy `(key, obs_dict, env_params) -> action_dict` like qin_env.policies.

    Non-learners are played by `config.others_policy`; action masks are rebuilt from the
    observations, so the policy needs nothing the fixed policies do not get.
    """
    model = _build(config, config.env_params())
    stack, others = model.stack, POLICIES[config.others_policy]

    def policy(key: jax.Array, obs: dict[str, jax.Array], env_params: Params) -> dict[str, jax.Array]:
        k_others, k_sample = jax.random.split(key)
        logits, _ = model.policy(params, stack.network_inputs(obs, config.share_parameters))
        mask = stack.masks(action_masks_from_obs(obs, env_params))
        action = stack.greedy(logits, mask) if greedy else stack.sample(k_sample, logits, mask)
        return dict(others(k_others, obs, env_params)) | stack.unpad_actions(action)

    return policy


def evaluate_policy(policy_fn: Policy, scenario: str = "metro_qkd", overrides: Mapping[str, Any] | None = None,
                    episodes: int = 32, key: int | jax.Array = 0) -> dict[str, Any]:
    """Mean team return and KPIs of `policy_fn` over `episodes` full episodes of a seed (or key), compiled as one call.

    The episodes are `qin_env.rollout`'s, so `qin_env.bench.evaluate.evaluate_agent` of the same policy
    and seed returns the same numbers.
    """
    env_params = load_params(scenario, overrides)
    returns, kpis = episode_summary(compiled_rollouts(policy_fn, env_params)(seed_keys(key, episodes)))
    return {"mean_return": float(returns.mean()), "returns": returns,
            "kpis": {k: float(np.mean(v)) for k, v in kpis.items()}}
