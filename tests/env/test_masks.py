"""Action masks: one function of the computation qubits in use, the same on host, device and in the step."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qin_env import core
from qin_env.params import CHANNEL_MODES, load_params
from qin_env.policies import action_masks_from_obs, random_policy

SCENARIOS = ["metro_qkd", "adversarial_eve", "many_to_one_fusion", "teacher_student"]


def _widths(params, rng: np.random.Generator, shape: tuple[int, ...] = ()) -> np.ndarray:
    """Random computation qubits in use [*shape, A]: the scenario's levels, capped by each budget as the step does."""
    levels = rng.choice(np.asarray(params.model_qubits_levels, np.float32), (*shape, params.n_aggregators))
    return np.where(params.is_classical, levels, np.minimum(levels, params.qubit_budget)).astype(np.float32)


def _components(params, mask: np.ndarray) -> dict[str, np.ndarray]:
    """An aggregator's flat mask split into its named components."""
    nvec = core.action_nvec(params, "aggregator_0")
    return dict(zip(core.AGGREGATOR_COMPONENTS, np.split(np.asarray(mask), np.cumsum(nvec)[:-1]), strict=True))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_numpy_and_jax_masks_agree_batched_or_not(scenario):
    params = load_params(scenario)
    rng = np.random.default_rng(0)
    for shape in [(), (7,), (3, 5)]:
        widths = _widths(params, rng, shape)
        on_host = core.action_masks(widths, params, xp=np)
        traced = jax.jit(lambda w: core.action_masks(w, params))(jnp.asarray(widths))
        assert list(on_host) == core.agent_names(params) and set(traced) == set(on_host)
        for agent, mask in on_host.items():
            assert mask.dtype == bool and mask.shape == (*shape, sum(core.action_nvec(params, agent)))
            np.testing.assert_array_equal(mask, np.asarray(traced[agent]))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_masks_forbid_quantum_channels_to_classical_nodes_and_memory_over_the_budget(scenario):
    params = load_params(scenario)
    rng = np.random.default_rng(1)
    budget, classical = np.asarray(params.qubit_budget), np.asarray(params.is_classical)
    for _ in range(10):
        widths = _widths(params, rng)
        masks = core.action_masks(widths, params, xp=np)
        for i in range(params.n_aggregators):
            parts = _components(params, masks[f"aggregator_{i}"])
            channels = [c <= core.PQC or not classical[i] for c in range(len(CHANNEL_MODES))]
            memory = [m == 0 or (not classical[i] and m <= budget[i] - widths[i]) for m in range(params.memory_levels)]
            assert parts["channel"].tolist() == channels
            assert parts["memory_qubits"].tolist() == memory
            assert all(parts[c].all() for c in core.AGGREGATOR_COMPONENTS if c not in ("channel", "memory_qubits"))
        widths_ok = [[level <= budget[i] if not classical[i] else j == 0
                      for j, level in enumerate(params.model_qubits_levels)] for i in range(params.n_aggregators)]
        n_ep = len(params.episodes_levels)
        expected = np.concatenate([np.r_[np.ones(n_ep, bool), w] for w in widths_ok])
        np.testing.assert_array_equal(masks["orchestrator"], expected)
        assert all(masks[a].all() for a in masks if a == "eve")


@pytest.fixture(scope="module", params=["metro_qkd", "adversarial_eve", "teacher_student"])
def played(request):
    """Four 12-slot episodes of random play, widths too: params, obs, widths and the step's masks [4, 12, ...]."""
    params = load_params(request.param)

    def slot(carry, key):
        obs, state = carry
        k_act, k_step = jax.random.split(key)
        obs, state, _, _, _, infos = core.step(k_step, state, random_policy(k_act, obs, params), params)
        return (obs, state), (obs, state.model_qubits, {a: infos[a]["action_mask"] for a in infos})

    def episode(key):
        k_reset, k_run = jax.random.split(key)
        return jax.lax.scan(slot, core.reset(k_reset, params), jax.random.split(k_run, 12))[1]

    return params, *jax.device_get(jax.jit(jax.vmap(episode))(jax.random.split(jax.random.key(3), 4)))


def test_masks_of_the_widths_in_use_equal_the_step_infos(played):
    params, _, widths, step_masks = played
    assert len(np.unique(widths)) > 1
    expected = core.action_masks(widths, params, xp=np)
    for agent in core.agent_names(params):
        np.testing.assert_array_equal(step_masks[agent], expected[agent])


def test_masks_from_observations_equal_the_core_masks_of_the_state(played):
    params, obs, widths, _ = played
    rebuilt, truth = action_masks_from_obs(obs, params), core.action_masks(widths, params)
    one = action_masks_from_obs({a: o[2, 5] for a, o in obs.items()}, params)
    for agent in core.agent_names(params):
        assert rebuilt[agent].shape == (4, 12, sum(core.action_nvec(params, agent)))
        np.testing.assert_array_equal(np.asarray(rebuilt[agent]), np.asarray(truth[agent]))
        np.testing.assert_array_equal(np.asarray(one[agent]), np.asarray(truth[agent][2, 5]))
