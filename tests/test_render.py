"""Pictures of the network: shape and type for every scenario, state changes that must show, windows."""

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import pytest

from qin_env import core, list_scenarios, render
from qin_env.params import load_params
from qin_env.policies import heuristic_policy
from qin_env.rollout import rollout


def _played(scenario: str, steps: int = 3, overrides: dict | None = None):
    """(state, params, kpi) after a few heuristic steps."""
    params = load_params(scenario, overrides)
    records, state = rollout(heuristic_policy, params, jax.random.key(0), steps=steps)
    return state, params, {name: float(v[-1]) for name, v in records["kpi"].items()}


@pytest.fixture(scope="module")
def metro():
    return _played("metro_qkd", overrides={"eve.mode": "none"})


def _assert_picture(img: np.ndarray) -> None:
    assert img.dtype == np.uint8
    assert img.ndim == 3 and img.shape[2] == 3
    assert 400 <= img.shape[0] <= 900 and 500 <= img.shape[1] <= 1200
    assert img.std() > 10  # not blank


@pytest.mark.parametrize("scenario", list(list_scenarios()))
def test_every_scenario_renders_an_rgb_picture(scenario):
    # the state at reset needs no compiled step (the played states of metro_qkd are drawn below)
    params = load_params(scenario)
    _, state = core.reset(jax.random.key(0), params)
    kpi = {name: 0.0 for name in core.KPI_UNITS}
    _assert_picture(render.render_rgb(state, params, kpi))
    _assert_picture(render.render_rgb(state, params))


def test_a_tapped_link_shows_and_leaves_no_trace_once_gone(metro):
    state, params, kpi = metro
    assert not np.any(np.asarray(state.tap) > 0)
    clean = render.render_rgb(state, params, kpi)
    tapped = dataclasses.replace(state, tap=jnp.asarray([0.5, 0.0, 0.0], jnp.float32))
    img = render.render_rgb(tapped, params, kpi)
    changed = np.any(img != clean, axis=2)
    assert changed.sum() > 200
    # the mark is red: many changed pixels are strongly red
    r, g, b = (img[..., c].astype(int) for c in range(3))
    assert np.sum(changed & (r > 180) & (g < 120) & (b < 120)) > 50
    # the cached scene is restored fully on the next call
    np.testing.assert_array_equal(render.render_rgb(state, params, kpi), clean)


def test_alarm_fidelity_and_kpis_change_the_picture(metro):
    state, params, kpi = metro
    clean = render.render_rgb(state, params, kpi)
    alarmed = dataclasses.replace(state, alarm=jnp.asarray([0.0, 1.0, 0.0], jnp.float32))
    assert np.any(render.render_rgb(alarmed, params, kpi) != clean)
    faded = dataclasses.replace(state, pair_fidelity=jnp.asarray([0.3, 0.3, 0.25], jnp.float32))
    assert np.any(render.render_rgb(faded, params, kpi) != clean)
    assert np.any(render.render_rgb(state, params, None) != clean)
    assert np.any(render.render_rgb(state, params, {**kpi, "eve_detected": 1.0}) != clean)


def test_render_is_safe_in_threads(metro):
    state, params, kpi = metro
    serial = render.render_rgb(state, params, kpi)
    with ThreadPoolExecutor(max_workers=3) as pool:
        pictures = list(pool.map(lambda _: render.render_rgb(state, params, kpi), range(6)))
    for img in pictures:
        np.testing.assert_array_equal(img, serial)


def test_render_human_does_not_raise_or_block_under_agg(metro, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    matplotlib.use("Agg")
    state, params, kpi = metro
    try:
        render.render_human(state, params, kpi)
        first = render._HUMAN["fig"]
        render.render_human(state, params)
        assert render._HUMAN["fig"] is first  # one window reused across calls
    finally:
        render.close_human()
    assert render._HUMAN["fig"] is None
