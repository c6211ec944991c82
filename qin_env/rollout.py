"""The one episode loop: `rollout` under `lax.scan`, its batched form, and the key convention every loop follows.

Key convention (gymnax's `RolloutWrapper` splits the same way); the only place it is written down:

- the episodes of an integer seed have the keys `split(jax.random.key(seed), episodes)` (`seed_keys`);
- an episode key `k` splits into `k_reset, k_run = split(k)`, and `core.reset(k_reset, params)` starts it;
- slot t splits `split(k_run, steps)[t]` into `(k_act, k_step)`: the policy acts on `k_act`,
  `core.step` advances on `k_step` (`episode_keys`).

Policies are `(key, obs_dict, params) -> action_dict` (`qin_env.policies`). A policy marked
`privileged = True` (the `oracle`) also finds `core.privileged_view` of the current state under
`obs[HIDDEN]`; no other policy ever sees it, and records keep the agents' observations only. Evaluation, demonstration
recording, rendering and benchmarks all run episodes through `rollout`, and loops that must call an
agent on the host once per slot take their keys from `episode_keys`, so the same policy and seed give
the same numbers everywhere.

``` python
records, last_state = rollout(heuristic_policy, params, jax.random.key(0))  # {"reward": [T], "kpi": {..: [T]}}
returns, kpis = episode_summary(jax.jit(lambda k: rollouts(heuristic_policy, params, k))(seed_keys(0, 16)))
```
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import numpy as np

from qin_env import core
from qin_env.params import Params

Policy = Callable[[jax.Array, dict[str, jax.Array], Params], dict[str, jax.Array]]
TEAM = "orchestrator"  # every team agent is paid the same reward; the orchestrator's infos carry the KPIs
HIDDEN = "hidden"  # the observation key under which a privileged policy reads the hidden state


def act(policy: Policy, key: jax.Array, obs: dict[str, jax.Array], state: core.State,
        params: Params) -> dict[str, jax.Array]:
    """`policy`'s actions at `state`: a privileged policy gets `core.privileged_view(state)` beside `obs`."""
    if getattr(policy, "privileged", False):
        obs = {**obs, HIDDEN: core.privileged_view(state, params)}
    return policy(key, obs, params)


class Transition(NamedTuple):
    """One slot as a `record` function sees it."""

    obs: dict[str, jax.Array]  # what the agents saw
    actions: dict[str, jax.Array]
    next_obs: dict[str, jax.Array]  # after the step (the next episode's first one under auto-reset)
    state: core.State  # after the step
    rewards: dict[str, jax.Array]
    done: jax.Array  # the episode ended at this slot
    infos: dict[str, dict[str, Any]]


Record = Callable[[Transition], Any]


def team_record(transition: Transition) -> dict[str, Any]:
    """What evaluation keeps of a slot: the team reward and the KPIs (`core.KPI_UNITS`)."""
    return {"reward": transition.rewards[TEAM], "kpi": transition.infos[TEAM]["kpi"]}


def as_key(seed: int | jax.Array) -> jax.Array:
    """A typed PRNG key: `jax.random.key(seed)` of an integer seed; a key (typed, or raw uint32) as it is."""
    if isinstance(seed, int | np.integer):
        return jax.random.key(int(seed))
    if jax.dtypes.issubdtype(seed.dtype, jax.dtypes.prng_key):
        return seed
    return jax.random.wrap_key_data(seed)  # a legacy `PRNGKey`: the same bits as `key(seed)`


def seed_keys(seed: int | jax.Array, episodes: int) -> jax.Array:
    """The episode keys [episodes] of a seed."""
    return jax.random.split(as_key(seed), episodes)


def episode_keys(key: jax.Array, steps: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """`(k_reset, act_keys [steps], step_keys [steps])` of one episode key."""
    k_reset, k_run = jax.random.split(key)
    pairs = jax.vmap(jax.random.split)(jax.random.split(k_run, steps))
    return k_reset, pairs[:, 0], pairs[:, 1]


def rollout(policy: Policy, params: Params, key: jax.Array, record: Record = team_record, steps: int | None = None,
            auto_reset: bool = False) -> tuple[Any, core.State]:
    """One episode of `policy` under `lax.scan`: `record` of every slot stacked on a leading [T] axis, the last state.

    `steps` defaults to `params.max_steps`, one whole episode; with `auto_reset` a longer scan runs
    on into new episodes (`core.step`'s auto-reset) on the same keys.
    """
    steps = params.max_steps if steps is None else steps
    k_reset, act_keys, step_keys = episode_keys(key, steps)
    obs, state = core.reset(k_reset, params)

    def slot(carry: tuple, keys: tuple[jax.Array, jax.Array]) -> tuple[tuple, Any]:
        obs, state = carry
        k_act, k_step = keys
        actions = act(policy, k_act, obs, state, params)
        next_obs, state, rewards, terminations, truncations, infos = core.step(k_step, state, actions, params,
                                                                            auto_reset)
        done = terminations["__all__"] | truncations["__all__"]
        return (next_obs, state), record(Transition(obs, actions, next_obs, state, rewards, done, infos))

    (_, state), records = jax.lax.scan(slot, (obs, state), (act_keys, step_keys))
    return records, state


def rollouts(policy: Policy, params: Params, keys: jax.Array, record: Record = team_record,
             steps: int | None = None) -> Any:
    """`rollout` of every episode key [E] at once (`jax.vmap`): records on leading [E, T] axes."""
    return jax.vmap(lambda k: rollout(policy, params, k, record, steps)[0])(keys)


def compiled_rollouts(policy: Policy, params: Params, record: Record = team_record) -> Callable[[jax.Array], Any]:
    """A jitted `keys [E] -> records [E, T]` of whole episodes of `policy` on `params`.

    `params` are closed over, not passed in: XLA then folds them as constants, as a host loop over
    `jax.jit(lambda k, s, a: core.step(k, s, a, params))` does, and the two compute the same floats.
    """
    return jax.jit(lambda keys: rollouts(policy, params, keys, record))


def episode_summary(records: Any) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per-episode true return and mean KPIs of `team_record`s [..., T], reduced on the host in float64."""
    records = jax.device_get(records)
    returns = np.sum(np.asarray(records["reward"], np.float64), axis=-1)
    return returns, {name: np.mean(np.asarray(v, np.float64), axis=-1) for name, v in records["kpi"].items()}
