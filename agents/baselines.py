"""Baseline agents: random and rule-based (`qin_env.policies`), and stable-baselines3 PPO.

`RandomAgent` and `HeuristicAgent` wrap the environment's fixed policies and expose them as
`policy_fn`, so evaluators can run them compiled. `SB3PPOAgent` trains stable-baselines3's PPO
(`MlpPolicy`, default sizes) on the Gymnasium face `qin/Orchestrator-v1`: the orchestrator
learns while the heuristic plays the aggregators (and eve, where it is an agent), in training and
in `act` alike.

Its checkpoint (`SB3_FORMAT` 2) holds data only, never SB3's pickled zip: the policy's
`state_dict()` tensors as the numpy leaves `{"policy": {tensor name: array}}` of a
`qin_env.agents.checkpoint` file, and in its JSON metadata everything that rebuilds the policy:

- `sb3_format`: `SB3_FORMAT`; `timesteps`: env steps trained; `sb3_versions`: stable-baselines3, torch;
- `network.policy`: `"MlpPolicy"` (allow-list `POLICIES`); `network.policy_class`: `"ActorCriticPolicy"`;
- `network.net_arch`: SB3's `[64, 64]` or `{"pi": [...], "vf": [...]}`; `network.activation_fn`: a
  `torch.nn` class name from `ACTIVATIONS`; `network.ortho_init`, `share_features_extractor`,
  `normalize_images`: SB3's booleans; `network.features_extractor`: `"FlattenExtractor"`;
  `network.optimizer`: `"Adam"` with `optimizer_kwargs` (`eps`, `weight_decay`);
- `network.observation_space`: `{"type": "Box", "shape", "dtype"}`; `network.action_space`:
  `{"type": "MultiDiscrete", "nvec"}`; `network.param_count`: trainable parameters;
- `ppo_hyperparameters`: PPO's numeric settings, each in its `HYPERPARAMETERS` range (a learning
  rate or clip range that follows a non-constant schedule is not recorded: SB3's default returns).

There is no observation normalisation to record (no VecNormalize: the face's observations are
already in [0, 1]). Loading checks every field against its allow-list or range, the spaces against
the scenario's, and the architecture's parameter count against the stored arrays before building
anything; then it builds `PPO` from the JSON and `load_state_dict`s the arrays, their names,
shapes and dtypes checked against the rebuilt policy. The Adam moments are not kept: training a
loaded agent further restarts its optimiser. The older format (SB3's zip as one uint8 leaf) is
refused, because loading it unpickles and so can run code; `python -m
qin_env.bench.entries.convert_sb3 OLD NEW` converts a file you trust without unpickling.
"""

from __future__ import annotations

import itertools
import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from qin_env.agents.checkpoint import check_expected, load_checkpoint, save_checkpoint
from qin_env.params import DEFAULT_SCENARIO, Params, config_hash, load_config, params_from_config, scenario_dir
from qin_env.policies import constant_policy, heuristic_policy, noop_policy, oracle_policy, random_policy
from qin_env.version import ENV_VERSION

Policy = Callable[[jax.Array, dict[str, jax.Array], Params], dict[str, jax.Array]]

__all__ = ["ACTIVATIONS", "HYPERPARAMETERS", "POLICIES", "SB3_FORMAT", "BestConstantAgent", "HeuristicAgent",
           "NoopAgent", "OracleAgent", "PolicyAgent", "RandomAgent", "SB3PPOAgent", "best_constants_path",
           "load_policy_weights", "pinned_constant", "pinned_oracle", "policy_kwargs_from_json"]


def _no_checkpoint(name: str, checkpoint: str | os.PathLike | None) -> None:
    if checkpoint is not None:
        raise ValueError(f"agent {name!r} has no parameters to load from a checkpoint")


class PolicyAgent:
    """An agent that is a fixed jit-able policy `(key, obs_dict, params) -> action_dict` of one scenario."""

    def __init__(self, name: str, policy_fn: Policy, params: Params) -> None:
        self.name = name
        self.policy_fn = policy_fn
        self.params = params
        self._act = jax.jit(policy_fn)

    def reset(self, params: Params) -> None:
        """Play the next episode with these environment params (e.g. another scenario)."""
        self.params = params

    def act(self, key: jax.Array, obs: Mapping[str, np.ndarray | jax.Array]) -> dict[str, np.ndarray]:
        """Every agent's action (int32 vectors) for one observation dict."""
        return jax.device_get(self._act(key, dict(obs), self.params))


class RandomAgent(PolicyAgent):
    """Uniform random action for every agent."""

    def __init__(self, scenario: str = DEFAULT_SCENARIO, overrides: Mapping[str, Any] | None = None,
                 checkpoint: str | os.PathLike | None = None) -> None:
        _no_checkpoint("random", checkpoint)
        super().__init__("random", random_policy, params_from_config(load_config(scenario, overrides)))


class HeuristicAgent(PolicyAgent):
    """Rule-based team of `qin_env.policies.heuristic_policy`."""

    def __init__(self, scenario: str = DEFAULT_SCENARIO, overrides: Mapping[str, Any] | None = None,
                 checkpoint: str | os.PathLike | None = None) -> None:
        _no_checkpoint("heuristic", checkpoint)
        super().__init__("heuristic", heuristic_policy, params_from_config(load_config(scenario, overrides)))


class NoopAgent(PolicyAgent):
    """The team that trains and sends nothing (`qin_env.policies.noop_policy`): a benchmark's floor."""

    def __init__(self, scenario: str = DEFAULT_SCENARIO, overrides: Mapping[str, Any] | None = None,
                 checkpoint: str | os.PathLike | None = None) -> None:
        _no_checkpoint("noop", checkpoint)
        super().__init__("noop", noop_policy, params_from_config(load_config(scenario, overrides)))


def best_constants_path() -> Path:
    """The shipped scenarios' pinned best constants (`python -m qin_env.bench.best_constant --write` makes them)."""
    return scenario_dir() / "best_constants.json"


def pinned_constant(scenario: str, scenario_hash: str, path: str | os.PathLike | None = None) -> dict[str, Any]:
    """The pinned best-constant record of `scenario` at config hash `scenario_hash`; LookupError naming the fix."""
    path = Path(path) if path is not None else best_constants_path()
    remake = f"python -m qin_env.bench.best_constant --scenarios {scenario} --write"
    table = json.loads(path.read_text()) if path.is_file() else {}
    entry = table.get("scenarios", {}).get(scenario)
    if entry is None:
        raise LookupError(f"no best constant pinned for {scenario!r} in {path} (search and pin it: {remake})")
    if entry.get("config_hash") != scenario_hash or entry.get("env_version") != ENV_VERSION:
        raise LookupError(f"the best constant pinned for {scenario!r} in {path} was searched for config hash "
                          f"{entry.get('config_hash')} (environment version {entry.get('env_version')}), not this "
                          f"{scenario_hash} (version {ENV_VERSION}): search it again with {remake}")
    return entry


class BestConstantAgent(PolicyAgent):
    """The scenario's pinned best constant joint action (`qin_env.bench.best_constant`), the bar a policy must clear."""

    def __init__(self, scenario: str = DEFAULT_SCENARIO, overrides: Mapping[str, Any] | None = None,
                 checkpoint: str | os.PathLike | None = None) -> None:
        _no_checkpoint("best-constant", checkpoint)
        config = load_config(scenario, overrides)
        params = params_from_config(config)
        entry = pinned_constant(params.scenario, config_hash(config))
        self.levels = np.asarray(entry["levels"], np.int32)
        super().__init__("best-constant", constant_policy(self.levels, params), params)

    def reset(self, params: Params) -> None:
        """Its constant belongs to one scenario: another one is refused."""
        if params.scenario != self.params.scenario or params.n_aggregators != self.params.n_aggregators:
            raise ValueError(f"best-constant was pinned for {self.params.scenario!r}, not {params.scenario!r}")
        self.params = params


def pinned_oracle(scenario: str, scenario_hash: str, path: str | os.PathLike | None = None) -> dict[str, Any]:
    """The pinned oracle of `scenario` (beside its best constant, same freshness rules); LookupError naming the fix."""
    entry = pinned_constant(scenario, scenario_hash, path)
    if "oracle" not in entry:
        raise LookupError(f"no oracle pinned for {scenario!r} beside its best constant (search and pin it: "
                          f"python -m qin_env.bench.best_constant --scenarios {scenario} --oracle --write)")
    return entry["oracle"]


class OracleAgent(PolicyAgent):
    """The scenario's pinned oracle: a constant per hidden regime (Eve's taps, surges), read from the hidden state.

    It is privileged (`qin_env.rollout.act` hands it `core.privileged_view`), so it plays only
    through `qin_env.rollout`'s episodes (evaluation, the leaderboard), never from observations alone.
    """

    def __init__(self, scenario: str = DEFAULT_SCENARIO, overrides: Mapping[str, Any] | None = None,
                 checkpoint: str | os.PathLike | None = None) -> None:
        _no_checkpoint("oracle", checkpoint)
        config = load_config(scenario, overrides)
        params = params_from_config(config)
        self.levels = np.asarray(pinned_oracle(params.scenario, config_hash(config))["levels"], np.int32)
        super().__init__("oracle", oracle_policy(self.levels, params), params)

    def reset(self, params: Params) -> None:
        """Its table belongs to one scenario: another one is refused."""
        if params.scenario != self.params.scenario or params.n_aggregators != self.params.n_aggregators:
            raise ValueError(f"oracle was pinned for {self.params.scenario!r}, not {params.scenario!r}")
        self.params = params

    def act(self, key: jax.Array, obs: Mapping[str, np.ndarray | jax.Array]) -> dict[str, np.ndarray]:
        """Refused: observations alone do not hold the hidden state it reads."""
        raise TypeError("the oracle reads the hidden state (core.privileged_view), which observations do not hold: "
                        "play it through qin_env.rollout (its policy_fn), as evaluation and the leaderboard do")


SB3_FORMAT = 2  # 2: policy weights as arrays, architecture as JSON; 1 (SB3's pickled zip) is refused
POLICIES = ("MlpPolicy",)
ACTIVATIONS = ("Tanh", "ReLU", "LeakyReLU", "ELU", "GELU", "SiLU")  # torch.nn classes a checkpoint may name
_MAX_WIDTH, _MAX_DEPTH = 4096, 16  # net_arch caps, far above SB3's default [64, 64]
_OPTIMIZER_KWARGS = ("eps", "weight_decay")
HYPERPARAMETERS: dict[str, tuple[type, float, float, bool]] = {  # name: (type, low, high, may be None)
    "n_steps": (int, 2, 65_536, False), "batch_size": (int, 2, 65_536, False), "n_epochs": (int, 1, 1_000, False),
    "gamma": (float, 0.0, 1.0, False), "gae_lambda": (float, 0.0, 1.0, False), "ent_coef": (float, 0.0, 1e3, False),
    "vf_coef": (float, 0.0, 1e3, False), "max_grad_norm": (float, 0.0, 1e6, False),
    "learning_rate": (float, 0.0, 1.0, False), "clip_range": (float, 0.0, 1e3, False),
    "clip_range_vf": (float, 0.0, 1e3, True), "target_kl": (float, 0.0, 1e3, True),
    "normalize_advantage": (bool, 0, 1, False),
}
CONVERT_COMMAND = "python -m qin_env.bench.entries.convert_sb3 OLD.qinckpt NEW.qinckpt"


def _where(path: str | os.PathLike) -> str:
    """How errors name a checkpoint file."""
    return f"sb3-ppo checkpoint {Path(path).name}"


def _bad(source: str, field: str, value: Any, allowed: str) -> ValueError:
    """The error for a field outside its allowed values, naming where it came from (`source`) and the field."""
    shown = repr(value)
    return ValueError(f"{source}: {field} is {shown if len(shown) <= 80 else shown[:77] + '...'}; allowed: {allowed}")


def _checked_number(source: str, field: str, value: Any, spec: tuple[type, float, float, bool]) -> Any:
    """`value` if it has the type and range `spec` allows, else a ValueError naming `field`."""
    kind, low, high, nullable = spec
    if value is None and nullable:
        return None
    if kind is bool:
        ok = type(value) is bool
    elif kind is int:
        ok = type(value) is int and low <= value <= high
    else:
        try:
            ok = type(value) in (int, float) and math.isfinite(value) and low <= value <= high
        except OverflowError:  # an integer too large for a float
            ok = False
    if not ok:
        allowed = "true or false" if kind is bool else f"{kind.__name__} in [{low}, {high}]"
        raise _bad(source, field, value, allowed + (" or null" if nullable else ""))
    return float(value) if kind is float else value


def _checked_hyperparameters(source: str, values: Any) -> dict[str, Any]:
    """PPO keyword arguments from `ppo_hyperparameters`, each checked against `HYPERPARAMETERS`."""
    if not isinstance(values, dict):
        raise _bad(source, "ppo_hyperparameters", values, "an object of " + ", ".join(HYPERPARAMETERS))
    if unknown := sorted(set(values) - set(HYPERPARAMETERS)):
        raise ValueError(f"{source}: ppo_hyperparameters has unknown keys {unknown}; allowed: "
                         f"{', '.join(HYPERPARAMETERS)}")
    return {k: _checked_number(source, f"ppo_hyperparameters.{k}", v, HYPERPARAMETERS[k]) for k, v in values.items()}


def _checked_net_arch(source: str, net_arch: Any) -> tuple[list[int], list[int]]:
    """The (actor, critic) hidden widths of a JSON net_arch, refusing anything but small lists of ints."""
    allowed = f"a list of at most {_MAX_DEPTH} ints in [1, {_MAX_WIDTH}], or {{'pi': list, 'vf': list}}"

    def widths(value: Any) -> list[int]:
        if not (isinstance(value, list) and len(value) <= _MAX_DEPTH
                and all(type(w) is int and 1 <= w <= _MAX_WIDTH for w in value)):
            raise _bad(source, "network.net_arch", net_arch, allowed)
        return value

    if isinstance(net_arch, dict):
        if not set(net_arch) <= {"pi", "vf"}:
            raise _bad(source, "network.net_arch", net_arch, allowed)
        return widths(net_arch.get("pi", [])), widths(net_arch.get("vf", []))
    return widths(net_arch), widths(net_arch)


def policy_kwargs_from_json(source: str, network: Mapping[str, Any]) -> dict[str, Any]:
    """SB3 `policy_kwargs` rebuilt from a checkpoint's `network` JSON, every name checked against its allow-list."""
    import torch

    def choice(field: str, allowed: tuple[str, ...]) -> str:
        if network.get(field) not in allowed:
            raise _bad(source, f"network.{field}", network.get(field), ", ".join(allowed))
        return network[field]

    choice("policy", POLICIES)
    choice("features_extractor", ("FlattenExtractor",))
    choice("optimizer", ("Adam",))
    flags = {f: _checked_number(source, f"network.{f}", network.get(f), (bool, 0, 1, False))
             for f in ("ortho_init", "share_features_extractor", "normalize_images")}
    optimizer_kwargs = network.get("optimizer_kwargs")
    if not isinstance(optimizer_kwargs, dict) or not set(optimizer_kwargs) <= set(_OPTIMIZER_KWARGS):
        raise _bad(source, "network.optimizer_kwargs", optimizer_kwargs, f"an object of {', '.join(_OPTIMIZER_KWARGS)}")
    optimizer_kwargs = {k: _checked_number(source, f"network.optimizer_kwargs.{k}", v, (float, 0.0, 1.0, False))
                        for k, v in optimizer_kwargs.items()}
    _checked_net_arch(source, network.get("net_arch"))
    return {"net_arch": network["net_arch"], "activation_fn": getattr(torch.nn, choice("activation_fn", ACTIVATIONS)),
            **flags, "optimizer_class": torch.optim.Adam, "optimizer_kwargs": optimizer_kwargs}


def _architecture(policy: Any) -> dict[str, Any]:
    """The JSON that rebuilds `policy`, refusing what the allow-lists cannot describe (it could not be loaded)."""
    import torch
    from stable_baselines3.common.policies import ActorCriticPolicy
    from stable_baselines3.common.torch_layers import FlattenExtractor

    activation = getattr(policy.activation_fn, "__name__", repr(policy.activation_fn))
    fits = {
        "policy": type(policy) is ActorCriticPolicy,
        "activation_fn": activation in ACTIVATIONS and getattr(torch.nn, activation) is policy.activation_fn,
        "features_extractor_class": policy.features_extractor_class is FlattenExtractor
        and not policy.features_extractor_kwargs,
        "optimizer_class": policy.optimizer_class is torch.optim.Adam
        and set(policy.optimizer_kwargs) <= set(_OPTIMIZER_KWARGS),
        "use_sde": not policy.use_sde,
    }
    if bad := [name for name, ok in fits.items() if not ok]:
        raise ValueError(f"cannot save this SB3 policy as data: its {bad} are outside what a checkpoint records "
                         f"(MlpPolicy, activation_fn in {ACTIVATIONS}, FlattenExtractor, Adam with "
                         f"{_OPTIMIZER_KWARGS}, no gSDE)")
    return {"policy": "MlpPolicy", "policy_class": "ActorCriticPolicy", "net_arch": _jsonable(policy.net_arch),
            "activation_fn": activation, "ortho_init": bool(policy.ortho_init),
            "share_features_extractor": bool(policy.share_features_extractor),
            "normalize_images": bool(policy.normalize_images), "features_extractor": "FlattenExtractor",
            "optimizer": "Adam", "optimizer_kwargs": {k: float(v) for k, v in policy.optimizer_kwargs.items()},
            "param_count": int(sum(p.numel() for p in policy.parameters()))}


_MISSING = object()


def _hyperparameters(model: Any) -> dict[str, Any]:
    """PPO's numeric settings; a learning-rate or clip schedule is kept only when it is constant."""
    out: dict[str, Any] = {name: getattr(model, name) for name in HYPERPARAMETERS
                           if name not in ("learning_rate", "clip_range", "clip_range_vf")}
    for name in ("learning_rate", "clip_range", "clip_range_vf"):
        value = getattr(model, name)
        if callable(value):
            start, end = float(value(1.0)), float(value(0.0))
            value = start if start == end else _MISSING
        if value is not _MISSING:
            out[name] = None if value is None else float(value)
    return {k: float(v) if isinstance(v, float | np.floating) else v for k, v in out.items()}


def _spaces(env: Any) -> dict[str, Any]:
    """The orchestrator face's observation and action spaces as JSON."""
    obs, act = env.observation_space, env.action_space
    return {"observation_space": {"type": type(obs).__name__, "shape": [int(n) for n in obs.shape],
                                  "dtype": str(obs.dtype)},
            "action_space": {"type": type(act).__name__, "nvec": [int(n) for n in np.asarray(act.nvec).ravel()]}}


def _mlp_param_count(obs_size: int, n_logits: int, pi: list[int], vf: list[int]) -> int:
    """Parameters of SB3's MlpExtractor with action and value heads: weights plus biases of each Linear."""
    def chain(widths: list[int], out: int) -> int:
        sizes = [obs_size, *widths, out]
        return sum(a * b + b for a, b in itertools.pairwise(sizes))
    return chain(pi, n_logits) + chain(vf, 1)


def load_policy_weights(policy: Any, weights: Mapping[str, np.ndarray], source: str) -> None:
    """Load arrays into an SB3 policy after checking their names, shapes and dtypes against its own tensors."""
    import torch

    want = {name: tensor.detach().cpu().numpy() for name, tensor in policy.state_dict().items()}
    if missing := sorted(set(want) - set(weights)):
        raise ValueError(f"{source} lacks the tensors {missing} of the rebuilt policy")
    if extra := sorted(set(weights) - set(want)):
        raise ValueError(f"{source} holds tensors {extra} the rebuilt policy does not have")
    for name, array in weights.items():
        if array.shape != want[name].shape or array.dtype != want[name].dtype:
            raise ValueError(f"{source}: tensor {name!r} is {array.dtype}{list(array.shape)}, the rebuilt policy's is "
                             f"{want[name].dtype}{list(want[name].shape)}")
    policy.load_state_dict({name: torch.from_numpy(np.ascontiguousarray(a)) for name, a in weights.items()})


def _old_format_error(path: str | os.PathLike) -> ValueError:
    """Why an SB3-zip checkpoint is refused, and the two ways forward."""
    return ValueError(
        f"{_where(path)} stores stable-baselines3's own zip (the sb3-ppo format before "
        f"sb3_format {SB3_FORMAT}); it is no longer loaded, because loading it unpickles Python objects and so can "
        "run any code the file carries. Re-train the agent (SB3PPOAgent(...).train(steps).save(path), or `python -m "
        "qin_env.bench.entries.make_entries --agents sb3-ppo` for a pinned entry), or, for a file you trust, convert "
        f"it once without unpickling: `{CONVERT_COMMAND}`")


class SB3PPOAgent:
    """stable-baselines3 PPO (MlpPolicy) as the orchestrator; the heuristic plays every other agent.

    `ppo_kwargs` go to `stable_baselines3.PPO` (e.g. `n_steps=128`); `deterministic` chooses SB3's
    greedy action in `act`. With `checkpoint`, the model is rebuilt from a file written by `save`.
    """

    KIND = "sb3-ppo"

    def __init__(
        self, scenario: str = DEFAULT_SCENARIO, overrides: Mapping[str, Any] | None = None,
        checkpoint: str | os.PathLike | None = None, seed: int = 0, deterministic: bool = True,
        **ppo_kwargs: Any,
    ) -> None:
        import gymnasium
        from stable_baselines3 import PPO  # heavy (torch): imported only when this agent is built

        self.name = self.KIND
        self.scenario = scenario
        self.overrides = dict(overrides or {})
        self.deterministic = deterministic
        config = load_config(scenario, self.overrides)
        self.config_hash = config_hash(config)
        self.params = params_from_config(config)
        self.env = gymnasium.make("qin/Orchestrator-v1", scenario=scenario, overrides=self.overrides,
                                  others=heuristic_policy)
        self._team = jax.jit(heuristic_policy)
        if checkpoint is not None and ppo_kwargs:
            raise ValueError(f"PPO arguments {sorted(ppo_kwargs)} cannot be changed when loading a checkpoint")
        if checkpoint is None:
            self.model = PPO("MlpPolicy", self.env, seed=seed, device="cpu", verbose=0, **ppo_kwargs)
        else:
            self.model = self._rebuild(Path(checkpoint), seed)

    def _rebuild(self, path: Path, seed: int) -> Any:
        """PPO built from a checkpoint's JSON with its weight arrays loaded, every field checked first."""
        from stable_baselines3 import PPO

        params, metadata = load_checkpoint(path, expected={"kind": self.KIND})
        if isinstance(params, dict) and "sb3_zip" in params:
            raise _old_format_error(path)
        check_expected(path, metadata, {"scenario": self.scenario, "config_hash": self.config_hash})
        where = _where(path)
        if metadata.get("sb3_format") != SB3_FORMAT:
            raise _bad(where, "sb3_format", metadata.get("sb3_format"), str(SB3_FORMAT))
        network = metadata["network"]  # a dict: load_checkpoint checks its type
        policy_kwargs = policy_kwargs_from_json(where, network)
        hyperparameters = _checked_hyperparameters(where, metadata.get("ppo_hyperparameters"))
        timesteps = _checked_number(where, "timesteps", metadata.get("timesteps"), (int, 0, 2**62, False))
        spaces = _spaces(self.env)
        for field, found in spaces.items():
            if network.get(field) != found:
                raise _bad(where, f"network.{field}", network.get(field), f"{found} (scenario {self.scenario!r})")
        weights = params.get("policy") if isinstance(params, dict) and set(params) == {"policy"} else None
        if not isinstance(weights, dict) or not all(isinstance(w, np.ndarray) for w in weights.values()):
            raise _bad(where, "arrays", sorted(params) if isinstance(params, dict) else params,
                       "{'policy': {tensor name: array}}")
        stored = sum(w.size for w in weights.values())
        needed = _mlp_param_count(math.prod(spaces["observation_space"]["shape"]),
                                  sum(spaces["action_space"]["nvec"]), *_checked_net_arch(where, network["net_arch"]))
        if stored != needed:  # checked before torch allocates anything the JSON asks for
            raise _bad(where, "network.net_arch", network["net_arch"],
                       f"an architecture of the {stored} parameters stored (this one has {needed})")
        try:
            model = PPO("MlpPolicy", self.env, seed=seed, device="cpu", verbose=0, policy_kwargs=policy_kwargs,
                        **hyperparameters)
        except (AssertionError, TypeError, ValueError) as exc:  # SB3 checks some settings with assert
            raise ValueError(f"{where}: stable-baselines3 cannot build the PPO it describes ({exc})") from exc
        load_policy_weights(model.policy, weights, where)
        model.num_timesteps = timesteps
        return model

    def train(self, total_timesteps: int, seed: int | None = None) -> SB3PPOAgent:
        """Run PPO for `total_timesteps` environment steps (rounded up to whole rollouts)."""
        if seed is not None:
            self.model.set_random_seed(seed)
        self.model.learn(total_timesteps=total_timesteps, reset_num_timesteps=False)
        return self

    def act(self, key: jax.Array, obs: Mapping[str, np.ndarray | jax.Array]) -> dict[str, np.ndarray]:
        """The orchestrator's action from SB3's `predict`, every other agent's from the heuristic."""
        actions = jax.device_get(self._team(key, dict(obs), self.params))
        orchestrator, _ = self.model.predict(np.asarray(obs["orchestrator"], np.float32),
                                             deterministic=self.deterministic)
        actions["orchestrator"] = np.asarray(orchestrator, np.int32)
        return actions

    def save(self, path: str | os.PathLike, extra: Mapping[str, Any] | None = None) -> Path:
        """Write the policy's weight arrays and the JSON that rebuilds it (`SB3_FORMAT`) to a checkpoint file."""
        import stable_baselines3
        import torch

        hyperparameters = _checked_hyperparameters("SB3PPOAgent.save", _hyperparameters(self.model))
        weights = {name: t.detach().cpu().numpy().copy() for name, t in self.model.policy.state_dict().items()}
        metadata = {
            "kind": self.KIND, "scenario": self.scenario, "overrides": self.overrides,
            "config_hash": self.config_hash, "sb3_format": SB3_FORMAT,
            "network": {**_architecture(self.model.policy), **_spaces(self.env)},
            "ppo_hyperparameters": hyperparameters, "timesteps": int(self.model.num_timesteps),
            "sb3_versions": {"stable-baselines3": stable_baselines3.__version__, "torch": torch.__version__},
            **(extra or {}),
        }
        return save_checkpoint(path, {"policy": weights}, metadata)


def _jsonable(value: Any) -> Any:
    """SB3's net_arch (lists and dicts of ints) as plain JSON."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return int(value) if isinstance(value, int | np.integer) else value
