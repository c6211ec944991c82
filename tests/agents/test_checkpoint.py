"""Checkpoints: exact round trips, atomic saves, and refusal of anything damaged or mismatched."""

import datetime
import os
import re
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qin_env.agents import checkpoint
from qin_env.agents.checkpoint import FORMAT_VERSION, load_checkpoint, save_checkpoint
from qin_env.params import config_hash, load_config

META = {"kind": "vqc", "scenario": "metro_qkd", "network": {"n_qubits": 4, "n_layers": 3}}


def sample_params():
    """A pytree with every container and several dtypes."""
    return {
        "circuit": {"rot": jnp.arange(24, dtype=jnp.float32).reshape(3, 4, 2) / 7, "scale": jnp.float32(0.5)},
        "layers": [np.arange(6, dtype=np.int32), np.array([True, False]), np.arange(4, dtype=np.uint8)],
        "pair": (np.linspace(0, 1, 5, dtype=np.float64), None),
        "empty": {},
    }


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "model.qinckpt"
    save_checkpoint(path, sample_params(), META)
    return path


def assert_same_tree(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert np.asarray(x).dtype == np.asarray(y).dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_round_trip_is_exact_including_dtypes(saved):
    params, _ = load_checkpoint(saved)
    assert_same_tree(params, sample_params())
    assert all(isinstance(leaf, np.ndarray) for leaf in jax.tree.leaves(params))


def test_metadata_records_what_the_params_were_trained_for(saved):
    _, meta = load_checkpoint(saved)
    assert meta["format_version"] == FORMAT_VERSION
    assert (meta["kind"], meta["scenario"], meta["network"]) == ("vqc", "metro_qkd", {"n_qubits": 4, "n_layers": 3})
    assert meta["config_hash"] == config_hash(load_config("metro_qkd"))
    assert set(meta["versions"]) == {"qin-env", "jax", "pennylane", "optax"}
    assert meta["versions"]["jax"] == jax.__version__
    assert datetime.datetime.fromisoformat(meta["created"]).tzinfo is not None


def test_config_hash_follows_the_overrides(tmp_path):
    overrides = {"episode.max_steps": 50}
    save_checkpoint(tmp_path / "a.qinckpt", {"w": np.zeros(2)}, {**META, "overrides": overrides})
    _, meta = load_checkpoint(tmp_path / "a.qinckpt")
    assert meta["config_hash"] == config_hash(load_config("metro_qkd", overrides))
    assert meta["config_hash"] != config_hash(load_config("metro_qkd"))


def test_metadata_without_kind_or_scenario_is_refused(tmp_path):
    with pytest.raises(ValueError, match="kind"):
        save_checkpoint(tmp_path / "a.qinckpt", {"w": np.zeros(2)}, {"scenario": "metro_qkd"})


def test_failed_save_leaves_the_previous_checkpoint_and_no_partial_file(saved, monkeypatch):
    before = saved.read_bytes()

    def fail(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", fail)  # the bytes are written, the save dies before the rename
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(saved, {"w": np.ones(3)}, META)
    assert saved.read_bytes() == before
    assert sorted(p.name for p in saved.parent.iterdir()) == [saved.name]


def test_failed_first_save_creates_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint.os, "replace", lambda *a: (_ for _ in ()).throw(OSError("interrupted")))
    with pytest.raises(OSError, match="interrupted"):
        save_checkpoint(tmp_path / "new.qinckpt", {"w": np.ones(3)}, META)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("keep", [0, 10, 0.5, -1])
def test_truncated_file_is_refused(saved, keep):
    data = saved.read_bytes()
    n = int(len(data) * keep) if isinstance(keep, float) else keep % len(data)
    saved.write_bytes(data[:n])
    with pytest.raises(ValueError, match=r"truncated|not a QIN checkpoint"):
        load_checkpoint(saved)


def test_any_flipped_byte_is_refused(saved):
    data = saved.read_bytes()
    for position in [*range(0, len(data), max(1, len(data) // 60)), len(data) - 1]:
        damaged = bytearray(data)
        damaged[position] ^= 0x01
        saved.write_bytes(bytes(damaged))
        with pytest.raises(ValueError, match=saved.name):
            load_checkpoint(saved)


def test_unknown_format_version_is_refused(saved):
    data = saved.read_bytes()
    saved.write_bytes(data.replace(b" v1 ", b" v9 ", 1))
    with pytest.raises(ValueError, match="format version 9"):
        load_checkpoint(saved)


def test_other_files_are_refused(tmp_path):
    path = tmp_path / "weights.npz"
    np.savez(path, w=np.zeros(3))
    with pytest.raises(ValueError, match="not a QIN checkpoint"):
        load_checkpoint(path)
    with pytest.raises(ValueError, match="cannot read"):
        load_checkpoint(tmp_path / "missing.qinckpt")


def test_scenario_mismatch_names_both_scenarios(tmp_path):
    path = tmp_path / "x.qinckpt"
    save_checkpoint(path, {"w": np.zeros(2)}, {**META, "scenario": "device_surge"})
    message = "checkpoint x.qinckpt was saved for scenario 'device_surge', not 'metro_qkd'"
    with pytest.raises(ValueError, match=re.escape(message)):
        load_checkpoint(path, expected={"scenario": "metro_qkd"})


@pytest.mark.parametrize(("field", "wanted", "message"), [
    ("kind", "mlp", "was saved for kind 'vqc', not 'mlp'"),
    ("n_qubits", 6, "was saved for n_qubits 4, not 6"),
    ("hidden", [64, 64], "has no 'hidden'"),
])
def test_expected_field_mismatch_names_the_field(saved, field, wanted, message):
    with pytest.raises(ValueError, match=message):
        load_checkpoint(saved, expected={"kind": "vqc", "scenario": "metro_qkd", field: wanted})


def test_matching_expectations_load(saved):
    params, _ = load_checkpoint(saved, expected={"kind": "vqc", "scenario": "metro_qkd", "n_qubits": 4})
    assert_same_tree(params, sample_params())


def test_template_with_other_shape_is_refused_naming_the_parameter(saved):
    like = sample_params()
    like["circuit"]["rot"] = jnp.zeros((3, 6, 2), jnp.float32)
    message = "parameter ['circuit']['rot'] has shape (3, 4, 2), expected (3, 6, 2)"
    with pytest.raises(ValueError, match=re.escape(message)):
        load_checkpoint(saved, like=like)


def test_template_with_other_structure_is_refused_naming_the_parameters(saved):
    like = sample_params()
    like["circuit"]["bias"] = like["circuit"].pop("scale")
    with pytest.raises(ValueError, match=r"missing parameters \[\"\['circuit'\]\['bias'\]\"\]"):
        load_checkpoint(saved, like=like)


def test_template_with_other_dtype_is_refused(saved):
    like = sample_params()
    like["layers"][0] = np.zeros(6, np.float32)
    with pytest.raises(ValueError, match="dtype int32, expected float32"):
        load_checkpoint(saved, like=like)


class Linear(NamedTuple):
    w: jax.Array
    b: jax.Array


def test_custom_nodes_rebuild_from_a_template_only(tmp_path):
    path = tmp_path / "linear.qinckpt"
    params = {"head": Linear(jnp.ones((2, 3)), jnp.zeros(3))}
    save_checkpoint(path, params, META)
    with pytest.raises(ValueError, match=r"Linear.*like="):
        load_checkpoint(path)
    template = jax.eval_shape(lambda: params)  # ShapeDtypeStructs are enough
    loaded, _ = load_checkpoint(path, like=template)
    assert isinstance(loaded["head"], Linear)
    assert_same_tree(loaded, params)
