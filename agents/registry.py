"""One registry maps a name to an agent: the built-in baselines, trained agents and your own.

An agent is anything with a `name` and an `act(key, obs) -> actions` method (the `Agent`
protocol below); it acts for every agent of the environment at once, so the same object plays
the PettingZoo face, the Gymnasium faces' fixed team and the benchmarks.

``` python
from qin_env import agents
agent = agents.make("heuristic", scenario="metro_qkd")
actions = agent.act(jax.random.key(0), obs)          # obs: the PettingZoo face's obs dict
agents.list_agents()                                  # {name: one-line description}
```

`make` accepts, in this order:

1. a registered name (`register(name, factory)`; the baselines are registered on import);
2. an import path `"my_package.module:MyAgent"` (the object is a factory or an `Agent` instance);
3. a plug-in installed under the entry-point group `qin_env.agents`, e.g. in `pyproject.toml`:

   ``` toml
   [project.entry-points."qin_env.agents"]
   my-agent = "my_package.module:MyAgent"
   ```

A factory is any callable returning an `Agent`; `make` passes it `scenario`, `overrides` and
`checkpoint` when its signature accepts them, and every other keyword argument as given.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import inspect
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import jax
import numpy as np

from qin_env.params import DEFAULT_SCENARIO

ENTRY_POINT_GROUP = "qin_env.agents"

__all__ = ["ENTRY_POINT_GROUP", "Agent", "list_agents", "make", "register"]


@runtime_checkable
class Agent(Protocol):
    """What an agent must offer to be evaluated: a name and one joint action per observation.

    `act(key, obs)` receives the observation dict of the PettingZoo face (`{agent name: float32
    vector}`, numpy or JAX arrays) and returns `{agent name: int MultiDiscrete action}` for every
    agent of the scenario (`qin_env.core.agent_names(params)`). `key` is a JAX PRNG key; a
    deterministic agent may ignore it.

    Optional extras, looked up with `getattr` by evaluators:

    - `reset(params)`: called with the environment's `Params` at the start of every episode;
    - `policy_fn`: a jit-able `(key, obs_dict, params) -> action_dict` with the contract of
      `qin_env.policies`, so evaluators can run whole episodes compiled under `lax.scan`; agents
      without one are evaluated step by step through `act`.

    A complete user agent:

    ``` python
    class AlwaysFirst:
        name = "always-first"

        def __init__(self, scenario="metro_qkd", overrides=None):
            self.params = qin_env.load_params(scenario, overrides)

        def act(self, key, obs):
            return {a: np.zeros(len(qin_env.core.action_nvec(self.params, a)), np.int32)
                    for a in qin_env.core.agent_names(self.params)}

    agents.register("always-first", AlwaysFirst)   # or make("my_module:AlwaysFirst")
    ```
    """

    name: str

    def act(self, key: jax.Array, obs: Mapping[str, np.ndarray | jax.Array]) -> dict[str, np.ndarray]:
        """Actions of every agent for one observation dict."""
        ...


Factory = Callable[..., Agent]


class _Entry:
    """A registered factory, or the import path of one resolved on first use (keeps imports light)."""

    def __init__(self, factory: Factory | str, description: str | None) -> None:
        self._factory = factory
        self._description = description

    def factory(self) -> Factory:
        if isinstance(self._factory, str):
            self._factory = _import_object(self._factory)
        return self._factory

    def description(self) -> str:
        if self._description is not None:
            return self._description
        return _first_line(self.factory())


_REGISTRY: dict[str, _Entry] = {}


def _first_line(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def register(name: str, factory: Factory | str, *, description: str | None = None, overwrite: bool = False) -> None:
    """Map `name` to a factory (a callable or a lazy `"module:attr"` path) so `make(name)` builds it."""
    if not isinstance(name, str) or not name or ":" in name:
        raise ValueError(f"agent name must be a non-empty string without ':', got {name!r}")
    if not (callable(factory) or (isinstance(factory, str) and ":" in factory)):
        raise TypeError(f"factory of agent {name!r} must be callable or a 'module:attr' path, got {factory!r}")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"agent {name!r} is already registered; pass overwrite=True to replace it")
    _REGISTRY[name] = _Entry(factory, description)


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    """Installed plug-ins of the `qin_env.agents` group, by name (read at each call: installs may change)."""
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def list_agents() -> dict[str, str]:
    """Every name `make` accepts with a one-line description: registered agents, then installed plug-ins.

    Plug-ins are listed by their entry point (name, `module:attr`, distribution) without importing
    them: a plug-in's code runs only when its name is asked for (`make`).
    """
    out = {name: entry.description() for name, entry in _REGISTRY.items()}
    for name, ep in _entry_points().items():
        if name not in out:
            dist = getattr(ep, "dist", None)
            origin = f" from {dist.name} {dist.version}" if dist is not None else ""
            out[name] = f"plug-in {ep.value}{origin}"
    return out


def _import_object(path: str) -> Any:
    """The object at `"package.module:attr.sub"`, with an error that says which part is missing."""
    module_name, _, attr_path = path.partition(":")
    if not module_name or not attr_path:
        raise ValueError(f"import path {path!r} must look like 'package.module:Name'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r} of agent {path!r}: {exc}") from exc
    for attr in attr_path.split("."):
        if not hasattr(obj, attr):
            raise ValueError(f"module {module_name!r} has no attribute {attr_path!r} (agent {path!r})")
        obj = getattr(obj, attr)
    return obj


def _resolve(name: str) -> Any:
    """The factory (or agent instance) a name stands for, or a ValueError listing the valid names."""
    if name in _REGISTRY:
        return _REGISTRY[name].factory()
    if ":" in name:
        return _import_object(name)
    plugins = _entry_points()
    if name in plugins:
        return plugins[name].load()
    valid = sorted({*_REGISTRY, *plugins})
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"unknown agent {name!r}.{hint} Valid agents: {', '.join(valid)}; "
                     "or an import path 'package.module:Name'")


def _call_factory(factory: Callable[..., Any], name: str, standard: dict[str, Any], kwargs: dict[str, Any]) -> Any:
    """Call a factory with the standard arguments its signature accepts, and every extra keyword."""
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # builtins without a signature: pass only what the user gave
        return factory(**kwargs)
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    call = dict(kwargs)
    for key, value in standard.items():
        if takes_any or key in parameters:
            call[key] = value
    if standard["checkpoint"] is not None and "checkpoint" not in call:
        raise ValueError(f"agent {name!r} does not load checkpoints (its factory has no 'checkpoint' argument)")
    return factory(**call)


def make(
    name: str, *, scenario: str = DEFAULT_SCENARIO, overrides: Mapping[str, Any] | None = None,
    checkpoint: str | None = None, **kwargs: Any,
) -> Agent:
    """Build the agent `name` for a scenario, optionally from a checkpoint; extra keywords go to its factory."""
    target = _resolve(name)
    if not callable(target) or (not inspect.isclass(target) and isinstance(target, Agent)):
        if kwargs or checkpoint is not None:
            raise ValueError(f"{name!r} is an agent instance, not a factory: it takes no arguments")
        agent = target
    else:
        standard = {"scenario": scenario, "overrides": overrides, "checkpoint": checkpoint}
        agent = _call_factory(target, name, standard, kwargs)
    if not isinstance(agent, Agent):
        missing = [m for m in ("name", "act") if not hasattr(agent, m)]
        raise TypeError(f"{name!r} built a {type(agent).__name__}, which is not an Agent (missing {missing}); "
                        "see qin_env.agents.registry.Agent")
    return agent


def _ppo_factory(network: str) -> Factory:
    """Factory of a trained JAX PPO agent with one network, importing the trainer only when called."""

    def factory(scenario: str = "metro_qkd", overrides: Any = None, checkpoint: Any = None, **kwargs: Any) -> Agent:
        trained = importlib.import_module("qin_env.agents.trained")
        return trained.make_agent(network=network, scenario=scenario, overrides=overrides, checkpoint=checkpoint,
                                  **kwargs)

    factory.__doc__ = f"PPO in JAX + optax with the {network.upper()} actor-critic of qin_env.agents.networks."
    return factory


register("random", "qin_env.agents.baselines:RandomAgent", description="Uniform random action for every agent.")
register("heuristic", "qin_env.agents.baselines:HeuristicAgent",
         description="Rule-based team: fewer episodes near the SLO, protection when the QBER rises.")
register("noop", "qin_env.agents.baselines:NoopAgent",
         description="Reference floor: no training, no sending, no key, memory or throttling.")
register("best-constant", "qin_env.agents.baselines:BestConstantAgent",
         description="Reference bar: the scenario's pinned best per-aggregator constant joint action.")
register("oracle", "qin_env.agents.baselines:OracleAgent",
         description="Reference ceiling: reads Eve's taps and the surges (hidden), plays a pinned constant for each.")
register("sb3-ppo", "qin_env.agents.baselines:SB3PPOAgent",
         description="stable-baselines3 PPO orchestrator (MlpPolicy) through qin/Orchestrator-v1; heuristic team.")
register("vqc-ppo", _ppo_factory("vqc"),
         description="PPO in JAX + optax with a variational-quantum-circuit actor-critic (qin_env.agents.vqc).")
register("mlp-ppo", _ppo_factory("mlp"),
         description="PPO in JAX + optax with an MLP actor-critic (qin_env.agents.networks).")
