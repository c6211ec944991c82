"""Property tests: random valid parameters and random actions never produce NaN, inf or out-of-box observations."""

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qin_env.params import load_params
from qin_env.policies import random_policy
from qin_env.rollout import rollout
from qin_env.sampling import binomial_approx, poisson_approx

# Shapes stay fixed (3 aggregators, 3 units, 30 steps) so one compilation serves every example;
# the values of the physical and traffic parameters vary across their whole allowed ranges.
OVERRIDES = st.fixed_dictionaries({
    "topology.link_length_min_km": st.floats(0.0, 100.0),
    "hardware.alpha_db_per_km": st.floats(0.0, 1.0),
    "hardware.mu": st.floats(1e-3, 5.0),
    "hardware.eta_bob": st.floats(0.0, 1.0),
    "hardware.e_detector": st.floats(0.0, 0.5),
    "hardware.source_fidelity": st.floats(0.25, 1.0),
    "hardware.memory_coherence_s": st.floats(1e-6, 1e3),
    "hardware.classical_bandwidth_bps": st.floats(1.0, 1e9),
    "hardware.swap_success": st.floats(0.0, 1.0),
    "traffic.device_rate_hz": st.floats(0.0, 1e4),
    "traffic.surge_factor": st.floats(1.0, 1000.0),
    "eve.intercept_fraction": st.floats(0.0, 1.0),
    "eve.flood_bits": st.floats(0.0, 1e9),
    "eve.impersonation_prob": st.floats(0.0, 1.0),
    "learning.rate": st.floats(0.0, 1.0),
    "learning.drift_per_step": st.floats(0.0, 1.0),
    "qkd.initial_key_bits": st.floats(0.0, 1e6),
})


def _slot(transition):
    """What the property checks of each slot: the observation reached, rewards, KPIs and reward terms."""
    info = transition.infos["orchestrator"]
    return transition.next_obs, transition.rewards, info["kpi"], info["reward_terms"]


_run_jit = jax.jit(lambda params, key: rollout(random_policy, params, key, _slot))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(overrides=OVERRIDES, seed=st.integers(0, 2**31 - 1),
       mode=st.sampled_from(["none", "stationary", "bursty", "targeted"]))
def test_random_parameters_and_actions_stay_finite_and_in_the_box(overrides, seed, mode):
    overrides = dict(overrides, **{"eve.mode": mode, "episode.max_steps": 30,
                                   "topology.link_length_max_km": overrides["topology.link_length_min_km"] + 40.0})
    params = load_params("metro_qkd", overrides)
    (obs, rewards, kpi, terms), state = _run_jit(params, jax.random.key(seed))
    for leaf in jax.tree.leaves((state, obs, rewards, kpi, terms)):
        assert bool(jnp.all(jnp.isfinite(leaf))), "a NaN or inf escaped a step"
    for o in jax.tree.leaves(obs):
        assert bool(jnp.all((o >= 0.0) & (o <= 1.0)))


def test_poisson_sampler_has_the_right_mean_and_variance():
    for rate in (0.5, 3.0, 200.0):
        x = np.asarray(poisson_approx(jax.random.PRNGKey(1), jnp.full(200_000, rate)))
        assert x.min() >= 0.0
        assert x.mean() == np.float32(x.mean()) and abs(x.mean() - rate) < 4 * np.sqrt(rate / x.size) + 1e-3 * rate
        assert abs(x.var() / rate - 1.0) < 0.05


def test_binomial_sampler_has_the_right_mean_and_variance_and_stays_below_n():
    for n, p in ((50.0, 0.02), (400.0, 0.25), (5000.0, 0.5)):
        x = np.asarray(binomial_approx(jax.random.PRNGKey(2), jnp.full(200_000, n), p))
        assert x.min() >= 0.0 and x.max() <= n
        var = n * p * (1 - p)
        assert abs(x.mean() - n * p) < 4 * np.sqrt(var / x.size) + 1e-3 * n * p
        assert abs(x.var() / var - 1.0) < 0.08
