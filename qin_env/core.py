"""Functional core: `reset(key, params)` and `step(key, state, actions, params)`, pure JAX.

One step is one slot of `episode.dt_s` seconds. Inside, every quantity is an array over
aggregators [A] (one long-haul link each) or processing units [P]; agent dicts exist only at the
boundary. Contract of `step`: actions are integer arrays of each agent's `action_nvec` shape with
values inside it. Keys and shapes are static, so a missing or unknown agent and a wrong shape
raise when the step is traced; values are traced, so out-of-range indices are clipped inside the
core (the faces check them and raise). Randomness comes only from `key`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from qin_env import federated, learning
from qin_env import stages as sg
from qin_env.params import CHANNEL_MODES, Params
from qin_env.stages import EVE_INTERCEPT_LEVELS, PLAIN, PQC, QKD, REWARD_TERMS, SUPERDENSE, TELEPORT, KeyBlock
from qin_env.version import ENV_VERSION

__all__ = ["CHANNEL_MODES", "ENV_VERSION", "EVE_INTERCEPT_LEVELS", "PLAIN", "PQC", "QKD", "REWARD_TERMS",
           "SUPERDENSE", "TELEPORT"]
AGGREGATOR_COMPONENTS = ("channel", "payload", "keygen_share", "test_fraction", "memory_qubits", "throttle")
ORCHESTRATOR_COMPONENTS = ("episodes", "model_qubits")  # per aggregator, aggregator 0's first
EVE_COMPONENTS = ("target", "level")

KPI_UNITS = {
    "latency_s": "s: longest end-to-end time of this slot's learning rounds (0 when none ran)",
    "slo_violation": "share of this slot's rounds slower than reward.slo_s",
    "leaked_bits": "bits of unencrypted update read by the eavesdropper this slot",
    "secret_key_bits": "secret key bits distilled this slot from full finite-key blocks, all links",
    "qber": "highest estimated QBER over links that ran QKD this slot",
    "eve_detected": "1 if a tapped link raised a QBER alarm this slot",
    "epr_pairs": "entangled pairs heralded end to end this slot, all links",
    "mean_fidelity": "mean Werner fidelity of stored pairs (0 when none are stored)",
    "fidelity_estimate": "mean fidelity estimate of fresh pairs the agents see, over quantum and hybrid links "
                         "(0.25 before any test; 0 without such links)",
    "pairs_used": "pairs consumed by teleported or superdense-coded updates this slot, all links",
    "superdense_bits": "classical bits delivered by superdense coding this slot, all links",
    "links_up": "links with a usable quantum channel this slot (quantum or hybrid node, satellite in view)",
    "budget_violation": "qubits over-allocated (clipped) as a share of all qubit budgets",
    "model_quality": "surrogate: mean quality of the orchestrator's per-aggregator models, in [0, 1]; federated: the "
                     "global model's held-out test accuracy",
    "dropped_bits": "device bits refused by throttling or lost to buffer overflow this slot",
    "key_pool_bits": "secret key stored over all links after the slot",
    "stored_pairs": "pairs stored in memories over all links after the slot",
    "alarms": "links whose QBER estimate exceeded qkd.alarm_qber this slot",
    "delivered_updates": "aggregator updates that reached the orchestrator in time",
    "poisoned_updates": "poisoned updates accepted this slot",
    "throttled_bits": "device bits refused by throttling this slot",
    "update_bits": "bits of update payload sent this slot, all links (classical wire bits and teleportation's "
                   "two bits per qubit)",
    "extraction_agreement": "share of probe inputs on which Eve's copy of the global model and the global model "
                            "agree (federated model; 0 under the surrogate, which has no model to copy)",
}


def _pytree(cls: type) -> type:
    names = [f.name for f in dataclasses.fields(cls)]
    return jax.tree_util.register_dataclass(cls, data_fields=names, meta_fields=[])


@_pytree
@dataclasses.dataclass(frozen=True)
class State:
    """Everything that changes during an episode; the hidden fields are never observed."""

    t: jax.Array
    pu_quality: jax.Array  # [P] local model quality of each learner
    quality: jax.Array  # [A] orchestrator's model of each aggregator's group
    backdoor: jax.Array  # [A] share of quality lost to planted backdoors (hidden)
    backlog_bits: jax.Array  # [A] aggregator buffer
    key_bits: jax.Array  # [A] secret key pool
    key_block: KeyBlock  # [A] sifted bits collected toward the next finite-key block
    pairs: jax.Array  # [A] stored entangled pairs
    pair_fidelity: jax.Array  # [A] mean Werner fidelity of the stored pairs (hidden)
    fidelity_estimate: jax.Array  # [A] estimated fidelity of the last tested fresh pairs (0.25: none yet)
    qber_estimate: jax.Array  # [A]
    alarm: jax.Array  # [A] 0/1
    latency_s: jax.Array  # [A] last round's latency
    delivered: jax.Array  # [A] 0/1 last round reached the orchestrator in time
    model_qubits: jax.Array  # [A] computation qubits of the next round (the width in use)
    episodes: jax.Array  # [A] episodes of the last round
    tap: jax.Array  # [A] intercept fraction on each link (hidden)
    plain_bits: jax.Array  # [A] unencrypted bits sent last slot
    arrivals_bits: jax.Array  # [A] device bits arriving last slot
    eta_direct: jax.Array  # [A] channel transmittance last slot
    surge: jax.Array  # [A] device surge under the aggregator (hidden)
    # the federated model's weights (qin_env.federated; D = C = 0 under the surrogate)
    weights: jax.Array  # [A, D, C] each group's model
    global_weights: jax.Array  # [D, C] the orchestrator's global model
    eve_weights: jax.Array  # [D, C] Eve's copy of it, fitted from the plaintext updates she read (hidden)


# ---------------------------------------------------------------- agents and spaces

def agent_names(params: Params) -> list[str]:
    """PettingZoo names of the agents of a scenario (eve only when it is a learning agent)."""
    names = ["orchestrator"] + [f"aggregator_{i}" for i in range(params.n_aggregators)]
    return [*names, "eve"] if params.eve_mode == "agent" else names


def action_nvec(params: Params, agent: str) -> tuple[int, ...]:
    """Sizes of the MultiDiscrete action components of `agent`."""
    if agent == "orchestrator":
        return (len(params.episodes_levels), len(params.model_qubits_levels)) * params.n_aggregators
    if agent == "eve":
        return (params.n_aggregators + 1, len(EVE_INTERCEPT_LEVELS))
    return (len(CHANNEL_MODES), len(params.payload_bits_levels), len(params.keygen_levels),
            len(params.test_fraction_levels), params.memory_levels, len(params.throttle_levels))


ORCHESTRATOR_FIELDS = ("quality", "local_quality", "latency", "delivered", "buffer_fill", "key_fill",
                       "pair_fill", "fidelity_estimate", "qber_estimate", "alarm")
AGGREGATOR_FIELDS = (*ORCHESTRATOR_FIELDS, "model_qubits", "episodes", "arrivals", "channel", "quantum_share", "time")
EVE_FIELDS = ("plain_traffic", "alarm", "tapping")


def obs_size(params: Params, agent: str) -> int:
    """Length of `agent`'s observation vector (every entry in [0, 1])."""
    if agent == "orchestrator":
        return len(ORCHESTRATOR_FIELDS) * params.n_aggregators + 2
    if agent == "eve":
        return len(EVE_FIELDS) * params.n_aggregators + 1
    return len(AGGREGATOR_FIELDS)


def named_action(params: Params, agent: str, **levels: int) -> jax.Array:
    """`agent`'s action from level indices by component name (`*_COMPONENTS`); unnamed components are 0.

    The orchestrator's components repeat per aggregator: `named_action(params, "orchestrator",
    episodes=3, model_qubits=1)` sets them on every link.
    """
    names = {"orchestrator": ORCHESTRATOR_COMPONENTS, "eve": EVE_COMPONENTS}.get(agent, AGGREGATOR_COMPONENTS)
    unknown = sorted(set(levels) - set(names))
    if unknown:
        raise ValueError(f"{agent} has no action component {', '.join(unknown)}; its components: {', '.join(names)}")
    one = [int(levels.get(name, 0)) for name in names]
    action = one * params.n_aggregators if agent == "orchestrator" else one
    nvec = action_nvec(params, agent)
    for i, (value, n) in enumerate(zip(action, nvec, strict=True)):
        if not 0 <= value < n:
            raise ValueError(f"{agent} {names[i % len(names)]}={value} is outside the allowed range [0, {n - 1}]")
    return jnp.asarray(action, jnp.int32)


def default_actions(params: Params) -> dict[str, jax.Array]:
    """All-zero actions for every agent (a valid action of each space)."""
    return {a: jnp.zeros(len(action_nvec(params, a)), jnp.int32) for a in agent_names(params)}


# ---------------------------------------------------------------- reset

def reset(key: jax.Array, params: Params) -> tuple[dict[str, jax.Array], State]:
    """Start an episode: initial pools and learners, the smallest model width, no surge.

    `key` is unused (every episode starts alike; randomness begins with the first step) and kept
    so that every face and rollout splits keys the same way.
    """
    del key
    a, p = params.n_aggregators, params.n_pus
    zeros = jnp.zeros(a, jnp.float32)
    q0 = params.learning["initial_quality"]
    state = State(
        t=jnp.int32(0),
        pu_quality=jnp.full(p, q0, jnp.float32),
        quality=jnp.full(a, q0, jnp.float32),
        backdoor=zeros,
        backlog_bits=zeros,
        key_bits=jnp.full(a, params.qkd["initial_key_bits"], jnp.float32),
        key_block=sg.empty_block(a),
        pairs=zeros,
        pair_fidelity=jnp.full(a, 0.25, jnp.float32),
        fidelity_estimate=jnp.full(a, 0.25, jnp.float32),
        qber_estimate=zeros,
        alarm=zeros,
        latency_s=zeros,
        delivered=zeros,
        model_qubits=jnp.full(a, params.model_qubits_levels[0], jnp.float32),
        episodes=zeros,
        tap=zeros,
        plain_bits=zeros,
        arrivals_bits=zeros,
        eta_direct=params.eta_fiber ** params.repeater_segments,
        surge=jnp.zeros(a, bool),
        weights=jnp.zeros((a, *_weight_shape(params)), jnp.float32),
        global_weights=jnp.zeros(_weight_shape(params), jnp.float32),
        eve_weights=jnp.zeros(_weight_shape(params), jnp.float32),
    )
    if params.learning_model == "federated":  # the untrained model: its accuracy is that of all-zero scores
        initial = federated.accuracy(state.global_weights, params.fl)
        state = dataclasses.replace(state, quality=jnp.full(a, initial), pu_quality=jnp.full(p, initial))
    return observations(state, params), state


def _weight_shape(params: Params) -> tuple[int, int]:
    """(features with bias, classes) of a federated model; (0, 0) under the surrogate."""
    return (federated.MAX_FEATURES + 1, federated.N_CLASSES) if params.learning_model == "federated" else (0, 0)


# ---------------------------------------------------------------- observations

def _link_features(state: State, params: Params) -> jax.Array:
    """[A, 10] normalised per-link features shared by the orchestrator and the aggregators."""
    slo = params.reward["slo_s"]
    pu_mean = learning.group_mean(state.pu_quality, params)
    capacity = jnp.maximum(params.qubit_budget * params.hw["memory_modes_per_qubit"], 1.0)
    cols = [
        state.quality,
        pu_mean,
        state.latency_s / (2.0 * slo),
        state.delivered,
        state.backlog_bits / params.traffic["buffer_bits"],
        state.key_bits / jnp.maximum(params.qkd["key_pool_max_bits"], 1.0),
        state.pairs / capacity,
        (state.fidelity_estimate - 0.25) / 0.75,
        state.qber_estimate / 0.5,
        state.alarm,
    ]
    return jnp.clip(jnp.stack(cols, axis=1), 0.0, 1.0)


def observations(state: State, params: Params) -> dict[str, jax.Array]:
    """Every agent's observation: bounded float32 vectors, fields as in *_FIELDS."""
    links = _link_features(state, params)
    time_frac = jnp.clip(state.t / params.max_steps, 0.0, 1.0)
    mean_quality = jnp.mean(state.quality)
    obs = {"orchestrator": jnp.concatenate([links.reshape(-1), jnp.stack([time_frac, mean_quality])])}
    max_episodes = max(max(params.episodes_levels), 1)
    eta_score = jnp.clip((jnp.log10(jnp.maximum(state.eta_direct, 1e-12)) + 6.0) / 6.0, 0.0, 1.0)
    expected = jnp.maximum(params.traffic["buffer_bits"], 1.0)
    own = jnp.stack([
        state.model_qubits / jnp.maximum(params.qubit_budget, 1.0),
        state.episodes / max_episodes,
        state.arrivals_bits / expected,
        eta_score,
        params.quantum_share,
        jnp.full(params.n_aggregators, time_frac),
    ], axis=1)
    agg = jnp.clip(jnp.concatenate([links, own], axis=1), 0.0, 1.0)
    for i in range(params.n_aggregators):
        obs[f"aggregator_{i}"] = agg[i]
    if params.eve_mode == "agent":
        biggest = max(params.payload_bits_levels)
        eve = jnp.stack([state.plain_bits / biggest, state.alarm, (state.tap > 0).astype(jnp.float32)], axis=1)
        obs["eve"] = jnp.concatenate([jnp.clip(eve, 0.0, 1.0).reshape(-1), time_frac[None]])
    return {k: v.astype(jnp.float32) for k, v in obs.items()}


HIDDEN_FIELDS = ("tap", "surge", "pair_fidelity", "backdoor")  # what `privileged_view` reveals, each [A]


def privileged_view(state: State, params: Params) -> dict[str, jax.Array]:
    """The hidden state an oracle reads and no observation shows: taps, surges, true pair fidelities, backdoors.

    The one privileged reader of the core, for the `oracle` reference policy (`qin_env.policies`):
    a benchmark's ceiling is what a policy that knows them achieves. Each field is float32 [A].
    """
    del params
    return {name: jnp.asarray(getattr(state, name), jnp.float32) for name in HIDDEN_FIELDS}


def action_masks(model_qubits: Any, params: Params, xp: Any = jnp) -> dict[str, Any]:
    """Every agent's flat bool action mask [..., sum(nvec)] from the computation qubits in use [..., A].

    The masks depend on nothing else that changes, so a face or a policy rebuilds them from
    `State.model_qubits` or from the aggregators' observations; `xp` is `jnp` (traceable) or `numpy`
    (on a host). Legacy classical aggregators can only send plain or post-quantum-encrypted payloads,
    have no quantum memory and run a classical model of the smallest width level; a quantum
    aggregator may not ask for more memory than its budget leaves beside the width in use, nor the
    orchestrator for a width beyond the budget. A team that respects the masks never exceeds a budget.
    """
    qubits = xp.asarray(model_qubits, xp.float32)
    batch, a = qubits.shape[:-1], params.n_aggregators
    nvec = dict(zip(AGGREGATOR_COMPONENTS, action_nvec(params, "aggregator_0"), strict=True))
    quantum = ~xp.asarray(params.is_classical)[:, None]
    free = (xp.asarray(params.qubit_budget, xp.float32) - qubits)[..., None]
    memory = xp.arange(nvec["memory_qubits"], dtype=xp.float32)
    allowed = {name: xp.ones((a, n), bool) for name, n in nvec.items()}
    allowed["channel"] = quantum | (xp.arange(nvec["channel"]) <= PQC)
    allowed["memory_qubits"] = (memory == 0) | (quantum & (memory <= free))
    table = xp.concatenate([xp.broadcast_to(m, (*batch, a, m.shape[-1])) for m in allowed.values()], axis=-1)
    masks = {f"aggregator_{i}": table[..., i, :] for i in range(a)}
    widths = xp.asarray(params.model_qubits_levels, xp.float32)
    width_ok = xp.where(quantum, widths <= xp.asarray(params.qubit_budget, xp.float32)[:, None],
                        xp.arange(widths.shape[0]) == 0)
    orchestrator = xp.concatenate([xp.ones((a, len(params.episodes_levels)), bool), width_ok], axis=1).reshape(-1)
    masks["orchestrator"] = xp.broadcast_to(orchestrator, (*batch, orchestrator.shape[0]))
    if params.eve_mode == "agent":
        masks["eve"] = xp.ones((*batch, sum(action_nvec(params, "eve"))), bool)
    return {name: masks[name] for name in agent_names(params)}


# ---------------------------------------------------------------- step

def _check_actions(actions: dict[str, Any], params: Params) -> None:
    """Refuse, at trace time, an action dict whose agents or shapes are not the scenario's."""
    names = agent_names(params)
    unknown, missing = sorted(set(actions) - set(names)), [n for n in names if n not in actions]
    if unknown or missing:
        raise ValueError(f"actions name agents {sorted(actions)}; this scenario's agents are {names}"
                         + (f" (unknown: {', '.join(unknown)})" if unknown else "")
                         + (f" (missing: {', '.join(missing)})" if missing else ""))
    for name in names:
        expected = (len(action_nvec(params, name)),)
        if jnp.shape(actions[name]) != expected:
            raise ValueError(f"action of {name} has shape {jnp.shape(actions[name])}; its space needs shape {expected} "
                             f"(core.action_nvec: {action_nvec(params, name)})")


def _decode(actions: dict[str, jax.Array], params: Params) -> dict[str, jax.Array]:
    """Agent dicts to per-link index arrays, each clipped into its component's range."""
    _check_actions(actions, params)
    a = params.n_aggregators
    orch = jnp.asarray(actions["orchestrator"], jnp.int32).reshape(a, len(ORCHESTRATOR_COMPONENTS))
    agg = jnp.stack([jnp.asarray(actions[f"aggregator_{i}"], jnp.int32) for i in range(a)])
    nvec_agg = jnp.asarray(action_nvec(params, "aggregator_0"))
    agg = jnp.clip(agg, 0, nvec_agg - 1)
    out = {
        "episodes": jnp.clip(orch[:, 0], 0, len(params.episodes_levels) - 1),
        "width": jnp.clip(orch[:, 1], 0, len(params.model_qubits_levels) - 1),
    }
    out.update({name: agg[:, j] for j, name in enumerate(AGGREGATOR_COMPONENTS)})
    if params.eve_mode == "agent":
        eve = jnp.asarray(actions["eve"], jnp.int32)
        out["eve_target"] = jnp.clip(eve[0], 0, a)
        out["eve_level"] = jnp.clip(eve[1], 0, len(EVE_INTERCEPT_LEVELS) - 1)
    return out


def step(
    key: jax.Array, state: State, actions: dict[str, jax.Array], params: Params, auto_reset: bool = False
) -> tuple[dict, State, dict, dict, dict, dict]:
    """Advance one slot. Returns (obs, state, rewards, terminations, truncations, infos).

    With `auto_reset=True` a truncated episode restarts at once: the returned obs and state are
    the new episode's and each agent's `infos[agent]["final_observation"]` keeps the last one.
    """
    key_step, key_reset = jax.random.split(key)
    obs, next_state, rewards, terminations, truncations, infos = _step(key_step, state, actions, params)
    if not auto_reset:
        return obs, next_state, rewards, terminations, truncations, infos
    done = truncations["__all__"]
    obs_reset, state_reset = reset(key_reset, params)
    new_state = jax.tree.map(lambda r, s: jnp.where(done, r, s), state_reset, next_state)
    new_obs = jax.tree.map(lambda r, s: jnp.where(done, r, s), obs_reset, obs)
    for name in obs:
        infos[name]["final_observation"] = obs[name]
    return new_obs, new_state, rewards, terminations, truncations, infos


def _channel_time(state: State, act: dict[str, jax.Array], channel: sg.Channel, params: Params):
    """(superdense, QKD, entanglement) seconds of each link's quantum channel this slot.

    A superdense update reserves the channel for the encoded qubits it plans to send (sized by the
    node's fidelity estimate and its memory); QKD gets the chosen share of the rest.
    """
    dt, hw = params.dt_s, params.hw
    dense = (act["channel"] == SUPERDENSE) & channel.up & (sg.levels(params.episodes_levels, act["episodes"]) > 0)
    bits = sg.levels(params.payload_bits_levels, act["payload"])
    per_pair = sg.superdense_bits_per_pair(channel, state.fidelity_estimate, params)
    room = jnp.maximum(params.qubit_budget - state.model_qubits, 0.0) * hw["memory_modes_per_qubit"]
    planned = jnp.where(dense, jnp.minimum(room, bits / jnp.maximum(per_pair, 1e-30)), 0.0)
    superdense_s = jnp.minimum(dt, planned / hw["pair_attempt_rate_hz"])
    share = sg.levels(params.keygen_levels, act["keygen_share"])
    return superdense_s, (dt - superdense_s) * share, (dt - superdense_s) * (1.0 - share)


def _step(key: jax.Array, state: State, actions: dict[str, jax.Array], params: Params):
    k_eve, k_qkd, k_pairs, k_traffic, k_poison = jax.random.split(key, 5)
    k_fed = jax.random.fold_in(k_poison, 1)  # a new stream: the surrogate's draws stay as they were
    act = _decode(actions, params)
    channel = sg.eavesdropper_and_channel(k_eve, state, act, params)
    budget = sg.qubit_budget(state, act, params)
    superdense_s, qkd_s, pair_s = _channel_time(state, act, channel, params)
    qkd = sg.qkd_slot(k_qkd, state, act, channel, qkd_s, params)
    ent = sg.entanglement_slot(k_pairs, state, channel, budget, pair_s, params)
    traffic = sg.traffic_slot(k_traffic, state, act, channel, params)
    payload = sg.payload_slot(act, channel, qkd, ent, params)
    transport = sg.transport_slot(state, channel, budget, qkd, traffic, payload, superdense_s, params)
    delivery = sg.delivery_slot(k_poison, channel, ent, payload, transport, params)
    if params.learning_model == "federated":
        fed = federated.federated_update(k_fed, state, act, budget, traffic, ent, payload, delivery, params)
        learners = learning.Learners(fed.test_accuracy[params.pu_parent], fed.test_accuracy, state.backdoor)
        model = Model(fed.weights, fed.global_weights, fed.eve_weights, fed.model_quality, fed.extraction_agreement)
        held = fed.return_quality  # the global model's accuracy (a distilling student's own)
    else:
        learners = learning.surrogate_update(state.pu_quality, state.quality, state.backdoor, payload.episodes,
                                             budget.width, traffic.admitted_pu, delivery.value, delivery.poisoned,
                                             params)
        model = Model(state.weights, state.global_weights, state.eve_weights, jnp.mean(learners.quality),
                      jnp.float32(0.0))
        held = learners.quality
    reward_terms = sg.reward_terms(held, budget, traffic, payload, transport, delivery, params)

    pairs_left = jnp.maximum(ent.pool - payload.pairs_used, 0.0)
    next_state = State(
        t=state.t + 1,
        pu_quality=learners.pu_quality,
        quality=learners.quality,
        backdoor=learners.backdoor,
        backlog_bits=transport.backlog,
        key_bits=jnp.maximum(qkd.key_pool - payload.key_used, 0.0),
        key_block=qkd.block,
        pairs=pairs_left,
        pair_fidelity=jnp.where(pairs_left > 0, ent.pool_fidelity, 0.25),
        fidelity_estimate=ent.fidelity_estimate,
        qber_estimate=qkd.qber_estimate,
        alarm=qkd.alarm.astype(jnp.float32),
        latency_s=transport.latency,
        delivered=(delivery.value > 0).astype(jnp.float32),
        model_qubits=budget.width_next,
        episodes=payload.episodes,
        tap=channel.tap,
        plain_bits=jnp.where(payload.mode == PLAIN, payload.wire_bits, 0.0),
        arrivals_bits=traffic.arrivals,
        eta_direct=channel.link.eta_direct,
        surge=traffic.surge,
        weights=model.weights,
        global_weights=model.global_weights,
        eve_weights=model.eve_weights,
    )
    return _outputs(next_state, channel, budget, qkd, ent, traffic, payload, transport, delivery, model,
                    reward_terms, params)


class Model(NamedTuple):
    """The learning model's weights and figures after the slot (the surrogate's: its proxy quality, no weights)."""

    weights: jax.Array
    global_weights: jax.Array
    eve_weights: jax.Array
    model_quality: jax.Array
    extraction_agreement: jax.Array


def _kpis(next_state: State, channel: sg.Channel, budget: sg.Budget, qkd: sg.Qkd, ent: sg.Entanglement,
          traffic: sg.Traffic, payload: sg.Payload, transport: sg.Transport, delivery: sg.Delivery, model: Model,
          params: Params) -> dict[str, jax.Array]:
    """The slot's KPIs (`KPI_UNITS` says what each is)."""
    active = payload.episodes > 0
    stored = jnp.sum(next_state.pairs)
    quantum = ~params.is_classical
    detected = qkd.alarm & (channel.tap > 0)
    kpi = {
        "latency_s": jnp.max(transport.latency),
        "slo_violation": jnp.sum(active & (transport.latency > params.reward["slo_s"]))
                         / jnp.maximum(jnp.sum(active), 1),
        "leaked_bits": jnp.sum(delivery.leaked_bits),
        "secret_key_bits": jnp.sum(qkd.new_key),
        "qber": jnp.max(jnp.where(qkd.tested, qkd.qber_estimate, 0.0)),
        "eve_detected": jnp.any(detected),
        "epr_pairs": jnp.sum(ent.heralded),
        "mean_fidelity": jnp.sum(next_state.pairs * next_state.pair_fidelity) / jnp.maximum(stored, 1e-9),
        "fidelity_estimate": jnp.sum(jnp.where(quantum, next_state.fidelity_estimate, 0.0))
                             / jnp.maximum(jnp.sum(quantum), 1),
        "pairs_used": jnp.sum(payload.pairs_used),
        "superdense_bits": jnp.sum(payload.superdense_bits),
        "links_up": jnp.sum(channel.up),
        "budget_violation": budget.violation,
        "model_quality": model.model_quality,
        "dropped_bits": transport.dropped_bits,
        "key_pool_bits": jnp.sum(next_state.key_bits),
        "stored_pairs": stored,
        "alarms": jnp.sum(qkd.alarm),
        "delivered_updates": jnp.sum(next_state.delivered),
        "poisoned_updates": jnp.sum(delivery.poisoned),
        "throttled_bits": traffic.throttled_bits,
        "update_bits": jnp.sum(payload.wire_bits + payload.teleport_bits),
        "extraction_agreement": model.extraction_agreement,
    }
    return {name: jnp.asarray(value, jnp.float32) for name, value in kpi.items()}


def _outputs(next_state: State, channel: sg.Channel, budget: sg.Budget, qkd: sg.Qkd, ent: sg.Entanglement,
             traffic: sg.Traffic, payload: sg.Payload, transport: sg.Transport, delivery: sg.Delivery, model: Model,
             reward_terms: dict[str, jax.Array], params: Params):
    """The step's return: observations, rewards, terminations, truncations and infos."""
    kpi = _kpis(next_state, channel, budget, qkd, ent, traffic, payload, transport, delivery, model, params)
    reward_terms = {name: jnp.asarray(value, jnp.float32) for name, value in reward_terms.items()}
    team_reward = sum(reward_terms.values())
    names = agent_names(params)
    rewards = {n: jnp.asarray(team_reward, jnp.float32) for n in names}
    if params.eve_mode == "agent":
        rw = params.reward
        detected = qkd.alarm & (channel.tap > 0)
        rewards["eve"] = (rw["w_eve_leak"] * jnp.sum(delivery.leaked_bits) / max(params.payload_bits_levels)
                          - rw["w_eve_detected"] * jnp.sum(detected)).astype(jnp.float32)
    truncated = next_state.t >= params.max_steps
    terminations = {n: jnp.bool_(False) for n in names} | {"__all__": jnp.bool_(False)}
    truncations = {n: truncated for n in names} | {"__all__": truncated}
    masks = action_masks(next_state.model_qubits, params)
    infos: dict[str, dict[str, Any]] = {
        n: {"kpi": kpi, "reward_terms": reward_terms, "action_mask": masks[n],
            "budget_clipped_qubits": jnp.sum(budget.over_qubits)}
        for n in names
    }
    if params.learning_model == "federated":
        for n in names:
            infos[n]["test_accuracy"] = next_state.quality  # [A] held-out accuracy of each group's model
    return observations(next_state, params), next_state, rewards, terminations, truncations, infos
