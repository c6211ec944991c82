"""The agent registry: built-in baselines, user agents by import path, plug-ins by entry point."""

import importlib.metadata
import sys
import textwrap

import jax
import numpy as np
import pytest

import qin_env
from qin_env import agents
from qin_env.agents import registry
from qin_env.params import load_params

USER_AGENT_SOURCE = '''
"""A user's agent module, as it would live in their own package."""

import numpy as np

import qin_env
from qin_env import core


class AlwaysFirst:
    """Always the first choice of every component."""

    name = "always-first"

    def __init__(self, scenario="metro_qkd", overrides=None, width=1):
        self.params = qin_env.load_params(scenario, overrides)
        self.width = width

    def act(self, key, obs):
        return {a: np.zeros(len(core.action_nvec(self.params, a)), np.int32) for a in core.agent_names(self.params)}


class NotAnAgent:
    """Has no act method."""


INSTANCE = AlwaysFirst()
'''


@pytest.fixture
def isolated_registry(monkeypatch):
    """A copy of the registry, so a test's registrations vanish with it."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """Name of an importable module holding the user agent `AlwaysFirst`."""
    name = "qin_user_agents_for_tests"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(USER_AGENT_SOURCE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    yield name
    sys.modules.pop(name, None)


def pettingzoo_obs(scenario):
    env = qin_env.parallel_env(scenario)
    obs, _ = env.reset(seed=0)
    return env, obs


def assert_valid_joint_action(env, actions):
    assert set(actions) == set(env.possible_agents)
    for name, action in actions.items():
        assert isinstance(action, np.ndarray)
        assert env.action_space(name).contains(action.astype(np.int64)), (name, action)


@pytest.mark.parametrize("scenario", ["metro_qkd", "adversarial_eve"])
@pytest.mark.parametrize("name", ["random", "heuristic", "noop", "best-constant", "sb3-ppo"])
def test_baseline_acts_validly_for_every_agent_of_the_pettingzoo_face(name, scenario):
    env, obs = pettingzoo_obs(scenario)
    agent = agents.make(name, scenario=scenario)
    assert isinstance(agent, agents.Agent)
    assert agent.name == name
    for i in range(3):
        actions = agent.act(jax.random.key(i), obs)
        assert_valid_joint_action(env, actions)
        obs, *_ = env.step(actions)


@pytest.mark.parametrize("name", ["random", "heuristic"])
def test_fixed_baselines_expose_a_policy_fn_that_runs_compiled(name):
    params = load_params("metro_qkd")
    agent = agents.make(name)
    _, obs = pettingzoo_obs("metro_qkd")
    key = jax.random.key(3)
    compiled = jax.jit(agent.policy_fn)(key, obs, params)
    expected = agent.act(key, obs)
    assert all(np.array_equal(compiled[a], expected[a]) for a in expected)


def test_fixed_baseline_reset_switches_scenario():
    agent = agents.make("heuristic")
    env, obs = pettingzoo_obs("adversarial_eve")
    agent.reset(env.params)
    assert_valid_joint_action(env, agent.act(jax.random.key(0), obs))


def test_list_agents_describes_every_builtin():
    listed = agents.list_agents()
    assert {"random", "heuristic", "noop", "best-constant", "oracle", "sb3-ppo", "vqc-ppo", "mlp-ppo"} <= set(listed)
    assert all(isinstance(d, str) and d and "\n" not in d for d in listed.values())


def test_unknown_name_lists_valid_names_and_the_nearest_match():
    with pytest.raises(ValueError, match="unknown agent 'heuristik'") as info:
        agents.make("heuristik")
    message = str(info.value)
    assert "Did you mean 'heuristic'?" in message
    for name in ("random", "heuristic", "sb3-ppo"):
        assert name in message


def test_baseline_without_parameters_refuses_a_checkpoint(tmp_path):
    with pytest.raises(ValueError, match="no parameters"):
        agents.make("random", checkpoint=str(tmp_path / "x.qinckpt"))


def test_import_path_builds_a_user_agent_with_scenario_and_extra_arguments(user_module):
    agent = agents.make(f"{user_module}:AlwaysFirst", scenario="adversarial_eve", width=3)
    assert agent.width == 3
    env, obs = pettingzoo_obs("adversarial_eve")
    assert_valid_joint_action(env, agent.act(jax.random.key(0), obs))


def test_import_path_may_name_an_agent_instance(user_module):
    agent = agents.make(f"{user_module}:INSTANCE")
    assert agent.name == "always-first"


@pytest.mark.parametrize(("path", "message"), [
    ("no_such_module_xyz:Agent", "cannot import module 'no_such_module_xyz'"),
    ("{module}:Missing", "has no attribute 'Missing'"),
])
def test_import_path_errors_say_which_part_is_missing(user_module, path, message):
    with pytest.raises(ValueError, match=message):
        agents.make(path.format(module=user_module))


def test_factory_that_builds_no_agent_is_refused(user_module):
    with pytest.raises(TypeError, match="not an Agent"):
        agents.make(f"{user_module}:NotAnAgent")


def test_factory_without_checkpoint_argument_refuses_a_checkpoint(user_module):
    with pytest.raises(ValueError, match="does not load checkpoints"):
        agents.make(f"{user_module}:AlwaysFirst", checkpoint="model.qinckpt")


def test_entry_point_plugin_is_listed_without_being_imported_and_made_by_name(user_module, monkeypatch):
    plugin = importlib.metadata.EntryPoint(name="always-first", value=f"{user_module}:AlwaysFirst",
                                           group=registry.ENTRY_POINT_GROUP)
    real = importlib.metadata.entry_points

    def entry_points(**selection):
        if selection.get("group") == registry.ENTRY_POINT_GROUP:
            return importlib.metadata.EntryPoints([plugin])
        return real(**selection)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    sys.modules.pop(user_module, None)
    assert agents.list_agents()["always-first"] == f"plug-in {user_module}:AlwaysFirst"
    assert user_module not in sys.modules  # listing imports no plug-in
    agent = agents.make("always-first", scenario="metro_qkd")
    assert type(agent).__name__ == "AlwaysFirst"
    with pytest.raises(ValueError, match="always-first"):  # listed among the valid names
        agents.make("nothing-like-this")


def test_registered_factory_is_made_and_listed(isolated_registry, user_module):
    module = __import__(user_module)
    agents.register("mine", module.AlwaysFirst)
    assert agents.list_agents()["mine"] == "Always the first choice of every component."
    assert agents.make("mine").name == "always-first"


def test_register_refuses_a_taken_name_unless_overwriting(isolated_registry, user_module):
    module = __import__(user_module)
    with pytest.raises(ValueError, match="already registered"):
        agents.register("heuristic", module.AlwaysFirst)
    agents.register("heuristic", module.AlwaysFirst, overwrite=True)
    assert agents.make("heuristic").name == "always-first"
