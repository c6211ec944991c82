"""The stages of one slot, in the order `docs/environment.md` narrates them.

Each stage is a pure function of the state, the decoded actions, the params and what earlier
stages produced, and returns a small named tuple; every quantity is an array over aggregators [A]
(one long-haul link each) or processing units [P]. Physics comes only from `qin_env.physics`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from qin_env import learning
from qin_env import physics as ph
from qin_env.network import LinkChannel, fresh_pair_supply, link_channel
from qin_env.params import CHANNEL_MODES, Params
from qin_env.sampling import binomial_count, fidelity_estimate, poisson_count

PLAIN, PQC, QKD, TELEPORT, SUPERDENSE = range(len(CHANNEL_MODES))
EVE_INTERCEPT_LEVELS = (0.25, 0.5, 1.0)
LATENCY_CAP_SLOTS = 100.0  # a round still queued after 100 slots is abandoned; keeps the KPI finite

Actions = dict[str, jax.Array]  # per-link level indices, from `core._decode`


def levels(values: tuple[float, ...], index: jax.Array) -> jax.Array:
    """The values of an action component's levels at `index`."""
    return jnp.asarray(values, jnp.float32)[index]


# ---------------------------------------------------------------- 1. eavesdropper and channel

class Channel(NamedTuple):
    """Eve's taps and each link's channel this slot."""

    tap: jax.Array  # share of qubits Eve intercepts and resends on each link (hidden)
    link: LinkChannel
    up: jax.Array  # a quantum node whose quantum channel is usable


def eve_taps(key: jax.Array, state: Any, act: Actions, params: Params) -> jax.Array:
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


def eavesdropper_and_channel(key: jax.Array, state: Any, act: Actions, params: Params) -> Channel:
    """Who taps which link, and what each link transmits at this slot's time."""
    link = link_channel(state.t.astype(jnp.float32) * params.dt_s, params)
    return Channel(eve_taps(key, state, act, params), link, link.up & ~params.is_classical)


# ---------------------------------------------------------------- 2. qubit budget

class Budget(NamedTuple):
    """How a quantum aggregator's qubits are split this slot, and what was asked beyond them."""

    width: jax.Array  # computation qubits of this slot's round (chosen last slot)
    memory: jax.Array  # memory qubits granted
    width_next: jax.Array  # computation qubits of the next slot's round
    over_qubits: jax.Array  # qubits asked for beyond the budget (clipped)
    violation: jax.Array  # over_qubits as a share of all budgets


def qubit_budget(state: Any, act: Actions, params: Params) -> Budget:
    """Memory gets what the width in use leaves; a new width applies from the next slot's round.

    Because a width change waits one slot, the aggregators' masks (built from the width in use)
    are exact: a team that respects them never exceeds a budget. Legacy classical aggregators
    have no qubits: their learners run a classical model of the smallest width level.
    """
    quantum = ~params.is_classical
    budget = params.qubit_budget
    width_req = levels(params.model_qubits_levels, act["width"])
    memory_req = act["memory_qubits"].astype(jnp.float32)
    width = state.model_qubits
    memory = jnp.where(quantum, jnp.clip(budget - width, 0.0, memory_req), 0.0)
    classical_width = float(params.model_qubits_levels[0])
    width_next = jnp.where(quantum, jnp.minimum(width_req, budget), classical_width)
    over = jnp.where(quantum, jnp.maximum(0.0, width + memory_req - budget) + jnp.maximum(0.0, width_req - budget),
                     memory_req + jnp.maximum(0.0, width_req - classical_width))
    return Budget(width, memory, width_next, over, jnp.sum(over) / jnp.maximum(jnp.sum(budget), 1.0))


# ---------------------------------------------------------------- 3. QKD

class KeyBlock(NamedTuple):
    """Sifted bits of each link collected toward the next finite-key block (reset when distilled)."""

    sifted: jax.Array  # sifted signal bits
    single_key: jax.Array  # single-photon bits in the key set
    single_test: jax.Array  # single-photon bits in the test set
    phase_errors: jax.Array  # single-photon phase errors expected in the key set
    ec_bits: jax.Array  # error-correction leakage of the key set, bits
    test_bits: jax.Array  # test bits compared
    test_errors: jax.Array  # errors among them


def empty_block(n_links: int) -> KeyBlock:
    """A key block with nothing collected."""
    return KeyBlock(*(jnp.zeros(n_links, jnp.float32) for _ in KeyBlock._fields))


class Qkd(NamedTuple):
    """One slot of decoy BB84 on each link."""

    qber_estimate: jax.Array  # test sample's error rate (the last one where nothing was tested)
    tested: jax.Array  # a test sample was compared this slot
    alarm: jax.Array  # the estimate exceeded qkd.alarm_qber
    new_key: jax.Array  # secret key distilled this slot (a full block), bits
    key_pool: jax.Array  # key stored after distillation, before this slot's payload uses it
    block: KeyBlock  # the block collecting toward the next distillation
    classical_bits: jax.Array  # sifting and error-correction traffic on the classical link


def qkd_slot(key: jax.Array, state: Any, act: Actions, channel: Channel, qkd_time_s: jax.Array,
             params: Params) -> Qkd:
    """Pulses in the QKD share of channel time, a sampled QBER test, key distilled from full blocks.

    Sifted bits accumulate over slots into blocks of `qkd.block_bits`; a full block is distilled
    with a finite-key length (Lim et al. 2014) or discarded when its test QBER exceeds
    `qkd.abort_qber`. The alarm is raised per slot, from that slot's test sample.
    """
    hw, qkd = params.hw, params.qkd
    test_fraction = levels(params.test_fraction_levels, act["test_fraction"])
    pulses = hw["pulse_rate_hz"] * qkd_time_s * channel.up
    e_true = ph.intercept_resend_qber(channel.tap, hw["e_detector"])
    eta = hw["eta_bob"] * channel.link.eta_direct
    gain = ph.bb84_gain(eta, hw["mu"], hw["y0"])
    qber = ph.bb84_qber(eta, hw["mu"], hw["y0"], e_true)
    sifted = 0.5 * pulses * gain
    n_test = jnp.floor(test_fraction * sifted)
    tested = n_test >= 1.0
    errors = binomial_count(key, n_test, qber)
    qber_est = jnp.where(tested, errors / jnp.maximum(n_test, 1.0), state.qber_estimate)
    alarm = tested & (qber_est > qkd["alarm_qber"])

    single_share, e1 = ph.decoy_single_photon(eta, hw["mu"], hw["y0"], e_true)
    n_key = sifted - n_test
    old = state.key_block
    block = KeyBlock(
        sifted=old.sifted + sifted,
        single_key=old.single_key + n_key * single_share,
        single_test=old.single_test + n_test * single_share,
        phase_errors=old.phase_errors + n_key * single_share * e1,
        ec_bits=old.ec_bits + n_key * hw["f_ec"] * ph.binary_entropy(qber),
        test_bits=old.test_bits + n_test,
        test_errors=old.test_errors + errors,
    )
    full = block.sifted >= qkd["block_bits"]
    length = ph.finite_key_length_from_counts(
        block.single_key, block.single_test, block.phase_errors / jnp.maximum(block.single_key, 1e-30),
        block.ec_bits, eps_sec=qkd["eps_sec"], eps_cor=qkd["eps_cor"])
    passed = block.test_errors <= qkd["abort_qber"] * block.test_bits
    new_key = jnp.where(full & passed, length, 0.0)
    block = KeyBlock(*(jnp.where(full, 0.0, field) for field in block))
    # Sifting and error correction run on the classical link: about f h(Q) + 1 bits per sifted bit
    classical_bits = sifted * (1.0 + hw["f_ec"] * ph.binary_entropy(qber))
    key_pool = jnp.minimum(state.key_bits + new_key, qkd["key_pool_max_bits"])
    return Qkd(qber_est, tested, alarm, new_key, key_pool, block, classical_bits)


# ---------------------------------------------------------------- 4. entanglement

class Entanglement(NamedTuple):
    """Pairs heralded, tested and stored on each link this slot."""

    heralded: jax.Array  # pairs heralded end to end
    pool: jax.Array  # pairs in memory, before this slot's payload uses them
    pool_fidelity: jax.Array  # their mean Werner fidelity at the end of the slot (0.25 when empty)
    fidelity_estimate: jax.Array  # what the node knows of its fresh pairs' fidelity (observed)


def entanglement_slot(key: jax.Array, state: Any, channel: Channel, budget: Budget, pair_time_s: jax.Array,
                      params: Params) -> Entanglement:
    """Heralded pairs in the entanglement share of channel time, a sacrificed test sample, storage.

    Fresh pairs are born uniformly over the slot and decohere until its end (the age-averaged
    fidelity); stored ones decohere for the whole slot. A share `hardware.pair_test_fraction`
    of the fresh pairs is measured to estimate their fidelity (binomial noise), and only that
    estimate is observed. Memory holds `memory_modes_per_qubit` pairs per memory qubit, fresh first.
    """
    hw, dt = params.hw, params.dt_s
    k_pairs, k_test = jax.random.split(key)
    rate, heralded_fidelity = fresh_pair_supply(channel.link.eta_segment, channel.tap, params)
    heralded = poisson_count(k_pairs, rate * pair_time_s * channel.up)
    fresh_fidelity = ph.age_averaged_fidelity(heralded_fidelity, dt, hw["memory_coherence_s"])
    n_test = jnp.floor(hw["pair_test_fraction"] * heralded)
    estimate, has_estimate = fidelity_estimate(k_test, n_test, fresh_fidelity)
    stored_fidelity = ph.decohered_fidelity(state.pair_fidelity, dt, hw["memory_coherence_s"])
    capacity = budget.memory * hw["memory_modes_per_qubit"]
    kept_new = jnp.minimum(heralded - n_test, capacity)
    kept_old = jnp.minimum(state.pairs, capacity - kept_new)
    pool = kept_new + kept_old
    pool_fidelity = jnp.where(
        pool > 0, (kept_new * fresh_fidelity + kept_old * stored_fidelity) / jnp.maximum(pool, 1e-9), 0.25)
    return Entanglement(heralded, pool, pool_fidelity, jnp.where(has_estimate, estimate, state.fidelity_estimate))


# ---------------------------------------------------------------- 5. traffic

class Traffic(NamedTuple):
    """Device traffic under each aggregator this slot."""

    surge: jax.Array  # a surge is on under the aggregator (hidden)
    admitted_pu: jax.Array  # [P] bits each learner admitted
    arrivals: jax.Array  # bits that arrived at the aggregator
    admitted: jax.Array  # bits admitted past the throttle
    flood: jax.Array  # bits Eve injects on a tapped link
    throttled_bits: jax.Array  # bits refused by throttling, all links


def traffic_slot(key: jax.Array, state: Any, act: Actions, channel: Channel, params: Params) -> Traffic:
    """Device arrivals (a hidden Markov-modulated surge per aggregator), throttling, Eve's flood.

    Each aggregator's devices switch into a surge with probability `traffic.surge_start_prob` per
    slot and out of it with `traffic.surge_stop_prob`, so surges start at random times, last a
    geometric number of slots and differ between episodes; arrivals are Poisson.
    """
    traffic = params.traffic
    k_surge, k_arrivals = jax.random.split(key)
    u = jax.random.uniform(k_surge, (params.n_aggregators,))
    surge = jnp.where(state.surge, u >= traffic["surge_stop_prob"], u < traffic["surge_start_prob"])
    rate = traffic["device_rate_hz"] * jnp.where(surge, traffic["surge_factor"], 1.0)
    arrivals_pu = poisson_count(k_arrivals, rate[params.pu_parent] * params.dt_s) * traffic["device_bits"]
    throttle = levels(params.throttle_levels, act["throttle"])
    admitted_pu = arrivals_pu * throttle[params.pu_parent]
    arrivals = learning.group_sum(arrivals_pu, params)
    admitted = learning.group_sum(admitted_pu, params)
    flood = params.eve["flood_bits"] * (channel.tap > 0) * throttle
    return Traffic(surge, admitted_pu, arrivals, admitted, flood, jnp.sum(arrivals - admitted))


# ---------------------------------------------------------------- 6. payload

class Payload(NamedTuple):
    """The learning round's update and what carrying it takes."""

    episodes: jax.Array  # training episodes of the round (0: no round)
    mode: jax.Array  # channel mode index
    classical: jax.Array  # sent as bits on the classical link (plain, pqc, qkd)
    quantum: jax.Array  # sent with pairs (teleport, superdense)
    information: jax.Array  # share of the update's information its size carries
    wire_bits: jax.Array  # bits on the classical link for a classical mode
    key_cover: jax.Array  # share of a QKD payload the key pool covers
    key_used: jax.Array  # key bits consumed
    pair_cover: jax.Array  # share of a quantum payload the pairs cover
    pairs_used: jax.Array  # pairs consumed
    teleport_bits: jax.Array  # two classical bits per teleported qubit
    superdense_bits: jax.Array  # classical bits delivered by superdense coding


def superdense_bits_per_pair(channel: Channel, fidelity: jax.Array, params: Params) -> jax.Array:
    """Bits one pair carries by superdense coding: its encoded qubit crosses the link or is lost."""
    # Pauli-encoded qubit arrives with eta*eta_d, then carries 2 - S(rho_W) bits (Bowen, PRA 63, 022302)
    survive = channel.link.eta_direct * params.hw["eta_detector"]
    return survive * ph.superdense_capacity(jnp.clip(fidelity, 0.25, 1.0))


def payload_slot(act: Actions, channel: Channel, qkd: Qkd, ent: Entanglement, params: Params) -> Payload:
    """Bits, key and pairs the chosen channel spends on this slot's update.

    Legacy classical aggregators can send only plain or post-quantum payloads; a round whose
    aggregator asks for another mode sends nothing.
    """
    hw, lp = params.hw, params.learning
    episodes = levels(params.episodes_levels, act["episodes"])
    active = episodes > 0
    mode = act["channel"]
    allowed = active & jnp.where(params.is_classical, mode <= PQC, True)
    payload_bits = levels(params.payload_bits_levels, act["payload"])
    payload_qubits = levels(params.payload_qubits_levels, act["payload"])
    classical = allowed & (mode <= QKD)
    quantum = allowed & (mode >= TELEPORT)
    wire_bits = jnp.where(classical, payload_bits * jnp.where(mode == PQC, 1.0 + hw["pqc_overhead"], 1.0), 0.0)
    key_cover = jnp.where(mode == QKD, jnp.minimum(1.0, qkd.key_pool / payload_bits), 1.0)
    key_used = jnp.where(classical & (mode == QKD), key_cover * payload_bits, 0.0)
    dense = superdense_bits_per_pair(channel, ent.pool_fidelity, params)
    pairs_needed = jnp.where(mode == TELEPORT, payload_qubits, payload_bits / jnp.maximum(dense, 1e-30))
    pair_cover = jnp.where(quantum, jnp.minimum(1.0, ent.pool / pairs_needed), 1.0)
    pairs_used = jnp.where(quantum, jnp.minimum(pair_cover * pairs_needed, ent.pool), 0.0)
    teleport_bits = jnp.where(quantum & (mode == TELEPORT), 2.0 * pairs_used, 0.0)  # 2 cbits per qubit
    superdense_bits = jnp.where(quantum & (mode == SUPERDENSE), pairs_used * dense, 0.0)
    information = jnp.where(mode == TELEPORT, learning.payload_information(payload_qubits, lp["payload_scale_qubits"]),
                            learning.payload_information(payload_bits, lp["payload_scale_bits"]))
    return Payload(episodes, mode, classical, quantum, information, wire_bits, key_cover, key_used,
                   pair_cover, pairs_used, teleport_bits, superdense_bits)


# ---------------------------------------------------------------- 7. transport and latency

class Transport(NamedTuple):
    """The classical link's queue after the slot and each round's end-to-end latency."""

    backlog: jax.Array  # bits queued at the aggregator after the slot
    dropped_bits: jax.Array  # device bits refused or lost to overflow, all links
    latency: jax.Array  # s, end-to-end time of the round (0 when none ran)
    on_time: jax.Array  # the round arrived within the slot


def transport_slot(state: Any, channel: Channel, budget: Budget, qkd: Qkd, traffic: Traffic, payload: Payload,
                   superdense_time_s: jax.Array, params: Params) -> Transport:
    """One FIFO classical link per aggregator; QKD post-processing goes first (a priority rule).

    Everything else queues in arrival order: the backlog, device data, Eve's flood, then the
    update's own bits (classical payload or teleportation's two bits per qubit). A round's latency
    is compute, the learners' fiber, its wait in the queue, a PQC handshake, the time its
    superdense qubits occupy the quantum channel, and propagation.
    """
    hw, dt = params.hw, params.dt_s
    link_bits = hw["classical_bandwidth_bps"] * dt
    data_capacity = jnp.maximum(link_bits - qkd.classical_bits, 0.0)
    data_rate = jnp.maximum(data_capacity / dt, 1.0)
    own_bits = payload.wire_bits + payload.teleport_bits
    queue_in = state.backlog_bits + traffic.admitted + traffic.flood + own_bits
    backlog = queue_in - jnp.minimum(queue_in, data_capacity)
    overflow = jnp.maximum(0.0, backlog - params.traffic["buffer_bits"])
    legit_share = (traffic.admitted + state.backlog_bits) / jnp.maximum(queue_in, 1e-9)
    dropped_bits = traffic.throttled_bits + jnp.sum(overflow * legit_share)

    active = payload.episodes > 0
    compute_s = payload.episodes * params.learning["episode_time_s"] * budget.width / 4.0
    pu_delay = ph.fiber_delay_s(params.pu_link_length_km)
    queue_s = jnp.where(own_bits > 0, (state.backlog_bits + traffic.admitted + own_bits) / data_rate, 0.0)
    handshake_s = jnp.where(payload.classical & (payload.mode == PQC), hw["pqc_handshake_s"], 0.0)
    dense = payload.quantum & (payload.mode == SUPERDENSE)
    propagation_s = jnp.where(dense, channel.link.quantum_delay_s + superdense_time_s, channel.link.classical_delay_s)
    total = compute_s + pu_delay + queue_s + handshake_s + propagation_s
    latency = jnp.where(active, jnp.minimum(total, LATENCY_CAP_SLOTS * dt), 0.0)
    sent = payload.classical | payload.quantum
    return Transport(backlog - overflow, dropped_bits, latency, sent & (latency <= dt))


# ---------------------------------------------------------------- 8. what arrives

class Delivery(NamedTuple):
    """What each round's update is worth on arrival, what Eve read and what she injected."""

    value: jax.Array  # quality the delivered update supports (0 when none arrived)
    leaked_bits: jax.Array  # plain update bits Eve read
    poisoned: jax.Array  # a poisoned update was accepted


def delivery_slot(key: jax.Array, channel: Channel, ent: Entanglement, payload: Payload, transport: Transport,
                  params: Params) -> Delivery:
    """Value of each delivered update, leaks and poisoning.

    Measuring quantum data to send it classically destroys it, so classical modes carry only the
    classical share of a hybrid update; teleportation over a Werner pair of fidelity F acts as a
    depolarising channel that shrinks the update by (4F - 1)/3; coverage by key or pairs and the
    payload's size scale what arrives. An update not authenticated by a fully key-covered QKD
    payload may be replaced by Eve's on a tapped link.
    """
    mode = payload.mode
    shrink = (4.0 * jnp.clip(ent.pool_fidelity, 0.25, 1.0) - 1.0) / 3.0  # Werner depolarising parameter
    classical_share = 1.0 - params.quantum_share
    value = jnp.select(
        [mode == TELEPORT, mode == SUPERDENSE, mode == QKD],
        [payload.pair_cover * shrink, payload.pair_cover * classical_share, payload.key_cover * classical_share],
        classical_share,
    ) * payload.information * transport.on_time
    leaked = jnp.where(payload.classical & (mode == PLAIN), channel.tap * payload.wire_bits, 0.0)
    authenticated = (mode == QKD) & (payload.key_cover >= 1.0)
    poison_p = params.eve["impersonation_prob"] * (channel.tap > 0) * (payload.episodes > 0) * ~authenticated
    poisoned = jax.random.uniform(key, (params.n_aggregators,)) < poison_p
    return Delivery(value, leaked, poisoned)


# ---------------------------------------------------------------- 9. rewards

REWARD_TERMS = ("quality", "latency", "leak", "budget", "drop")


def reward_terms(quality: jax.Array, budget: Budget, traffic: Traffic, payload: Payload, transport: Transport,
                 delivery: Delivery, params: Params) -> dict[str, jax.Array]:
    """The team reward's terms: quality held above the initial quality, minus weighted penalties."""
    rw = params.reward
    active = payload.episodes > 0
    n_active = jnp.maximum(jnp.sum(active), 1)
    over_slo = jnp.where(active, jnp.minimum(jnp.maximum(0.0, transport.latency / rw["slo_s"] - 1.0), 10.0), 0.0)
    return {
        "quality": rw["w_quality"] * (jnp.mean(quality) - params.learning["initial_quality"]),
        "latency": -rw["w_latency"] * jnp.sum(over_slo) / n_active,
        "leak": -rw["w_leak"] * jnp.sum(delivery.leaked_bits) / max(params.payload_bits_levels),
        "budget": -rw["w_budget"] * budget.violation,
        "drop": -rw["w_drop"] * transport.dropped_bits / jnp.maximum(jnp.sum(traffic.arrivals), 1.0),
    }
