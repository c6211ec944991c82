"""Scenarios: TOML files validated against the schema, turned into a frozen `Params` pytree."""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib.resources
import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from qin_env.physics.free_space import EARTH_GM_KM3_PER_S2, EARTH_RADIUS_KM
from qin_env.schema import REMOVED, SCHEMA, Field, sections
from qin_env.version import ENV_VERSION, VERSION_HISTORY

DEFAULT_SCENARIO = "metro_qkd"
CHANNEL_MODES = ("plain", "pqc", "qkd", "teleport", "superdense")


def scenario_dir() -> Path:
    """Folder of the shipped scenario files (package data of `qin_env.scenarios`)."""
    return Path(str(importlib.resources.files("qin_env.scenarios")))


def list_scenarios() -> dict[str, str]:
    """Names of the shipped scenarios with their one-line descriptions."""
    out = {}
    for path in sorted(scenario_dir().glob("*.toml")):
        raw = _read_toml(path)
        out[path.stem] = str(raw.get("scenario", {}).get("description", ""))
    return out


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:  # message carries "(at line L, column C)"
        raise ValueError(f"malformed scenario file {path}: {err}") from err
    except RecursionError:
        raise ValueError(f"malformed scenario file {path}: arrays or tables nested deeper than the parser "
                         "allows (a scenario needs two levels)") from None


def _shown(value: Any, limit: int = 60) -> str:
    """`repr(value)` cut to `limit` characters; a huge integer (which Python refuses to print) by its size."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"<an integer of {value.bit_length()} bits>"
    try:
        text = repr(value)
    except ValueError:  # a list holding an integer of more than 4,300 digits
        text = f"<a {type(value).__name__} holding a huge integer>"
    return text if len(text) <= limit else f"{text[:limit]}..."


def _flatten(raw: Mapping[str, Any], path: Path | str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for table, body in raw.items():
        if not isinstance(body, Mapping):
            raise ValueError(f"{path}: top-level key {table!r} must be a table; tables are {sections()}")
        for key, value in body.items():
            flat[f"{table}.{key}"] = value
    return flat


def _unknown_key_error(key: str, where: str) -> ValueError:
    if key in REMOVED:
        return ValueError(f"parameter {key!r} in {where} no longer exists: {REMOVED[key]}")
    near = difflib.get_close_matches(key, list(SCHEMA), n=3, cutoff=0.5)
    hint = f"; nearest valid keys: {', '.join(near)}" if near else f"; valid tables: {', '.join(sections())}"
    return ValueError(f"unknown parameter {key!r} in {where}{hint}")


def _range_text(field: Field) -> str:
    return f"[{field.low:g}, {field.high:g}]"


def _coerce(key: str, value: Any, field: Field, where: str) -> Any:
    """Check one value against its field; return it in canonical Python form."""
    def bad(msg: str) -> ValueError:
        return ValueError(f"{key}={_shown(value)} in {where}: {msg}")

    def number(x: Any, integer: bool) -> float | int:
        if isinstance(x, bool) or not isinstance(x, int | float):
            raise bad("expected an integer" if integer else "expected a number")
        if not (field.low <= x <= field.high) or x != x:  # exact for integers of any size, before any float()
            raise bad(f"outside the allowed range {_range_text(field)} ({field.doc})")
        if integer and isinstance(x, float) and not x.is_integer():
            raise bad("expected an integer")
        return int(x) if integer else float(x)

    if field.kind in ("float", "int"):
        return number(value, field.kind == "int")
    if field.kind == "bool":
        if not isinstance(value, bool):
            raise bad("expected true or false")
        return value
    if field.kind == "str":
        if not isinstance(value, str):
            raise bad("expected a string")
        if field.choices and value not in field.choices:
            raise bad(f"allowed values are {', '.join(field.choices)}")
        return value
    if not isinstance(value, list | tuple):
        raise bad("expected a list")
    if len(value) < field.min_len:
        raise bad(f"needs at least {field.min_len} entries")
    return [number(v, field.kind == "int_list") for v in value]


def _validate(config: dict[str, Any]) -> None:
    """Cross-field checks that a single field's range cannot express."""
    if config["scenario.version"] != ENV_VERSION:
        raise ValueError(f"scenario.version={config['scenario.version']}: this scenario is written for environment "
                         f"version {config['scenario.version']}, but this qin-env runs version {ENV_VERSION} "
                         f"({VERSION_HISTORY[ENV_VERSION]}); allowed value: {ENV_VERSION}")
    n_agg = config["topology.n_aggregators"]
    for key in ("topology.quantum_aggregators", "topology.classical_aggregators", "topology.repeater_links",
                "topology.satellite_links", "eve.links"):
        for index in config[key]:
            if index >= n_agg:
                raise ValueError(f"{key} lists aggregator {index}, allowed range [0, {n_agg - 1}]")
    both = set(config["topology.quantum_aggregators"]) & set(config["topology.classical_aggregators"])
    if both:
        raise ValueError(f"aggregators {sorted(both)} are in both quantum_aggregators and classical_aggregators")
    if config["topology.link_length_min_km"] > config["topology.link_length_max_km"]:
        raise ValueError("topology.link_length_min_km must not exceed topology.link_length_max_km")
    if config["qkd.alarm_qber"] > config["qkd.abort_qber"]:
        raise ValueError("qkd.alarm_qber must not exceed qkd.abort_qber")
    if len(config["actions.payload_bits"]) != len(config["actions.payload_qubits"]):
        raise ValueError("actions.payload_bits and actions.payload_qubits need the same number of levels")
    if config["learning.distill_teacher"] >= n_agg:
        raise ValueError(f"learning.distill_teacher={config['learning.distill_teacher']} "
                         f"outside the allowed range [-1, {n_agg - 1}]")


def load_config(scenario: str = DEFAULT_SCENARIO, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The validated flat `{dotted key: value}` configuration of a scenario with overrides applied."""
    path = Path(scenario)
    if path.suffix != ".toml":
        path = scenario_dir() / f"{scenario}.toml"
        if not path.exists():
            names = ", ".join(list_scenarios())
            raise ValueError(f"unknown scenario {scenario!r}; valid scenarios: {names}")
    elif not path.exists():
        raise ValueError(f"scenario file {path} does not exist")
    config = {key: field.default for key, field in SCHEMA.items()}
    for key, value in _flatten(_read_toml(path), path).items():
        if key not in SCHEMA:
            raise _unknown_key_error(key, str(path))
        config[key] = _coerce(key, value, SCHEMA[key], str(path))
    for key, value in (overrides or {}).items():
        if key not in SCHEMA:
            raise _unknown_key_error(key, "overrides")
        config[key] = _coerce(key, value, SCHEMA[key], "overrides")
    _validate(config)
    config["scenario.name"] = path.stem
    return config


def config_hash(config: Mapping[str, Any]) -> str:
    """Stable short hash of a configuration (for caches and result files)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def _static(cls: type) -> type:
    """Register a frozen dataclass as a pytree; fields marked static go to the treedef."""
    meta = [f.name for f in dataclasses.fields(cls) if f.metadata.get("static")]
    data = [f.name for f in dataclasses.fields(cls) if not f.metadata.get("static")]
    return jax.tree_util.register_dataclass(cls, data_fields=data, meta_fields=meta)


def static_field() -> Any:
    """A dataclass field that is part of the pytree structure (hashable, compile-time)."""
    return dataclasses.field(metadata={"static": True})


@_static
@dataclasses.dataclass(frozen=True)
class Params:
    """Everything that configures an episode: topology, hardware, traffic, adversary, rewards.

    Array fields are leaves (a `vmap` can sweep them); shape-determining fields are static.
    """

    # static structure
    scenario: str = static_field()
    n_aggregators: int = static_field()
    n_pus: int = static_field()
    max_steps: int = static_field()
    eve_mode: str = static_field()
    episodes_levels: tuple[int, ...] = static_field()
    model_qubits_levels: tuple[int, ...] = static_field()
    payload_bits_levels: tuple[float, ...] = static_field()
    payload_qubits_levels: tuple[int, ...] = static_field()
    keygen_levels: tuple[float, ...] = static_field()
    test_fraction_levels: tuple[float, ...] = static_field()
    throttle_levels: tuple[float, ...] = static_field()
    memory_levels: int = static_field()
    distill_teacher: int = static_field()
    learning_model: str = static_field()
    # per-aggregator arrays [A]
    link_length_km: jax.Array
    eta_fiber: jax.Array
    repeater_segments: jax.Array
    is_satellite: jax.Array
    satellite_culmination_s: jax.Array
    quantum_share: jax.Array
    is_classical: jax.Array
    qubit_budget: jax.Array
    eve_link_mask: jax.Array
    # per-processing-unit arrays [P]
    pu_parent: jax.Array
    # scalars
    hw: dict[str, jax.Array]
    qkd: dict[str, jax.Array]
    traffic: dict[str, jax.Array]
    learning: dict[str, jax.Array]
    eve: dict[str, jax.Array]
    reward: dict[str, jax.Array]
    dt_s: jax.Array
    pu_link_length_km: jax.Array
    # the federated model's data and closed-form training terms (qin_env.federated.build); empty for the surrogate
    fl: dict[str, jax.Array]


def _scalars(config: Mapping[str, Any], table: str, exclude: tuple[str, ...] = ()) -> dict[str, jax.Array]:
    out = {}
    for key, value in config.items():
        section, name = key.split(".", 1)
        if section == table and name not in exclude and isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = jnp.asarray(value, jnp.float32)
    return out


def params_from_config(config: Mapping[str, Any]) -> Params:
    """Build the `Params` pytree from a validated flat configuration."""
    n_agg = config["topology.n_aggregators"]
    n_pus = n_agg * config["topology.pus_per_aggregator"]
    lengths = np.linspace(config["topology.link_length_min_km"], config["topology.link_length_max_km"], n_agg)

    def mask(key: str) -> np.ndarray:
        m = np.zeros(n_agg, bool)
        m[list(config[key])] = True
        return m

    quantum, classical = mask("topology.quantum_aggregators"), mask("topology.classical_aggregators")
    repeaters = np.where(mask("topology.repeater_links"), config["topology.repeater_segments"], 1)
    satellite = mask("topology.satellite_links")
    eve_links = mask("eve.links") if config["eve.links"] else np.ones(n_agg, bool)
    quantum_share = np.where(quantum, 1.0, np.where(classical, 0.0, 0.5))
    # Passes repeat every orbital period (Kepler); the first culminates mid-episode, others are staggered
    radius_km = EARTH_RADIUS_KM + config["hardware.satellite_altitude_km"]
    period = 2.0 * np.pi * np.sqrt(radius_km**3 / EARTH_GM_KM3_PER_S2)
    order = np.cumsum(satellite) - 1
    culmination = 0.5 * config["episode.dt_s"] * config["episode.max_steps"] + order * period / max(1, satellite.sum())
    eta_fiber = 10.0 ** (-config["hardware.alpha_db_per_km"] * lengths / repeaters / 10.0)
    f32 = jnp.float32
    width_levels = tuple(config["actions.model_qubits"])
    fl = {}
    if config["learning.model"] == "federated":
        from qin_env import federated  # imports the stages, which need this module

        fl = federated.build(config, n_pus, width_levels)
    return Params(
        scenario=config["scenario.name"],
        n_aggregators=n_agg,
        n_pus=n_pus,
        max_steps=config["episode.max_steps"],
        eve_mode=config["eve.mode"],
        episodes_levels=tuple(config["actions.episodes"]),
        model_qubits_levels=width_levels,
        payload_bits_levels=tuple(config["actions.payload_bits"]),
        payload_qubits_levels=tuple(config["actions.payload_qubits"]),
        keygen_levels=tuple(config["actions.keygen_share"]),
        test_fraction_levels=tuple(config["actions.test_fraction"]),
        throttle_levels=tuple(config["actions.throttle"]),
        memory_levels=config["hardware.qubit_budget"] + 1,
        distill_teacher=config["learning.distill_teacher"],
        learning_model=config["learning.model"],
        link_length_km=jnp.asarray(lengths, f32),
        eta_fiber=jnp.asarray(eta_fiber, f32),
        repeater_segments=jnp.asarray(repeaters, f32),
        is_satellite=jnp.asarray(satellite),
        satellite_culmination_s=jnp.asarray(np.where(satellite, culmination, 0.0), f32),
        quantum_share=jnp.asarray(quantum_share, f32),
        is_classical=jnp.asarray(classical),
        qubit_budget=jnp.asarray(np.where(classical, 0, config["hardware.qubit_budget"]), f32),
        eve_link_mask=jnp.asarray(eve_links),
        pu_parent=jnp.asarray(np.repeat(np.arange(n_agg), config["topology.pus_per_aggregator"]), jnp.int32),
        hw=_scalars(config, "hardware"),
        qkd=_scalars(config, "qkd"),
        traffic=_scalars(config, "traffic"),
        learning=_scalars(config, "learning", exclude=("distill_teacher",)),
        eve=_scalars(config, "eve"),
        reward=_scalars(config, "reward"),
        dt_s=jnp.asarray(config["episode.dt_s"], f32),
        pu_link_length_km=jnp.asarray(config["topology.pu_link_length_km"], f32),
        fl=fl,
    )


def load_params(scenario: str = DEFAULT_SCENARIO, overrides: Mapping[str, Any] | None = None) -> Params:
    """Load a named scenario (or a path to a TOML file) with dotted-key overrides into `Params`.

    >>> params = load_params("metro_qkd", {"eve.mode": "stationary", "eve.intercept_fraction": 1.0})
    """
    return params_from_config(load_config(scenario, overrides))
