"""What the return measures in version 1: every slot's quality counts, and the trade-offs are real."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import constant_actions, rollout

from qin_env import core, learning
from qin_env.params import load_params
from qin_env.policies import random_policy
from qin_env.rollout import compiled_rollouts, episode_summary, seed_keys

KEY = jax.random.key(0)
CLEAN = {"eve.mode": "none"}
SEND = {"channel": core.PQC, "payload": 1, "memory_qubits": 0}


def test_training_only_late_returns_clearly_less_than_training_throughout():
    params = load_params("metro_qkd", CLEAN)
    train = constant_actions(params, aggregator=SEND)
    idle = constant_actions(params, orchestrator={"episodes": 0}, aggregator=SEND)

    def late(key, obs, params):
        return jax.tree.map(lambda a, b: jnp.where(obs["orchestrator"][-2] >= 0.75, a, b), train, idle)

    (throughout, _), _ = rollout(params, KEY, params.max_steps, actions=train)
    (only_late, _), _ = rollout(params, KEY, params.max_steps, policy=late)
    assert float(jnp.sum(only_late)) < 0.6 * float(jnp.sum(throughout))


def test_a_poisoned_group_stays_lower_and_only_clean_delivered_rounds_remove_the_backdoor():
    tapped = load_params("metro_qkd", {"eve.mode": "stationary", "eve.links": [1], "eve.impersonation_prob": 1.0})
    clean = load_params("metro_qkd", CLEAN)
    acts = constant_actions(clean, aggregator=SEND)
    _, poisoned = rollout(tapped, KEY, 100, actions=acts)
    _, healthy = rollout(clean, KEY, 100, actions=acts)
    assert float(poisoned.backdoor[1]) > 0.5 and float(healthy.backdoor[1]) == 0.0
    assert float(poisoned.quality[1]) < 0.7 * float(healthy.quality[1])
    assert float(jnp.mean(learning.group_mean(poisoned.pu_quality, tapped)[1])) < float(healthy.quality[1])

    step = jax.jit(core.step)
    idle = constant_actions(clean, orchestrator={"episodes": 0}, aggregator=SEND)
    state = dataclasses.replace(healthy, backdoor=jnp.asarray([0.0, 0.5, 0.0], jnp.float32))
    for _ in range(5):
        _, state, _, _, _, _ = step(KEY, state, idle, clean)
    assert float(state.backdoor[1]) == pytest.approx(0.5)  # no round, no repair
    for _ in range(5):
        _, state, _, _, _, _ = step(KEY, state, acts, clean)
    repair = float(clean.learning["poison_repair"])
    assert float(state.backdoor[1]) == pytest.approx(0.5 * (1 - repair) ** 5, rel=1e-4)


def test_larger_payloads_raise_the_attainable_quality_with_diminishing_returns():
    params = load_params("metro_qkd", CLEAN)
    held = []
    for level in range(len(params.payload_bits_levels)):
        (_, kpi), _ = rollout(params, KEY, params.max_steps, actions=constant_actions(
            params, orchestrator={"episodes": 3, "model_qubits": 2}, aggregator={**SEND, "payload": level}))
        held.append(float(jnp.mean(kpi["model_quality"][-50:])))
    bits = np.asarray(params.payload_bits_levels)
    assert held == sorted(held) and held[0] < held[-1] - 0.1
    per_bit = np.diff(held) / np.diff(bits)
    assert per_bit[1] < per_bit[0]


def test_device_surges_fill_buffers_and_slow_rounds_and_start_at_different_times():
    params = load_params("device_surge")
    acts = constant_actions(params, aggregator={"channel": core.PQC, "payload": 1})

    def record(t):
        return {"surge": t.state.surge, "backlog": t.state.backlog_bits, "latency": t.state.latency_s}

    records = jax.device_get(compiled_rollouts(lambda k, o, p: acts, params, record)(seed_keys(1, 8)))
    surge = np.asarray(records["surge"], bool)  # [E, T, A]
    assert 0.05 < surge.mean() < 0.5
    onsets = {tuple(np.flatnonzero(np.diff(surge[e, :, 0].astype(int)) == 1)) for e in range(8)}
    assert len(onsets) >= 4  # surges start at different slots in different episodes
    late = np.zeros_like(surge)
    late[:, 5:] = surge[:, :-5] & surge[:, 5:]  # five slots into a surge
    assert records["backlog"][late].mean() > 10 * records["backlog"][~surge].mean() + 1e4
    assert records["latency"][late].mean() > 2 * records["latency"][~surge].mean()


def test_teleportation_latency_includes_its_bits_waiting_in_the_classical_queue():
    params = load_params("metro_qkd", CLEAN)
    acts = constant_actions(params, orchestrator={"episodes": 0},
                            aggregator={"channel": core.TELEPORT, "keygen_share": 0, "memory_qubits": 6})
    _, state = rollout(params, KEY, 3, actions=acts)  # fill the memories
    send = constant_actions(params, aggregator={"channel": core.TELEPORT, "keygen_share": 0, "memory_qubits": 6,
                                                "payload": 0})
    step = jax.jit(core.step)
    latency = []
    for backlog in (0.0, 1.0e5):
        queued = dataclasses.replace(state, backlog_bits=jnp.full(3, backlog, jnp.float32))
        _, after, _, _, _, infos = step(KEY, queued, send, params)
        assert float(infos["orchestrator"]["kpi"]["pairs_used"]) > 0.0
        latency.append(float(after.latency_s[0]))
    # the two classical bits per qubit wait behind the backlog on a link of classical_bandwidth_bps
    assert latency[1] - latency[0] == pytest.approx(1.0e5 / float(params.hw["classical_bandwidth_bps"]), rel=1e-4)


@pytest.mark.parametrize("scenario", ["metro_qkd", "teacher_student"])
def test_masked_random_play_never_breaks_a_qubit_budget(scenario):
    params = load_params(scenario, {"episode.max_steps": 60})
    _, kpi = episode_summary(compiled_rollouts(random_policy, params)(seed_keys(0, 4)))
    assert float(np.max(kpi["budget_violation"])) == 0.0
