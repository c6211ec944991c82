"""Checkpoints: one self-checking file holding a parameter pytree and what it was trained for.

Layout of a `.qinckpt` file:

    QIN-CHECKPOINT v1 sha256=<64 hex digits>\\n      header line
    <npz archive>                                    payload (numpy's zip of .npy arrays)

The SHA-256 covers the whole payload and the header is checked byte for byte, so a truncated or
altered file is refused, never half loaded. The archive holds `metadata.json` and `tree.json`
(UTF-8 JSON stored as uint8 arrays: nothing is pickled) and one `leaf_NNNNN` array per pytree
leaf. To read the arrays with numpy alone: `np.load(io.BytesIO(data[data.index(b"\\n") + 1:]))`.

Metadata written by `save_checkpoint` (the caller gives `kind`, `scenario` and anything else):

| key              | meaning                                                                 |
|------------------|-------------------------------------------------------------------------|
| `format_version` | layout version of this file (`FORMAT_VERSION`)                          |
| `kind`           | agent kind, e.g. `"vqc"`, `"mlp"`, `"sb3-ppo"`                          |
| `network`        | network configuration, e.g. `{"n_qubits": 4, "n_layers": 3}`           |
| `scenario`       | scenario name (or TOML path) trained on                                 |
| `overrides`      | dotted-key overrides applied to it                                      |
| `config_hash`    | `qin_env.params.config_hash` of the scenario with its overrides         |
| `versions`       | installed versions of qin-env, jax, pennylane, optax                    |
| `created`        | UTC timestamp, ISO 8601                                                 |

Pytrees of dicts (string keys), lists, tuples and None rebuild by themselves; other nodes
(NamedTuples, registered dataclasses) rebuild from a `like=` template of the same structure.
Leaves come back as numpy arrays with their saved dtype and shape.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import importlib.metadata
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from qin_env.params import config_hash, load_config

FORMAT_VERSION = 1
SUFFIX = ".qinckpt"
_MAGIC = b"QIN-CHECKPOINT"
FINAL_CHECKPOINT = f"checkpoint_final{SUFFIX}"  # what `qin train` leaves in its output folder: the best seed
_VERSIONED_PACKAGES = ("qin-env", "jax", "pennylane", "optax")

__all__ = ["FINAL_CHECKPOINT", "FORMAT_VERSION", "SUFFIX", "atomic_write_bytes", "load_checkpoint", "save_checkpoint"]


# ---------------------------------------------------------------- tree structure as JSON

def _encode_tree(node: Any, leaves: list[Any]) -> Any:
    """JSON description of a pytree, appending its leaves in `jax.tree.leaves` order."""
    if node is None:
        return {"none": True}
    if isinstance(node, dict):
        if not all(isinstance(k, str) for k in node):
            raise ValueError(f"checkpoint pytrees need string dict keys, got {sorted(map(repr, node))}")
        return {"dict": [[k, _encode_tree(node[k], leaves)] for k in sorted(node)]}  # jax sorts dict keys too
    if type(node) in (list, tuple):
        return {type(node).__name__: [_encode_tree(child, leaves) for child in node]}
    children, treedef = jax.tree_util.tree_flatten(node, is_leaf=lambda x: x is not node)
    if treedef.num_nodes == 1 and treedef.num_leaves == 1:  # a leaf
        leaves.append(node)
        return {"leaf": len(leaves) - 1}
    return {"custom": type(node).__qualname__, "children": [_encode_tree(child, leaves) for child in children]}


def _decode_tree(spec: Any, leaves: list[np.ndarray]) -> Any:
    """Rebuild a pytree of plain containers from its JSON description."""
    if "none" in spec:
        return None
    if "leaf" in spec:
        return leaves[spec["leaf"]]
    if "dict" in spec:
        return {k: _decode_tree(child, leaves) for k, child in spec["dict"]}
    if "list" in spec:
        return [_decode_tree(child, leaves) for child in spec["list"]]
    if "tuple" in spec:
        return tuple(_decode_tree(child, leaves) for child in spec["tuple"])
    raise ValueError(f"cannot rebuild a {spec.get('custom', '?')} node without a like= template")


def _custom_nodes(spec: Any) -> list[str]:
    """Type names of the nodes `_decode_tree` cannot rebuild without a template."""
    if "custom" in spec:
        return [spec["custom"]]
    if "dict" in spec:
        return [name for _, child in spec["dict"] for name in _custom_nodes(child)]
    return [name for child in spec.get("list", spec.get("tuple", [])) for name in _custom_nodes(child)]


def _leaf_paths(tree: Any) -> list[str]:
    return [jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]


# ---------------------------------------------------------------- save

def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in _VERSIONED_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _full_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The caller's metadata completed with the fields every checkpoint carries."""
    missing = [k for k in ("kind", "scenario") if k not in metadata]
    if missing:
        raise ValueError(f"checkpoint metadata needs {missing}; got keys {sorted(metadata)}")
    meta = {"network": {}, **metadata, "format_version": FORMAT_VERSION}
    meta["overrides"] = dict(meta.get("overrides") or {})
    if "config_hash" not in meta:
        meta["config_hash"] = config_hash(load_config(meta["scenario"], meta["overrides"]))
    meta.setdefault("versions", _versions())
    meta.setdefault("created", datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))
    try:
        json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"checkpoint metadata must be plain JSON (str, numbers, lists, dicts): {exc}") from exc
    return meta


def _json_array(value: Any) -> np.ndarray:
    return np.frombuffer(json.dumps(value, sort_keys=True).encode(), np.uint8)


def _serialise(params: Any, metadata: dict[str, Any]) -> bytes:
    """The whole file's bytes: header line, then the npz payload."""
    leaves: list[Any] = []
    spec = _encode_tree(params, leaves)
    arrays = {f"leaf_{i:05d}": np.asarray(jax.device_get(leaf)) for i, leaf in enumerate(leaves)}
    if any(a.dtype.hasobject for a in arrays.values()):
        raise ValueError("checkpoint leaves must be numeric arrays, not Python objects")
    tree = {"spec": spec, "paths": _leaf_paths(params)}
    buffer = io.BytesIO()
    np.savez(buffer, **{"metadata.json": _json_array(metadata), "tree.json": _json_array(tree)}, **arrays)
    payload = buffer.getvalue()
    header = b"%s v%d sha256=%s\n" % (_MAGIC, FORMAT_VERSION, hashlib.sha256(payload).hexdigest().encode())
    return header + payload


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` all or nothing: a temporary file beside it, fsynced, renamed over it, folder fsynced."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # persist the rename too; not every platform can open a folder
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path


def save_checkpoint(path: str | os.PathLike, params: Any, metadata: Mapping[str, Any]) -> Path:
    """Save a parameter pytree and its metadata atomically; returns the path written.

    `metadata` needs `kind` and `scenario`; `network`, `overrides` and any other JSON-able keys
    are kept. `format_version`, `config_hash`, `versions` and `created` are filled in.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise ValueError(f"cannot save checkpoint {path}: folder {path.parent} does not exist")
    atomic_write_bytes(path, _serialise(params, _full_metadata(metadata)))
    return path


# ---------------------------------------------------------------- load

def _read_payload(path: Path) -> tuple[int, bytes]:
    """Check the header and the payload's SHA-256; returns (format version, payload)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read checkpoint {path}: {exc}") from exc
    end = data.find(b"\n", 0, 256)
    header = data[:end].split(b" ") if end > 0 else []
    well_formed = len(header) == 3 and header[1].startswith(b"v") and header[2].startswith(b"sha256=")
    if not well_formed or header[0] != _MAGIC:
        raise ValueError(f"{path.name} is not a QIN checkpoint (bad header; truncated or another file type)")
    try:
        version = int(header[1][1:])
    except ValueError:
        raise ValueError(f"checkpoint {path.name} has an unreadable format version {header[1]!r}") from None
    if version != FORMAT_VERSION:
        raise ValueError(f"checkpoint {path.name} has format version {version}; this qin-env reads only "
                         f"version {FORMAT_VERSION}")
    payload = data[end + 1:]
    if hashlib.sha256(payload).hexdigest().encode() != header[2][len(b"sha256="):]:
        raise ValueError(f"checkpoint {path.name} is corrupt or truncated (SHA-256 of its payload does not match)")
    return version, payload


def _unpack(path: Path, payload: bytes) -> tuple[dict[str, Any], dict[str, Any], list[np.ndarray]]:
    """Metadata, tree description and leaves from a verified payload (every array read before use)."""
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as archive:
            contents = {name: archive[name] for name in archive.files}
        metadata = json.loads(contents.pop("metadata.json").tobytes())
        tree = json.loads(contents.pop("tree.json").tobytes())
        leaves = [contents.pop(f"leaf_{i:05d}") for i in range(len(tree["paths"]))]
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError) as exc:
        raise ValueError(f"checkpoint {path.name} is unreadable ({type(exc).__name__}: {exc})") from exc
    if contents:
        raise ValueError(f"checkpoint {path.name} holds unexpected entries {sorted(contents)}")
    return metadata, tree, leaves


def _lookup(metadata: Mapping[str, Any], field: str) -> Any:
    """A metadata field, looked up at the top level and then in the network configuration."""
    if field in metadata:
        return metadata[field]
    network = metadata.get("network") or {}
    return network.get(field, _MISSING)


_MISSING = object()


def _check_expected(path: Path, metadata: Mapping[str, Any], expected: Mapping[str, Any]) -> None:
    problems = []
    for field, wanted in expected.items():
        found = _lookup(metadata, field)
        if found is _MISSING:
            problems.append(f"has no {field!r} (expected {wanted!r})")
        elif found != wanted:
            problems.append(f"was saved for {field} {found!r}, not {wanted!r}")
    if problems:
        raise ValueError(f"checkpoint {path.name} " + "; ".join(problems))


def _check_like(path: Path, tree: Mapping[str, Any], leaves: list[np.ndarray], like: Any) -> None:
    """Refuse a parameter tree whose leaf paths, shapes or dtypes differ from the template's."""
    want = dict(zip(_leaf_paths(like), jax.tree.leaves(like), strict=True))
    have = dict(zip(tree["paths"], leaves, strict=True))
    problems = []
    if missing := [p for p in want if p not in have]:
        problems.append(f"missing parameters {missing}")
    if extra := [p for p in have if p not in want]:
        problems.append(f"unexpected parameters {extra}")
    for p in want.keys() & have.keys():
        template = want[p] if hasattr(want[p], "dtype") else np.asarray(want[p])  # arrays, ShapeDtypeStructs
        shape, dtype = tuple(template.shape), np.dtype(template.dtype)
        if have[p].shape != shape:
            problems.append(f"parameter {p} has shape {have[p].shape}, expected {shape}")
        elif have[p].dtype != dtype:
            problems.append(f"parameter {p} has dtype {have[p].dtype}, expected {dtype}")
    if not problems and list(want) != list(have):
        problems.append("parameters are stored in another order than the template's")
    if problems:
        raise ValueError(f"checkpoint {path.name} does not fit the expected parameter tree: " + "; ".join(problems))


def load_checkpoint(
    path: str | os.PathLike, *, expected: Mapping[str, Any] | None = None, like: Any = None,
) -> tuple[Any, dict[str, Any]]:
    """Load `(params, metadata)`, refusing corrupt files, other format versions and mismatches.

    `expected`: metadata fields that must match, e.g. `{"kind": "vqc", "scenario": "metro_qkd",
    "n_qubits": 4}` (looked up at the top level, then in `metadata["network"]`). `like`: a template
    pytree; the saved tree must have its leaf paths, shapes and dtypes, and is rebuilt in its structure.
    """
    path = Path(path)
    _, payload = _read_payload(path)
    metadata, tree, leaves = _unpack(path, payload)
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"checkpoint {path.name} has format version {metadata.get('format_version')!r} in its "
                         f"metadata; this qin-env reads only version {FORMAT_VERSION}")
    if expected:
        _check_expected(path, metadata, expected)
    if like is not None:
        _check_like(path, tree, leaves, like)
        return jax.tree.unflatten(jax.tree.structure(like), leaves), metadata
    if custom := _custom_nodes(tree["spec"]):
        raise ValueError(f"checkpoint {path.name} holds pytree nodes of type {sorted(set(custom))}; pass like= a "
                         "template pytree of the same structure to rebuild them")
    return _decode_tree(tree["spec"], leaves), metadata

