"""Property tests: random valid parameters and random actions never produce NaN, inf or out-of-box observations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qin_env.params import load_params
from qin_env.policies import random_policy
from qin_env.rollout import rollout
from qin_env.sampling import binomial_approx, poisson_approx
from qin_env.schema import SCHEMA

# Every numeric field whose value is a leaf of `Params` (not a shape) is drawn over its whole
# allowed range, both edges included; shapes stay fixed (3 aggregators: a hybrid fiber link, a LEO
# satellite link and a 4-segment repeater link; 3 units; 30 steps), so one compilation per learning
# model serves every example. The federated model's fields shape its data (shards, closed-form
# training terms) when the params are built, so they are drawn for it too.
SHAPE_FIELDS = {"topology.n_aggregators", "topology.pus_per_aggregator", "topology.repeater_segments",
                "hardware.qubit_budget", "episode.max_steps", "scenario.version", "learning.distill_teacher"}
NUMERIC = {key: field for key, field in SCHEMA.items()
           if field.kind in ("float", "int") and key not in SHAPE_FIELDS}


def _value(field):
    draw = st.integers(int(field.low), int(field.high)) if field.kind == "int" else st.floats(field.low, field.high)
    return st.one_of(st.just(field.low), st.just(field.high), draw).map(int if field.kind == "int" else float)


OVERRIDES = st.fixed_dictionaries({key: _value(field) for key, field in NUMERIC.items()})
ORDERED = (("topology.link_length_min_km", "topology.link_length_max_km"), ("qkd.alarm_qber", "qkd.abort_qber"))
TOPOLOGY = {"topology.satellite_links": [1], "topology.repeater_links": [2], "topology.quantum_aggregators": [],
            "topology.classical_aggregators": [], "episode.max_steps": 30}


def test_every_numeric_field_of_the_schema_is_drawn():
    leaves = {f"{table}.{name}" for table in ("hardware", "qkd", "traffic", "learning", "eve", "reward")
              for name in getattr(load_params("metro_qkd"), {"hardware": "hw"}.get(table, table))}
    assert leaves - set(NUMERIC) - SHAPE_FIELDS == set()
    assert {"episode.dt_s", "topology.link_length_min_km", "topology.pu_link_length_km"} <= set(NUMERIC)


def _slot(transition):
    """What the property checks of each slot: the observation reached, rewards, KPIs and reward terms."""
    info = transition.infos["orchestrator"]
    return transition.next_obs, transition.rewards, info["kpi"], info["reward_terms"]


_run_jit = jax.jit(lambda params, key: rollout(random_policy, params, key, _slot))


# The eavesdropper's mode and the learning model are static (each pair compiles its own rollout, about 8 s
# for the surrogate, 20 s for the federated model): every mode once, the federated model with a live
# eavesdropper (its leak and poison paths), and the numeric fields drawn over their ranges within each pair.
@pytest.mark.parametrize("mode, model", [("none", "surrogate"), ("stationary", "surrogate"),
                                         ("bursty", "federated"), ("targeted", "surrogate")])
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(overrides=OVERRIDES, seed=st.integers(0, 2**31 - 1))
def test_every_parameter_over_its_whole_range_keeps_every_leaf_finite_and_obs_in_the_box(overrides, seed, mode, model):
    overrides = {**overrides, **TOPOLOGY, "eve.mode": mode, "learning.model": model}
    for low, high in ORDERED:
        overrides[low], overrides[high] = sorted((overrides[low], overrides[high]))
    params = load_params("metro_qkd", overrides)
    # checked on the host: a jnp check would compile a small program per leaf shape
    (obs, rewards, kpi, terms), state = jax.device_get(_run_jit(params, jax.random.key(seed)))
    for leaf in jax.tree.leaves((state, obs, rewards, kpi, terms)):
        assert np.all(np.isfinite(leaf)), "a NaN or inf escaped a step"
    for o in jax.tree.leaves(obs):
        assert np.all((o >= 0.0) & (o <= 1.0))


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
