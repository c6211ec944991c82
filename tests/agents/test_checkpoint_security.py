"""A checkpoint is data, never code: no unpickling anywhere, crafted files refused, malformed ones named."""

import base64
import hashlib
import io
import json
import pickle
import re
import tokenize
import tracemalloc
import zipfile
from pathlib import Path

import jax
import numpy as np
import pytest

import qin_env
import qin_env.agents
import qin_env.bench
from qin_env import agents
from qin_env.agents import checkpoint
from qin_env.agents.baselines import SB3_FORMAT, SB3PPOAgent
from qin_env.agents.checkpoint import CheckpointError, load_checkpoint, load_metadata, save_checkpoint
from qin_env.bench import cli
from qin_env.bench.entries import convert_sb3
from qin_env.version import ENV_VERSION

SHORT = {"episode.max_steps": 20}
TINY_PPO = {"n_steps": 64, "batch_size": 32, "n_epochs": 1}
ENTRIES = Path(qin_env.bench.__file__).parent / "entries"


# ---------------------------------------------------------------- no unpickling in the package sources

_UNPICKLERS = {"pickle", "cPickle", "_pickle", "cloudpickle", "dill", "joblib", "shelve", "read_pickle",
               "Unpickler", "load_from_zip_file"}
_SB3_LOADERS = {"PPO", "A2C", "DQN", "SAC", "TD3", "DDPG", "BaseAlgorithm", "BasePolicy", "ActorCriticPolicy"}


def _call_args(tokens: list[tokenize.TokenInfo], start: int) -> str:
    """The source text of the arguments of the call whose '(' is `tokens[start]`."""
    depth, out = 0, []
    for tok in tokens[start:]:
        depth += tok.string in "([{" and tok.type == tokenize.OP
        depth -= tok.string in ")]}" and tok.type == tokenize.OP
        out.append(tok.string)
        if depth == 0:
            break
    return "".join(out)


def unsafe_loads(source: str) -> list[str]:
    """Code (not prose: strings and comments are skipped) that unpickles or could: one line per finding."""
    tokens = [t for t in tokenize.generate_tokens(io.StringIO(source).readline)
              if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT, tokenize.INDENT, tokenize.DEDENT)]
    found = []
    for i, tok in enumerate(tokens):
        where = f"line {tok.start[0]}"
        if tok.type == tokenize.STRING and tok.string.strip("'\"") in _UNPICKLERS:  # import_module("pickle")
            found.append(f"{where}: names {tok.string}")
        if tok.type != tokenize.NAME:
            continue
        if tok.string in _UNPICKLERS:
            found.append(f"{where}: uses {tok.string}")
        after = [t.string for t in tokens[i + 1:i + 4]]
        if tok.string == "allow_pickle" and after[:2] != ["=", "False"]:
            found.append(f"{where}: allow_pickle other than False")
        if after[:3] == [".", "load", "("]:
            args = _call_args(tokens, i + 3)
            if tok.string in ("torch", "th") and "weights_only=True" not in args:
                found.append(f"{where}: {tok.string}.load{args} without weights_only=True")
            if tok.string in ("np", "numpy") and "allow_pickle=False" not in args:
                found.append(f"{where}: {tok.string}.load{args} without allow_pickle=False")
        if tok.string in _SB3_LOADERS and after[:2] == [".", "load"]:
            found.append(f"{where}: {tok.string}.load (SB3's loader unpickles)")
    return found


def package_sources() -> list[Path]:
    """Every Python file of the installed packages qin_env, qin_env.agents and qin_env.bench."""
    roots = {Path(m.__file__).parent for m in (qin_env, qin_env.agents, qin_env.bench)}
    return sorted(p for root in roots for p in root.rglob("*.py"))


def test_the_scanner_finds_every_way_to_unpickle_and_passes_safe_loads():
    bad = ["import pickle", "from cloudpickle import loads", "x = pickle.loads(b)", "np.load(f)",
           "np.load(f, allow_pickle=True)", "torch.load(f)", "th.load(f, weights_only=False)", "PPO.load(f)",
           "load_from_zip_file(f)", "importlib.import_module('pickle')", "pd.read_pickle(f)"]
    for line in bad:
        assert unsafe_loads(line), line
    good = ['"""Nothing is pickled."""', "np.load(f, allow_pickle=False)", "torch.load(f, map_location='cpu', "
            "weights_only=True)", "# PPO.load would unpickle", "raise ValueError('cannot unpickle')", "json.load(f)"]
    for line in good:
        assert not unsafe_loads(line), line


def test_no_package_source_unpickles_or_loads_without_the_safe_flags():
    sources = package_sources()
    assert {"checkpoint.py", "baselines.py", "cli.py", "convert_sb3.py"} <= {p.name for p in sources}
    findings = [f"{path}: {finding}" for path in sources for finding in unsafe_loads(path.read_text())]
    assert findings == []


def test_every_pinned_entry_passes_the_loaders_checks_and_sb3_entries_hold_weights_not_a_zip():
    # the entries of this environment version, as many as are trained (benchmarks/entries/manifest.json)
    pinned = sorted(ENTRIES.glob("*/*.qinckpt"))
    assert {p.parent.name for p in pinned} <= {"vqc-ppo", "mlp-ppo", "sb3-ppo"}
    for path in pinned:
        _, _, leaves = checkpoint._unpack(path)  # every check; custom pytree nodes need no template here
        assert all(leaf.dtype.kind in "biufc" for leaf in leaves), path
    for path in sorted((ENTRIES / "sb3-ppo").glob("*.qinckpt")):
        params, metadata = load_checkpoint(path)
        assert metadata["sb3_format"] == SB3_FORMAT, path
        assert set(params) == {"policy"} and all(a.dtype == np.float32 for a in params["policy"].values()), path


# ---------------------------------------------------------------- a crafted old-format sb3 checkpoint

class _Touch:
    """Unpickling this creates a marker file: the payload an attacker hides in SB3's zip."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _payload(marker: Path) -> bytes:
    return pickle.dumps(_Touch(marker))


def crafted_sb3_checkpoint(path: Path, marker: Path) -> Path:
    """An old-format sb3-ppo checkpoint, valid SHA-256 and metadata, whose SB3 zip runs code when unpickled."""
    serialized = {":type:": "<class 'abc.ABCMeta'>", ":serialized:": base64.b64encode(_payload(marker)).decode()}
    data = {"policy_class": serialized, "observation_space": serialized, "an_added_key": serialized,
            "policy_kwargs": {}, "n_steps": 2048}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("data", json.dumps(data))
        archive.writestr("policy.pth", _payload(marker))
        archive.writestr("_stable_baselines3_version", "2.9.2")
    metadata = {"kind": "sb3-ppo", "scenario": "metro_qkd", "overrides": {}, "timesteps": 40960,
                "network": {"policy": "MlpPolicy", "net_arch": {"pi": [64, 64], "vf": [64, 64]}}}
    return save_checkpoint(path, {"sb3_zip": np.frombuffer(buffer.getvalue(), np.uint8)}, metadata)


def test_the_crafted_payload_does_run_code_through_sb3s_own_loader(tmp_path):
    from stable_baselines3.common.save_util import json_to_data  # what PPO.load calls on the zip's `data`

    path = crafted_sb3_checkpoint(tmp_path / "evil.qinckpt", tmp_path / "proof")
    params, _ = load_checkpoint(path)
    data = zipfile.ZipFile(io.BytesIO(params["sb3_zip"].tobytes())).read("data").decode()
    loaded = json_to_data(data, custom_objects={"policy_class": None, "observation_space": None})
    loaded["an_added_key"].close()  # the file object the payload opened
    assert (tmp_path / "proof").exists()  # custom_objects did not stop the key it was not given


def _raised(call) -> BaseException | None:
    """What `call()` raised (SystemExit included), so a test can check the marker before the error."""
    try:
        call()
    except BaseException as exc:  # whatever it is, the marker is checked first
        return exc
    return None


def test_crafted_old_format_checkpoint_is_refused_by_make_and_runs_nothing(tmp_path):
    marker = tmp_path / "marker"
    path = crafted_sb3_checkpoint(tmp_path / "evil.qinckpt", marker)
    error = _raised(lambda: agents.make("sb3-ppo", checkpoint=str(path)))
    assert not marker.exists()
    assert isinstance(error, ValueError)
    assert re.search(r"evil\.qinckpt stores stable-baselines3's own zip.*can run any code.*Re-train.*convert_sb3 "
                     "OLD.qinckpt NEW.qinckpt", str(error))


def test_crafted_old_format_checkpoint_is_refused_by_qin_evaluate_and_runs_nothing(tmp_path):
    marker = tmp_path / "marker"
    path = crafted_sb3_checkpoint(tmp_path / "evil.qinckpt", marker)
    error = _raised(lambda: cli.main(["evaluate", "--agent", "sb3-ppo", "--checkpoint", str(path), "--episodes", "1"]))
    assert not marker.exists()
    assert isinstance(error, SystemExit)
    assert "no longer loaded, because loading it unpickles" in str(error)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch notes the payload's protocol, then refuses it
def test_the_converter_reads_no_pickle_of_a_crafted_file(tmp_path):
    marker = tmp_path / "marker"
    path = crafted_sb3_checkpoint(tmp_path / "evil.qinckpt", marker)
    with pytest.raises(ValueError, match=r"policy\.pth is not a plain state_dict"):
        convert_sb3.convert(path, tmp_path / "new.qinckpt")
    assert not marker.exists() and not (tmp_path / "new.qinckpt").exists()


# ---------------------------------------------------------------- malformed containers

def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _json_npy(value) -> bytes:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return _npy(np.frombuffer(raw, np.uint8))


def _npy_with_header(header: str, data: bytes, version: bytes = b"\x01\x00") -> bytes:
    """A .npy entry with a hand-written header (numpy would refuse to write a lying one)."""
    text = header.encode("latin1") + b" " * (118 - len(header)) + b"\n"
    size = len(text).to_bytes(2 if version == b"\x01\x00" else 4, "little")
    return b"\x93NUMPY" + version + size + text + data


METADATA = {"format_version": 1, "env_version": ENV_VERSION, "kind": "vqc", "scenario": "metro_qkd", "network": {},
            "overrides": {}, "config_hash": "0123456789abcdef"}
TREE = {"spec": {"dict": [["w", {"leaf": 0}]]}, "paths": ["['w']"]}


def _entries(**changes) -> dict[str, bytes]:
    """A valid archive's entries with some replaced (None: removed)."""
    entries = {"metadata.json.npy": _json_npy(METADATA), "tree.json.npy": _json_npy(TREE),
               "leaf_00000.npy": _npy(np.arange(4, dtype=np.float32))}
    entries.update({name.replace("__", "."): value for name, value in changes.items()})
    return {k: v for k, v in entries.items() if v is not None}


def _zip(entries: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def signed(path: Path, payload: bytes) -> Path:
    """A file with a valid header and SHA-256 around any payload: only the contents can be wrong."""
    path.write_bytes(b"QIN-CHECKPOINT v1 sha256=%s\n" % hashlib.sha256(payload).hexdigest().encode() + payload)
    return path


def test_a_hand_built_valid_container_loads(tmp_path):
    params, metadata = load_checkpoint(signed(tmp_path / "ok.qinckpt", _zip(_entries())))
    np.testing.assert_array_equal(params["w"], np.arange(4, dtype=np.float32))
    assert metadata["kind"] == "vqc"


SMALL_DATA = np.zeros(4, np.float32).tobytes()
MALFORMED = {
    "payload is not a zip": (b"not a zip at all", "payload is not a zip archive"),
    "no metadata": (_zip(_entries(metadata__json__npy=None)), "has no metadata.json entry"),
    "metadata is not JSON": (_zip(_entries(metadata__json__npy=_json_npy(b"{"))), "metadata.json is not valid JSON"),
    "metadata is not UTF-8": (_zip(_entries(metadata__json__npy=_json_npy(b"\xff\xfe"))), "not valid JSON"),
    "metadata nested past the recursion limit": (
        _zip(_entries(metadata__json__npy=_json_npy(b"[" * 100_000 + b"]" * 100_000))), "not valid JSON"),
    "metadata is a list": (_zip(_entries(metadata__json__npy=_json_npy([1]))), "metadata.json holds a list"),
    "metadata stored as floats": (_zip(_entries(metadata__json__npy=_npy(np.zeros(3)))), "expected a uint8 vector"),
    "metadata lacks kind": (_zip(_entries(metadata__json__npy=_json_npy(
        {k: v for k, v in METADATA.items() if k != "kind"}))), "metadata has no 'kind' field"),
    "kind is not a string": (_zip(_entries(metadata__json__npy=_json_npy({**METADATA, "kind": None}))),
                             "field 'kind' is a NoneType, expected str"),
    "metadata lacks scenario": (_zip(_entries(metadata__json__npy=_json_npy(
        {k: v for k, v in METADATA.items() if k != "scenario"}))), "metadata has no 'scenario' field"),
    "network is a list": (_zip(_entries(metadata__json__npy=_json_npy({**METADATA, "network": [1]}))),
                          "field 'network' is a list, expected dict"),
    "format_version is a string": (_zip(_entries(metadata__json__npy=_json_npy({**METADATA, "format_version": "1"}))),
                                   "format version '1' in its metadata"),
    "tree is not an object": (_zip(_entries(tree__json__npy=_json_npy([]))), "tree.json must be an object"),
    "tree paths are not strings": (_zip(_entries(tree__json__npy=_json_npy({**TREE, "paths": [0]}))),
                                   "'paths' must be a list of distinct strings"),
    "tree leaf index skips": (_zip(_entries(tree__json__npy=_json_npy({**TREE, "spec": {"leaf": 5}}))),
                              "leaf index 5 where 0 comes next"),
    "tree node of unknown type": (_zip(_entries(tree__json__npy=_json_npy({**TREE, "spec": {"exec": "x"}}))),
                                  "node of unknown type"),
    "tree nested too deep": (_zip(_entries(tree__json__npy=_json_npy(
        {"spec": json.loads('{"list": [' * 200 + '{"leaf": 0}' + "]}" * 200), "paths": ["x"]}))), "nested deeper"),
    "tree counts other leaves than paths": (_zip(_entries(tree__json__npy=_json_npy({**TREE, "paths": ["a", "b"]}))),
                                            "has 1 leaves but 'paths' names 2"),
    "leaf missing": (_zip(_entries(leaf_00000__npy=None)), r"lacks the arrays \['leaf_00000'\]"),
    "extra leaf": (_zip(_entries(leaf_00001__npy=_npy(np.zeros(1)))), r"unexpected entries \['leaf_00001'\]"),
    "entry of another name": (_zip(_entries(**{"../data.pkl": b"x"})), "unexpected entry '../data.pkl'"),
    "object dtype leaf": (_zip(_entries(leaf_00000__npy=_npy_with_header(
        "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", b"\x80\x04N."))), "has dtype object"),
    "record dtype leaf": (_zip(_entries(leaf_00000__npy=_npy(np.zeros(2, [("a", "<f4")])))), "has dtype"),
    "declared shape far beyond the data": (_zip(_entries(leaf_00000__npy=_npy_with_header(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (134217728,), }", SMALL_DATA))),
        r"declares float32\[134217728\] \(536870912 bytes of data\) but holds 16"),
    "truncated leaf data": (_zip(_entries(leaf_00000__npy=_npy(np.zeros(4, np.float32))[:-1])), "truncated or padded"),
    "negative shape": (_zip(_entries(leaf_00000__npy=_npy_with_header(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (-4,), }", SMALL_DATA))), r"declares the shape \(-4,\)"),
    "bad .npy magic": (_zip(_entries(leaf_00000__npy=b"\x00" * 200)), "no readable .npy header"),
    ".npy version 3": (_zip(_entries(leaf_00000__npy=_npy_with_header(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", SMALL_DATA, b"\x03\x00"))), "no readable .npy"),
    "compressed entries": (_zip(_entries(), zipfile.ZIP_DEFLATED), "is compressed or encrypted"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_each_malformed_container_is_one_clear_error_naming_the_file(tmp_path, case):
    payload, message = MALFORMED[case]
    path = signed(tmp_path / "crafted.qinckpt", payload)
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(path)
    assert "crafted.qinckpt" in str(info.value)


@pytest.mark.parametrize("case", ["payload is not a zip", "metadata is not JSON", "network is a list",
                                  "tree nested too deep", "compressed entries"])
def test_reading_only_the_metadata_makes_the_same_checks(tmp_path, case):
    payload, message = MALFORMED[case]
    with pytest.raises(CheckpointError, match=message):
        load_metadata(signed(tmp_path / "crafted.qinckpt", payload))


def test_reading_only_the_metadata_reads_no_array(tmp_path):
    lying = _npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (134217728,), }", SMALL_DATA)
    path = signed(tmp_path / "x.qinckpt", _zip(_entries(leaf_00000__npy=lying)))
    assert load_metadata(path, expected={"kind": "vqc"})["scenario"] == "metro_qkd"
    with pytest.raises(CheckpointError, match="was saved for kind 'vqc', not 'mlp'"):
        load_metadata(path, expected={"kind": "mlp"})


def test_a_duplicated_entry_is_refused(tmp_path):
    entries = _entries()
    buffer = io.BytesIO()
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(buffer, "w") as archive:
        for name, data in [*entries.items(), ("leaf_00000.npy", entries["leaf_00000.npy"])]:
            archive.writestr(name, data)
    with pytest.raises(CheckpointError, match=r"holds the entry 'leaf_00000\.npy' twice"):
        load_checkpoint(signed(tmp_path / "dup.qinckpt", buffer.getvalue()))


def test_a_lying_array_header_is_refused_before_anything_is_allocated(tmp_path):
    gib = "{'descr': '<f8', 'fortran_order': False, 'shape': (1073741824,), }"  # 8 GiB declared, 16 bytes held
    path = signed(tmp_path / "bomb.qinckpt", _zip(_entries(leaf_00000__npy=_npy_with_header(gib, SMALL_DATA))))
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match="declares float64"):
            load_checkpoint(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20


def test_files_that_are_not_checkpoints_or_too_large_are_refused(tmp_path, monkeypatch):
    (tmp_path / "notes.txt").write_text("QIN-CHECKPOINT is not what this is\n")
    with pytest.raises(CheckpointError, match="not a QIN checkpoint"):
        load_checkpoint(tmp_path / "notes.txt")
    with pytest.raises(CheckpointError, match="not a regular file"):
        load_checkpoint(tmp_path)
    path = signed(tmp_path / "ok.qinckpt", _zip(_entries()))
    monkeypatch.setattr(checkpoint, "MAX_CHECKPOINT_BYTES", path.stat().st_size - 1)
    with pytest.raises(CheckpointError, match=r"over the \d+-byte cap"):
        load_checkpoint(path)


def test_random_damage_under_a_valid_sha256_is_always_a_clear_error_or_a_clean_load(tmp_path):
    valid = _zip(_entries())
    rng = np.random.default_rng(0)
    outcomes = {"refused": 0, "loaded": 0}
    for trial in range(400):
        damaged = bytearray(valid)
        if trial % 4 == 0:
            damaged = damaged[:rng.integers(0, len(damaged))]
        else:
            for position in rng.integers(0, len(damaged), size=rng.integers(1, 4)):
                damaged[position] = rng.integers(0, 256)
        path = signed(tmp_path / f"fuzz{trial}.qinckpt", bytes(damaged))
        try:
            params, _ = load_checkpoint(path)
        except CheckpointError as exc:
            assert path.name in str(exc)
            outcomes["refused"] += 1
        else:
            assert all(isinstance(leaf, np.ndarray) for leaf in jax.tree.leaves(params))
            outcomes["loaded"] += 1
        path.unlink()
    assert outcomes["refused"] > 200


def test_saving_a_leaf_that_is_not_numeric_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"leaf \['names'\] has dtype <U1"):
        save_checkpoint(tmp_path / "x.qinckpt", {"names": np.array(["a", "b"])}, METADATA)


# ---------------------------------------------------------------- sb3-ppo in its data-only format

def _observations(scenario: str, overrides: dict, n_random: int = 32) -> list[np.ndarray]:
    """Observations of the PettingZoo face along a heuristic episode, and uniform random ones."""
    env = qin_env.parallel_env(scenario, overrides=overrides)
    obs, _ = env.reset(seed=0)
    team = agents.make("heuristic", scenario=scenario, overrides=overrides)
    seen = []
    for i in range(8):
        seen.append(obs)
        obs, *_ = env.step(team.act(jax.random.key(i), obs))
    size = seen[0]["orchestrator"].size
    rng = np.random.default_rng(1)
    return seen + [{**seen[0], "orchestrator": rng.uniform(0, 1, size).astype(np.float32)} for _ in range(n_random)]


@pytest.fixture(scope="module")
def tiny_sb3(tmp_path_factory):
    """A freshly trained SB3 agent on short episodes, and its checkpoint."""
    trained = agents.make("sb3-ppo", overrides=SHORT, seed=0, **TINY_PPO).train(256, seed=1)
    return trained, trained.save(tmp_path_factory.mktemp("sb3") / "tiny.qinckpt")


def test_sb3_round_trip_acts_identically_and_stores_only_arrays(tiny_sb3):
    trained, path = tiny_sb3
    params, meta = load_checkpoint(path, expected={"kind": "sb3-ppo", "scenario": "metro_qkd"})
    assert set(params) == {"policy"} and all(a.dtype == np.float32 for a in params["policy"].values())
    assert (meta["sb3_format"], meta["timesteps"], meta["network"]["activation_fn"]) == (SB3_FORMAT, 256, "Tanh")
    assert meta["ppo_hyperparameters"]["n_steps"] == 64
    loaded = agents.make("sb3-ppo", overrides=SHORT, checkpoint=str(path))
    assert loaded.model.n_steps == 64 and loaded.model.num_timesteps == 256
    for i, obs in enumerate(_observations("metro_qkd", SHORT)):
        key = jax.random.key(i)
        expected, actual = trained.act(key, obs), loaded.act(key, obs)
        assert all(np.array_equal(expected[a], actual[a]) for a in expected)
    with pytest.raises(ValueError, match="saved for scenario 'metro_qkd', not 'device_surge'"):
        agents.make("sb3-ppo", scenario="device_surge", checkpoint=str(path))
    with pytest.raises(ValueError, match="config_hash"):
        agents.make("sb3-ppo", checkpoint=str(path))  # trained with episode.max_steps=20


def test_sb3_round_trip_keeps_a_custom_architecture(tmp_path):
    import torch

    trained = agents.make("sb3-ppo", overrides=SHORT, **TINY_PPO,
                          policy_kwargs={"net_arch": {"pi": [16], "vf": [8, 8]}, "activation_fn": torch.nn.ReLU})
    path = trained.train(64).save(tmp_path / "relu.qinckpt")
    loaded = agents.make("sb3-ppo", overrides=SHORT, checkpoint=str(path))
    assert loaded.model.policy.net_arch == {"pi": [16], "vf": [8, 8]}
    assert loaded.model.policy.activation_fn is torch.nn.ReLU
    for i, obs in enumerate(_observations("metro_qkd", SHORT, n_random=8)):
        assert np.array_equal(trained.act(jax.random.key(i), obs)["orchestrator"],
                              loaded.act(jax.random.key(i), obs)["orchestrator"])


def _tampered(path: Path, out: Path, metadata=lambda m: None, arrays=lambda a: None) -> Path:
    params, meta = load_checkpoint(path)
    metadata(meta)
    arrays(params["policy"])
    return save_checkpoint(out, params, meta)


def _transpose_action_head(weights: dict) -> None:
    weights["action_net.weight"] = np.ascontiguousarray(weights["action_net.weight"].T)


TAMPERED = {
    "activation outside the allow-list": (lambda m: m["network"].update(activation_fn="os.system"), None,
                                          r"network.activation_fn is 'os.system'; allowed: Tanh, ReLU"),
    "policy outside the allow-list": (lambda m: m["network"].update(policy="CnnPolicy"), None,
                                      "network.policy is 'CnnPolicy'; allowed: MlpPolicy"),
    "huge net_arch": (lambda m: m["network"].update(net_arch=[10**6, 10**6]), None,
                      r"network.net_arch .* allowed: a list of at most 16 ints in \[1, 4096\]"),
    "net_arch larger than the arrays": (lambda m: m["network"].update(net_arch=[4096] * 16), None,
                                        "an architecture of the .* parameters stored"),
    "n_steps out of range": (lambda m: m["ppo_hyperparameters"].update(n_steps=10**9), None,
                             r"ppo_hyperparameters.n_steps is 1000000000; allowed: int in \[2, 65536\]"),
    "learning rate beyond any float": (lambda m: m["ppo_hyperparameters"].update(learning_rate=10**400), None,
                                       r"ppo_hyperparameters.learning_rate is 1000.*allowed: float in \[0.0, 1.0\]"),
    "unknown hyperparameter": (lambda m: m["ppo_hyperparameters"].update(policy_class="x"), None,
                               r"ppo_hyperparameters has unknown keys \['policy_class'\]"),
    "no sb3_format": (lambda m: m.pop("sb3_format"), None, "sb3_format is None; allowed: 2"),
    "observation space of another scenario": (lambda m: m["network"]["observation_space"].update(shape=[3]), None,
                                              "network.observation_space"),
    "optimizer kwargs outside the allow-list": (lambda m: m["network"].update(optimizer_kwargs={"foreach": True}),
                                                None, "network.optimizer_kwargs"),
    "tensor of the wrong shape": (None, _transpose_action_head,
                                  r"tensor 'action_net.weight' is float32\[64, \d+\], the rebuilt policy's is"),
    "tensor of the wrong dtype": (None, lambda w: w.update({"value_net.bias": w["value_net.bias"].astype(np.float64)}),
                                  r"tensor 'value_net.bias' is float64\[1\], the rebuilt policy's is float32\[1\]"),
    "tensor renamed": (None, lambda w: w.update({"extra.weight": w.pop("value_net.bias")}),
                       r"lacks the tensors \['value_net.bias'\]"),
}


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_tampered_sb3_metadata_or_arrays_are_refused_naming_the_field(tiny_sb3, tmp_path, case):
    change_metadata, change_arrays, message = TAMPERED[case]
    path = _tampered(tiny_sb3[1], tmp_path / "tampered.qinckpt", change_metadata or (lambda m: None),
                     change_arrays or (lambda a: None))
    with pytest.raises(ValueError, match=message) as info:
        SB3PPOAgent(overrides=SHORT, checkpoint=path)
    assert "tampered.qinckpt" in str(info.value)


def test_old_format_file_of_our_own_converts_to_one_that_acts_identically(tmp_path):
    """The conversion command users run on a file they trust, on a file written the old way."""
    trained = agents.make("sb3-ppo", overrides=SHORT, seed=3, **TINY_PPO).train(128)
    buffer = io.BytesIO()
    trained.model.save(buffer)  # SB3's own zip, as sb3-ppo checkpoints held it before SB3_FORMAT 2
    old = save_checkpoint(tmp_path / "old.qinckpt", {"sb3_zip": np.frombuffer(buffer.getvalue(), np.uint8)},
                          {"kind": "sb3-ppo", "scenario": "metro_qkd", "overrides": SHORT, "timesteps": 128,
                           "created": "2026-01-01T00:00:00+00:00"})
    with pytest.raises(ValueError, match="stores stable-baselines3's own zip"):
        agents.make("sb3-ppo", overrides=SHORT, checkpoint=str(old))
    assert convert_sb3.main([str(old), str(tmp_path / "new.qinckpt")]) == 0
    _, meta = load_checkpoint(tmp_path / "new.qinckpt")
    assert meta["created"] == "2026-01-01T00:00:00+00:00"
    assert meta["converted_from"]["sha256"] == hashlib.sha256(old.read_bytes()).hexdigest()
    assert meta["ppo_hyperparameters"]["clip_range"] == 0.2 and meta["timesteps"] == 128
    converted = agents.make("sb3-ppo", overrides=SHORT, checkpoint=str(tmp_path / "new.qinckpt"))
    for i, obs in enumerate(_observations("metro_qkd", SHORT, n_random=16)):
        assert np.array_equal(trained.act(jax.random.key(i), obs)["orchestrator"],
                              converted.act(jax.random.key(i), obs)["orchestrator"])
    with pytest.raises(SystemExit, match="already in sb3_format 2"):
        convert_sb3.main([str(tmp_path / "new.qinckpt"), str(tmp_path / "again.qinckpt")])
