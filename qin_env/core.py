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
from typing import Any

import jax
import jax.numpy as jnp

from qin_env import learning
from qin_env import physics as ph
from qin_env.network import fresh_pair_supply, link_channel
from qin_env.params import CHANNEL_MODES, Params
from qin_env.sampling import binomial_approx, poisson_approx

PLAIN, PQC, QKD, TELEPORT, SUPERDENSE = range(len(CHANNEL_MODES))
EVE_INTERCEPT_LEVELS = (0.25, 0.5, 1.0)
AGGREGATOR_COMPONENTS = ("channel", "payload", "keygen_share", "test_fraction", "memory_qubits", "throttle")
ORCHESTRATOR_COMPONENTS = ("episodes", "model_qubits")  # per aggregator, aggregator 0's first
EVE_COMPONENTS = ("target", "level")
LATENCY_CAP_SLOTS = 100.0  # a round still queued after 100 slots is abandoned; keeps the KPI finite

KPI_UNITS = {
    "latency_s": "s: longest end-to-end time of this slot's learning rounds (0 when none ran)",
    "slo_violation": "share of this slot's rounds slower than reward.slo_s",
    "leaked_bits": "bits of unencrypted update read by the eavesdropper this slot",
    "secret_key_bits": "secret key bits distilled this slot, all links",
    "qber": "highest estimated QBER over links that ran QKD this slot",
    "eve_detected": "1 if a tapped link raised a QBER alarm this slot",
    "epr_pairs": "entangled pairs heralded end to end this slot, all links",
    "mean_fidelity": "mean Werner fidelity of stored pairs (0 when none are stored)",
    "budget_violation": "qubits over-allocated (clipped) as a share of all qubit budgets",
    "model_quality": "mean quality of the orchestrator's per-aggregator models, in [0, 1]",
    "dropped_bits": "device bits refused by throttling or lost to buffer overflow this slot",
    "key_pool_bits": "secret key stored over all links after the slot",
    "stored_pairs": "pairs stored in memories over all links after the slot",
    "alarms": "links whose QBER estimate exceeded qkd.alarm_qber this slot",
    "delivered_updates": "aggregator updates that reached the orchestrator in time",
    "poisoned_updates": "poisoned updates accepted this slot",
    "throttled_bits": "device bits refused by throttling this slot",
}


def _pytree(cls: type) -> type:
    names = [f.name for f in dataclasses.fields(cls)]
    return jax.tree_util.register_dataclass(cls, data_fields=names, meta_fields=[])


@_pytree
@dataclasses.dataclass(frozen=True)
class State:
    """Everything that changes during an episode."""

    t: jax.Array
    pu_quality: jax.Array  # [P] local model quality of each learner
    quality: jax.Array  # [A] orchestrator's model of each aggregator's group
    backlog_bits: jax.Array  # [A] aggregator buffer
    key_bits: jax.Array  # [A] secret key pool
    pairs: jax.Array  # [A] stored entangled pairs
    pair_fidelity: jax.Array  # [A] mean Werner fidelity of the stored pairs
    qber_estimate: jax.Array  # [A]
    alarm: jax.Array  # [A] 0/1
    latency_s: jax.Array  # [A] last round's latency
    delivered: jax.Array  # [A] 0/1 last round reached the orchestrator in time
    model_qubits: jax.Array  # [A] computation qubits in use
    episodes: jax.Array  # [A] episodes of the last round
    tap: jax.Array  # [A] intercept fraction on each link (hidden)
    plain_bits: jax.Array  # [A] unencrypted bits sent last slot
    arrivals_bits: jax.Array  # [A] device bits arriving last slot
    eta_direct: jax.Array  # [A] channel transmittance last slot
    surge_start: jax.Array  # slot at which the surge begins (hidden)


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
                       "pair_fill", "pair_fidelity", "qber_estimate", "alarm")
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
    """Start an episode: initial pools and learners, a hidden surge time."""
    a, p = params.n_aggregators, params.n_pus
    lo, hi = params.traffic["surge_start_min_frac"], params.traffic["surge_start_max_frac"]
    frac = jax.random.uniform(key, (), minval=lo, maxval=hi)
    zeros = jnp.zeros(a, jnp.float32)
    q0 = params.learning["initial_quality"]
    state = State(
        t=jnp.int32(0),
        pu_quality=jnp.full(p, q0, jnp.float32),
        quality=jnp.full(a, q0, jnp.float32),
        backlog_bits=zeros,
        key_bits=jnp.full(a, params.qkd["initial_key_bits"], jnp.float32),
        pairs=zeros,
        pair_fidelity=jnp.full(a, 0.25, jnp.float32),
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
        surge_start=jnp.floor(frac * params.max_steps).astype(jnp.int32),
    )
    return observations(state, params), state


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
        (state.pair_fidelity - 0.25) / 0.75,
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


def action_masks(model_qubits: Any, params: Params, xp: Any = jnp) -> dict[str, Any]:
    """Every agent's flat bool action mask [..., sum(nvec)] from the computation qubits in use [..., A].

    The masks depend on nothing else that changes, so a face or a policy rebuilds them from
    `State.model_qubits` or from the aggregators' observations; `xp` is `jnp` (traceable) or `numpy`
    (on a host). Legacy classical aggregators can only send plain or post-quantum-encrypted payloads
    and have no quantum memory; a quantum aggregator may not ask for more memory than its budget
    leaves beside the computation qubits in use.
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
    rows = {f"aggregator_{i}": table[..., i, :] for i in range(a)}
    return {name: rows[name] if name in rows else xp.ones((*batch, sum(action_nvec(params, name))), bool)
            for name in agent_names(params)}


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


def _eve_taps(key: jax.Array, state: State, act: dict[str, jax.Array], params: Params) -> jax.Array:
    """Intercept fraction on each link this slot, by the scenario's eavesdropper model."""
    a, f = params.n_aggregators, params.eve["intercept_fraction"]
    mask = params.eve_link_mask.astype(jnp.float32)
    if params.eve_mode == "none":
        return jnp.zeros(a, jnp.float32)
    if params.eve_mode == "stationary":
        return mask * f
    if params.eve_mode == "bursty":
        u = jax.random.uniform(key, (a,))
        on = jnp.where(state.tap > 0, u >= params.eve["burst_stop_prob"], u < params.eve["burst_start_prob"])
        return on * mask * f
    if params.eve_mode == "targeted":
        score = state.plain_bits + 1e-3 * state.arrivals_bits
        return jax.nn.one_hot(jnp.argmax(score * mask - (1.0 - mask)), a) * f
    level = jnp.asarray(EVE_INTERCEPT_LEVELS)[act["eve_level"]]
    return jax.nn.one_hot(act["eve_target"] - 1, a) * level  # target 0 is "no tap": one_hot(-1) = 0


def _levels(values: tuple[float, ...], index: jax.Array) -> jax.Array:
    return jnp.asarray(values, jnp.float32)[index]


def step(
    key: jax.Array, state: State, actions: dict[str, jax.Array], params: Params, auto_reset: bool = False
) -> tuple[dict, State, dict, dict, dict, dict]:
    """Advance one slot. Returns (obs, state, rewards, terminations, truncations, infos).

    With `auto_reset=True` a truncated episode restarts at once: the returned obs and state are
    the new episode's and each agent's `infos[agent]["final_observation"]` keeps the last one.
    """
    key_step, key_reset = jax.random.split(key)
    obs, next_state, rewards, terms, truncs, infos = _step(key_step, state, actions, params)
    if not auto_reset:
        return obs, next_state, rewards, terms, truncs, infos
    done = truncs["__all__"]
    obs_reset, state_reset = reset(key_reset, params)
    new_state = jax.tree.map(lambda r, s: jnp.where(done, r, s), state_reset, next_state)
    new_obs = jax.tree.map(lambda r, s: jnp.where(done, r, s), obs_reset, obs)
    for name in obs:
        infos[name]["final_observation"] = obs[name]
    return new_obs, new_state, rewards, terms, truncs, infos


def _step(key: jax.Array, state: State, actions: dict[str, jax.Array], params: Params):
    k_eve, k_qber, k_pairs, k_traffic, k_poison = jax.random.split(key, 5)
    hw, qkd, traffic, rw = params.hw, params.qkd, params.traffic, params.reward
    dt = params.dt_s
    act = _decode(actions, params)
    quantum_node = ~params.is_classical

    # Eavesdropper and channel
    tap = _eve_taps(k_eve, state, act, params)
    time_s = state.t.astype(jnp.float32) * dt
    eta_segment, eta_direct, delay_s = link_channel(time_s, params)

    # Qubit budget: computation first, memory clipped to what is left, the excess reported
    width_req = _levels(params.model_qubits_levels, act["width"])
    memory_req = act["memory_qubits"].astype(jnp.float32)
    width = jnp.where(quantum_node, jnp.minimum(width_req, params.qubit_budget), width_req)
    memory = jnp.clip(params.qubit_budget - width, 0.0, memory_req)
    over_qubits = jnp.where(quantum_node, jnp.maximum(0.0, width_req + memory_req - params.qubit_budget),
                            memory_req)
    budget_violation = jnp.sum(over_qubits) / jnp.maximum(jnp.sum(params.qubit_budget), 1.0)

    # QKD: decoy BB84 on the direct channel, sampled QBER test, abort above threshold
    share = _levels(params.keygen_levels, act["keygen_share"])
    test_fraction = _levels(params.test_fraction_levels, act["test_fraction"])
    qkd_on = quantum_node & (share > 0)
    pulses = hw["pulse_rate_hz"] * dt * share * quantum_node
    e_true = ph.intercept_resend_qber(tap, hw["e_detector"])
    eta_qkd = hw["eta_bob"] * eta_direct
    gain = ph.bb84_gain(eta_qkd, hw["mu"], hw["y0"])
    qber_true = (0.5 * hw["y0"] - e_true * jnp.expm1(-eta_qkd * hw["mu"])) / gain
    sifted = 0.5 * pulses * gain
    n_test = jnp.floor(test_fraction * sifted)
    tested = qkd_on & (n_test >= 1.0)
    errors = binomial_approx(k_qber, n_test, qber_true)
    qber_est = jnp.where(tested, errors / jnp.maximum(n_test, 1.0), state.qber_estimate)
    alarm = tested & (qber_est > qkd["alarm_qber"])
    abort = tested & (qber_est > qkd["abort_qber"])
    rate = ph.decoy_bb84_key_rate_from_transmittance(
        eta_direct, mu=hw["mu"], eta_bob=hw["eta_bob"], y0=hw["y0"], e_detector=e_true, f_ec=hw["f_ec"])
    new_key = jnp.where(abort, 0.0, pulses * rate * (1.0 - test_fraction))
    # Sifting and error correction run on the classical link: about f h(Q) + 1 bits per sifted bit
    qkd_classical_bits = sifted * (1.0 + hw["f_ec"] * ph.binary_entropy(jnp.clip(qber_true, 0.0, 0.5)))
    key_pool = jnp.minimum(state.key_bits + new_key, qkd["key_pool_max_bits"])

    # Entanglement: heralded pairs in the rest of the quantum-channel time, stored in memory
    pair_rate, fresh_fidelity = fresh_pair_supply(eta_segment, tap, params)
    fresh = poisson_approx(k_pairs, pair_rate * dt * (1.0 - share) * quantum_node)
    stored_fidelity = ph.decohered_fidelity(state.pair_fidelity, dt, hw["memory_coherence_s"])
    capacity = memory * hw["memory_modes_per_qubit"]
    kept_new = jnp.minimum(fresh, capacity)
    kept_old = jnp.minimum(state.pairs, capacity - kept_new)
    pool = kept_new + kept_old
    pool_fidelity = jnp.where(
        pool > 0, (kept_new * fresh_fidelity + kept_old * stored_fidelity) / jnp.maximum(pool, 1e-9), 0.25)

    # Device traffic (surges are hidden), throttling, flood from impersonated devices
    throttle = _levels(params.throttle_levels, act["throttle"])
    surge_on = (state.t >= state.surge_start) & (
        state.t < state.surge_start + jnp.floor(traffic["surge_duration_frac"] * params.max_steps))
    device_rate = traffic["device_rate_hz"] * jnp.where(surge_on, traffic["surge_factor"], 1.0)
    arrivals_pu = poisson_approx(k_traffic, jnp.full(params.n_pus, device_rate * dt)) * traffic["device_bits"]
    admitted_pu = arrivals_pu * throttle[params.pu_parent]
    arrivals = learning.group_sum(arrivals_pu, params)
    admitted = learning.group_sum(admitted_pu, params)
    flood = params.eve["flood_bits"] * (tap > 0) * throttle
    throttled_bits = jnp.sum(arrivals - admitted)

    # The learning round and its payload
    episodes = _levels(params.episodes_levels, act["episodes"])
    active = episodes > 0
    mode = act["channel"]
    mode_ok = jnp.where(params.is_classical, mode <= PQC, True)
    payload_bits = _levels(params.payload_bits_levels, act["payload"])
    payload_qubits = _levels(params.payload_qubits_levels, act["payload"])
    classical_mode = (mode <= QKD) & mode_ok & active
    wire_bits = jnp.where(classical_mode, payload_bits * jnp.where(mode == PQC, 1.0 + hw["pqc_overhead"], 1.0), 0.0)
    key_cover = jnp.where(mode == QKD, jnp.minimum(1.0, key_pool / payload_bits), 1.0)
    key_used = jnp.where(classical_mode & (mode == QKD), key_cover * payload_bits, 0.0)
    dense_bits_per_pair = jnp.maximum(ph.superdense_capacity(jnp.clip(pool_fidelity, 0.25, 1.0)), 1e-3)
    pairs_needed = jnp.where(mode == TELEPORT, payload_qubits, payload_bits / dense_bits_per_pair)
    quantum_mode = (mode >= TELEPORT) & mode_ok & active
    pair_cover = jnp.where(quantum_mode, jnp.minimum(1.0, pool / pairs_needed), 1.0)
    pairs_used = jnp.where(quantum_mode, pair_cover * pairs_needed, 0.0)
    teleport_bits = jnp.where(quantum_mode & (mode == TELEPORT), 2.0 * pairs_used, 0.0)  # 2 cbits per qubit

    # Classical link: QKD post-processing first, then FIFO of backlog, devices, flood and payload
    link_bits = hw["classical_bandwidth_bps"] * dt
    data_capacity = jnp.maximum(link_bits - qkd_classical_bits - teleport_bits, 0.0)
    data_rate = jnp.maximum(data_capacity / dt, 1.0)
    queue_in = state.backlog_bits + admitted + flood + wire_bits
    backlog = queue_in - jnp.minimum(queue_in, data_capacity)
    overflow = jnp.maximum(0.0, backlog - traffic["buffer_bits"])
    backlog = backlog - overflow
    legit_share = (admitted + state.backlog_bits) / jnp.maximum(queue_in, 1e-9)
    dropped_bits = throttled_bits + jnp.sum(overflow * legit_share)

    # Latency of each round: compute, then transport by the chosen channel
    compute_s = episodes * params.learning["episode_time_s"] * width / 4.0
    pu_delay = ph.fiber_delay_s(params.pu_link_length_km)
    classical_s = (state.backlog_bits + admitted + wire_bits) / data_rate + jnp.where(mode == PQC,
                                                                                      hw["pqc_handshake_s"], 0.0)
    transport_s = jnp.where(classical_mode, classical_s, teleport_bits / data_rate) + delay_s
    latency = jnp.where(active, jnp.minimum(compute_s + pu_delay + transport_s, LATENCY_CAP_SLOTS * dt), 0.0)
    on_time = active & mode_ok & (latency <= dt)

    # Value of the delivered update: measuring quantum data destroys it; teleportation keeps it
    f_tel = ph.teleportation_fidelity(jnp.clip(pool_fidelity, 0.25, 1.0))
    fidelity_value = jnp.clip(3.0 * (f_tel - 2.0 / 3.0), 0.0, 1.0)  # above the classical 2/3 limit
    classical_value = 1.0 - params.quantum_share
    value = jnp.select(
        [mode == TELEPORT, mode == SUPERDENSE, mode == QKD],
        [pair_cover * fidelity_value, pair_cover * classical_value * (1.0 - 0.75 * tap),
         key_cover * classical_value],
        classical_value,
    ) * on_time
    leaked = jnp.where(classical_mode & (mode == PLAIN), tap * wire_bits, 0.0)
    authenticated = (mode == QKD) & (key_cover >= 1.0)
    poison_p = params.eve["impersonation_prob"] * (tap > 0) * active * ~authenticated
    poisoned = jax.random.uniform(k_poison, (params.n_aggregators,)) < poison_p

    # Learning
    pu_quality, quality = learning.surrogate_update(
        state.pu_quality, state.quality, episodes, width, admitted_pu, value, poisoned, params)

    # Rewards
    old_q, new_q = jnp.mean(state.quality), jnp.mean(quality)
    n_active = jnp.maximum(jnp.sum(active), 1)
    over_slo = jnp.where(active, jnp.minimum(jnp.maximum(0.0, latency / rw["slo_s"] - 1.0), 10.0), 0.0)
    biggest = max(params.payload_bits_levels)
    terms = {
        "progress": rw["w_progress"] * (new_q - old_q),
        "latency": -rw["w_latency"] * jnp.sum(over_slo) / n_active,
        "leak": -rw["w_leak"] * jnp.sum(leaked) / biggest,
        "budget": -rw["w_budget"] * budget_violation,
        "drop": -rw["w_drop"] * dropped_bits / jnp.maximum(jnp.sum(arrivals), 1.0),
    }
    team_reward = sum(terms.values())
    detected = alarm & (tap > 0)

    next_state = State(
        t=state.t + 1,
        pu_quality=pu_quality,
        quality=quality,
        backlog_bits=backlog,
        key_bits=key_pool - key_used,
        pairs=pool - pairs_used,
        pair_fidelity=jnp.where(pool - pairs_used > 0, pool_fidelity, 0.25),
        qber_estimate=qber_est,
        alarm=alarm.astype(jnp.float32),
        latency_s=latency,
        delivered=on_time.astype(jnp.float32) * (value > 0),
        model_qubits=width,
        episodes=episodes,
        tap=tap,
        plain_bits=jnp.where(mode == PLAIN, wire_bits, 0.0),
        arrivals_bits=arrivals,
        eta_direct=eta_direct,
        surge_start=state.surge_start,
    )
    stored = jnp.sum(next_state.pairs)
    kpi = {
        "latency_s": jnp.max(latency),
        "slo_violation": jnp.sum(active & (latency > rw["slo_s"])) / n_active,
        "leaked_bits": jnp.sum(leaked),
        "secret_key_bits": jnp.sum(new_key),
        "qber": jnp.max(jnp.where(tested, qber_est, 0.0)),
        "eve_detected": jnp.any(detected),
        "epr_pairs": jnp.sum(fresh),
        "mean_fidelity": jnp.where(stored > 0, jnp.sum(next_state.pairs * pool_fidelity) / jnp.maximum(stored, 1e-9),
                                   0.0),
        "budget_violation": budget_violation,
        "model_quality": new_q,
        "dropped_bits": dropped_bits,
        "key_pool_bits": jnp.sum(next_state.key_bits),
        "stored_pairs": stored,
        "alarms": jnp.sum(alarm),
        "delivered_updates": jnp.sum(next_state.delivered),
        "poisoned_updates": jnp.sum(poisoned),
        "throttled_bits": throttled_bits,
    }
    kpi = {k: jnp.nan_to_num(jnp.asarray(v, jnp.float32)) for k, v in kpi.items()}
    terms = {k: jnp.asarray(v, jnp.float32) for k, v in terms.items()}
    names = agent_names(params)
    rewards = {n: jnp.asarray(team_reward, jnp.float32) for n in names}
    if params.eve_mode == "agent":
        rewards["eve"] = (rw["w_eve_leak"] * jnp.sum(leaked) / biggest
                          - rw["w_eve_detected"] * jnp.sum(detected)).astype(jnp.float32)
    truncated = next_state.t >= params.max_steps
    terminations = {n: jnp.bool_(False) for n in names} | {"__all__": jnp.bool_(False)}
    truncations = {n: truncated for n in names} | {"__all__": truncated}
    masks = action_masks(next_state.model_qubits, params)
    infos: dict[str, dict[str, Any]] = {
        n: {"kpi": kpi, "reward_terms": terms, "action_mask": masks[n],
            "budget_clipped_qubits": jnp.sum(over_qubits)}
        for n in names
    }
    return observations(next_state, params), next_state, rewards, terminations, truncations, infos
