"""Checkpoints: one self-checking file holding a parameter pytree and what it was trained for.

Layout of a `.qinckpt` file:

    QIN-CHECKPOINT v1 sha256=<64 hex digits>\\n      header line
    <npz archive>                                    payload (numpy's zip of .npy arrays)

The SHA-256 covers the whole payload and the header is checked byte for byte, so a truncated or
altered file is refused, never half loaded. The archive holds `metadata.json` and `tree.json`
(UTF-8 JSON stored as uint8 arrays) and one `leaf_NNNNN` array per pytree leaf: arrays and JSON
only, for every agent kind, so loading a checkpoint never runs code from it. To read the arrays
with numpy alone: `np.load(io.BytesIO(data[data.index(b"\\n") + 1:]), allow_pickle=False)`.

Metadata written by `save_checkpoint` (the caller gives `kind`, `scenario` and anything else):

| key              | meaning                                                                 |
|------------------|-------------------------------------------------------------------------|
| `format_version` | layout version of this file (`FORMAT_VERSION`)                          |
| `kind`           | agent kind, e.g. `"vqc"`, `"mlp"`, `"sb3-ppo"`                          |
| `network`        | network configuration, e.g. `{"n_qubits": 4, "n_layers": 3}`           |
| `scenario`       | scenario name (or TOML path) trained on                                 |
| `overrides`      | dotted-key overrides applied to it                                      |
| `config_hash`    | `qin_env.params.config_hash` of the scenario with its overrides         |
| `env_version`    | `qin_env.version.ENV_VERSION` the file was made under                   |
| `versions`       | installed versions of qin-env, jax, pennylane, optax                    |
| `created`        | UTC timestamp, ISO 8601                                                 |

Pytrees of dicts (string keys), lists, tuples and None rebuild by themselves; other nodes
(NamedTuples, registered dataclasses) rebuild from a `like=` template of the same structure.
Leaves come back as numpy arrays with their saved dtype and shape: bool, integer, float or complex.

`load_checkpoint` treats a file as untrusted input. In order, before any array is read, it checks:
the file is a regular file of at most `MAX_CHECKPOINT_BYTES`; the header and the SHA-256; every
zip entry is stored uncompressed, unencrypted, named as above, and their sizes add up to at most
the payload; `metadata.json` and `tree.json` are JSON of the documented types, nested at most
`MAX_TREE_DEPTH` deep; the metadata's `env_version` is this environment's (a file without one was
made before versioning: version 0); every leaf's `.npy` header declares a plain numeric dtype and a
shape whose bytes fill its entry exactly. Anything else is one `ValueError` naming the file and the field.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import importlib.metadata
import io
import json
import os
import re
import stat
import struct
import tempfile
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import jax
import numpy as np

from qin_env import version as qin_version
from qin_env.params import config_hash, load_config

FORMAT_VERSION = 1
SUFFIX = ".qinckpt"
FINAL_CHECKPOINT = f"checkpoint_final{SUFFIX}"  # what `qin train` leaves in its output folder: the best seed
MAX_CHECKPOINT_BYTES = 1 << 30  # 1 GiB; the pinned entries are under 0.5 MiB
MAX_TREE_DEPTH = 64  # nesting of tree.json; parameter pytrees are a few levels deep
_MAGIC = b"QIN-CHECKPOINT"
_VERSIONED_PACKAGES = ("qin-env", "jax", "pennylane", "optax")
_NUMERIC_KINDS = "biufc"  # bool, signed, unsigned, float, complex: nothing that holds Python objects
_JSON_ENTRIES = ("metadata.json", "tree.json")
_LEAF_NAME = re.compile(r"leaf_(\d{5})")
_UNREADABLE = (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError, NotImplementedError, struct.error,
               OverflowError, RecursionError)  # what zipfile and numpy's .npy header parser raise on a damaged archive

__all__ = ["FINAL_CHECKPOINT", "FORMAT_VERSION", "MAX_CHECKPOINT_BYTES", "MAX_TREE_DEPTH", "SUFFIX",
           "CheckpointError", "EnvVersionError", "atomic_write_bytes", "check_expected", "load_checkpoint",
           "load_metadata", "package_versions", "save_checkpoint"]


class CheckpointError(ValueError):
    """A checkpoint file that cannot be loaded: damaged, malformed, of another format, or not the one expected."""


class EnvVersionError(CheckpointError):
    """A well-formed checkpoint made under another environment version (its results do not carry over)."""


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
    """Rebuild a pytree of plain containers from its (checked) JSON description."""
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

def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages a checkpoint's numbers depend on (its `versions` field)."""
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
    meta = {"network": {}, **metadata, "format_version": FORMAT_VERSION, "env_version": qin_version.ENV_VERSION}
    meta["overrides"] = dict(meta.get("overrides") or {})
    if "config_hash" not in meta:
        meta["config_hash"] = config_hash(load_config(meta["scenario"], meta["overrides"]))
    meta.setdefault("versions", package_versions())
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
    paths = _leaf_paths(params)
    arrays = {f"leaf_{i:05d}": np.asarray(jax.device_get(leaf)) for i, leaf in enumerate(leaves)}
    for path, array in zip(paths, arrays.values(), strict=True):
        if array.dtype.kind not in _NUMERIC_KINDS:
            raise ValueError(f"checkpoint leaf {path} has dtype {array.dtype}; leaves must be bool, integer, float "
                             "or complex arrays (no Python objects, strings or records)")
    tree = {"spec": spec, "paths": paths}
    buffer = io.BytesIO()
    np.savez(buffer, **{"metadata.json": _json_array(metadata), "tree.json": _json_array(tree)}, **arrays)
    payload = buffer.getvalue()
    header = b"%s v%d sha256=%s\n" % (_MAGIC, FORMAT_VERSION, hashlib.sha256(payload).hexdigest().encode())
    return header + payload


def _umask() -> int:
    """The process's umask, read without changing it where the platform allows."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` all or nothing: a temporary file beside it, fsynced, renamed over it, folder fsynced.

    The file gets the mode `open(path, "w")` would give it (the old file's, else 0o666 less the umask),
    not the temporary file's owner-only 0o600.
    """
    path = Path(path)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
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
    are kept. `format_version`, `env_version`, `config_hash`, `versions` and `created` are filled in.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise ValueError(f"cannot save checkpoint {path}: folder {path.parent} does not exist")
    return atomic_write_bytes(path, _serialise(params, _full_metadata(metadata)))


# ---------------------------------------------------------------- load: the file and its header

def _read_payload(path: Path) -> tuple[int, bytes]:
    """Check the file's size, the header and the payload's SHA-256; returns (format version, payload)."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise CheckpointError(f"cannot read checkpoint {path}: not a regular file")
        if info.st_size > MAX_CHECKPOINT_BYTES:
            raise CheckpointError(f"checkpoint {path.name} is {info.st_size} bytes, over the "
                                  f"{MAX_CHECKPOINT_BYTES}-byte cap (qin_env.agents.checkpoint.MAX_CHECKPOINT_BYTES)")
        with path.open("rb") as fh:
            data = fh.read(info.st_size + 1)  # one byte more: a file that grew since stat is caught below
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    if len(data) > info.st_size:
        raise CheckpointError(f"checkpoint {path.name} changed while it was read; load it again")
    end = data.find(b"\n", 0, 256)
    header = data[:end].split(b" ") if end > 0 else []
    well_formed = len(header) == 3 and header[1].startswith(b"v") and header[2].startswith(b"sha256=")
    if not well_formed or header[0] != _MAGIC:
        raise CheckpointError(f"{path.name} is not a QIN checkpoint (bad header; truncated or another file type)")
    try:
        version = int(header[1][1:])
    except ValueError:
        raise CheckpointError(f"checkpoint {path.name} has an unreadable format version {header[1]!r}") from None
    if version != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path.name} has format version {version}; this qin-env reads only "
                              f"version {FORMAT_VERSION}")
    payload = data[end + 1:]
    if hashlib.sha256(payload).hexdigest().encode() != header[2][len(b"sha256="):]:
        raise CheckpointError(f"checkpoint {path.name} is corrupt or truncated (SHA-256 of its payload does not match)")
    return version, payload


# ---------------------------------------------------------------- load: the archive, entry by entry

def _entries(path: Path, payload: bytes) -> tuple[zipfile.ZipFile, dict[str, zipfile.ZipInfo]]:
    """The archive and its entries by array name, refusing compressed, encrypted, odd or oversized entries."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
        infos = archive.infolist()
    except _UNREADABLE as exc:
        raise CheckpointError(f"checkpoint {path.name} is unreadable: its payload is not a zip archive "
                              f"({type(exc).__name__}: {exc})") from exc
    entries: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = info.filename.removesuffix(".npy")
        if not info.filename.endswith(".npy") or not (name in _JSON_ENTRIES or _LEAF_NAME.fullmatch(name)):
            raise CheckpointError(f"checkpoint {path.name} holds an unexpected entry {info.filename!r} (allowed: "
                                  "metadata.json.npy, tree.json.npy, leaf_NNNNN.npy)")
        if name in entries:
            raise CheckpointError(f"checkpoint {path.name} holds the entry {info.filename!r} twice")
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1 or info.compress_size != info.file_size:
            raise CheckpointError(f"checkpoint {path.name}: entry {info.filename!r} is compressed or encrypted; "
                                  "checkpoints store their arrays uncompressed")
        entries[name] = info
    declared = sum(info.file_size for info in infos)
    if declared > len(payload):
        raise CheckpointError(f"checkpoint {path.name}: its entries declare {declared} bytes, more than the "
                              f"{len(payload)}-byte payload holds")
    return archive, entries


def _read_npy_header(path: Path, name: str, fh: IO[bytes], entry_size: int) -> tuple[np.dtype, tuple[int, ...], bool]:
    """An entry's dtype, shape and order from its .npy header, checked against the entry's size."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # numpy only warns when it must rewrite a header: refuse those too
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(fh)
            elif version == (2, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(fh)
            else:
                raise CheckpointError(f".npy format version {version} (1.0 and 2.0 are read)")
    except Exception as exc:  # numpy parses the header text with ast and tokenize, which raise many types
        raise CheckpointError(f"checkpoint {path.name}: entry {name!r} has no readable .npy header ({exc})") from exc
    if dtype.kind not in _NUMERIC_KINDS or dtype.hasobject or dtype.itemsize == 0:
        raise CheckpointError(f"checkpoint {path.name}: entry {name!r} has dtype {dtype}; only bool, integer, "
                              "float and complex arrays are read")
    if not all(type(n) is int and n >= 0 for n in shape):
        raise CheckpointError(f"checkpoint {path.name}: entry {name!r} declares the shape {shape}")
    nbytes = dtype.itemsize * int(np.prod(shape, dtype=object))
    if fh.tell() + nbytes != entry_size:
        raise CheckpointError(f"checkpoint {path.name}: entry {name!r} declares {dtype}{list(shape)} ({nbytes} "
                              f"bytes of data) but holds {entry_size - fh.tell()} (truncated or padded)")
    return dtype, tuple(shape), bool(fortran_order)


def _read_array(path: Path, archive: zipfile.ZipFile, name: str, info: zipfile.ZipInfo) -> np.ndarray:
    """One entry's array, its header checked before its data is read."""
    try:
        with archive.open(info) as fh:
            dtype, shape, fortran_order = _read_npy_header(path, name, fh, info.file_size)
            array = np.frombuffer(fh.read(), dtype).reshape(shape, order="F" if fortran_order else "C")
    except CheckpointError:
        raise
    except _UNREADABLE as exc:
        raise CheckpointError(f"checkpoint {path.name}: entry {name!r} is unreadable "
                              f"({type(exc).__name__}: {exc})") from exc
    return array.copy(order="K")  # writable, and independent of the file's bytes


def _read_json(path: Path, archive: zipfile.ZipFile, entries: Mapping[str, zipfile.ZipInfo], name: str) -> Any:
    """A JSON entry (UTF-8 bytes stored as a uint8 vector), decoded."""
    if name not in entries:
        raise CheckpointError(f"checkpoint {path.name} has no {name} entry")
    array = _read_array(path, archive, name, entries[name])
    if array.dtype != np.uint8 or array.ndim != 1:
        raise CheckpointError(f"checkpoint {path.name}: {name} is {array.dtype}{list(array.shape)}, expected a uint8 "
                              "vector of UTF-8 JSON")
    try:
        return json.loads(array.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"checkpoint {path.name}: {name} is not valid JSON "
                              f"({type(exc).__name__}: {exc})") from exc


# ---------------------------------------------------------------- load: what the JSON must say

_METADATA_TYPES: dict[str, tuple[type, ...]] = {"kind": (str,), "scenario": (str,), "network": (dict,),
                                                "overrides": (dict,), "config_hash": (str,)}


def _check_metadata(path: Path, metadata: Any) -> dict[str, Any]:
    """Refuse metadata that is not an object, lacks a required field or has a field of the wrong type."""
    if not isinstance(metadata, dict):
        raise CheckpointError(f"checkpoint {path.name}: metadata.json holds a {type(metadata).__name__}, expected an "
                              "object")
    version = metadata.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path.name} has format version {version!r} in its metadata; this qin-env "
                              f"reads only version {FORMAT_VERSION}")
    for field in ("kind", "scenario"):
        if field not in metadata:
            raise CheckpointError(f"checkpoint {path.name}: metadata has no {field!r} field")
    for field, types in _METADATA_TYPES.items():
        if field in metadata and not isinstance(metadata[field], types):
            found = type(metadata[field]).__name__
            raise CheckpointError(f"checkpoint {path.name}: metadata field {field!r} is a {found}, expected "
                                  f"{' or '.join(t.__name__ for t in types)}")
    env_version = metadata.get("env_version", 0)  # files made before versioning: version 0
    if type(env_version) is not int:
        raise CheckpointError(f"checkpoint {path.name}: metadata field 'env_version' is {env_version!r}, expected an "
                              "integer")
    if problem := qin_version.version_mismatch(f"checkpoint {path.name}", env_version):
        raise EnvVersionError(problem)
    return metadata


def _spec_problem(spec: Any, next_leaf: list[int], depth: int) -> str | None:
    """What is wrong with one node of tree.json's `spec` (None if nothing); counts leaves in `next_leaf`."""
    if depth > MAX_TREE_DEPTH:
        return f"is nested deeper than {MAX_TREE_DEPTH} levels"
    if not isinstance(spec, dict) or len(spec) != (2 if "custom" in spec else 1):
        return f"has a node {str(spec)[:80]!r} that is not a one-key object"
    if "none" in spec:
        return None if spec["none"] is True else "has a 'none' node that is not true"
    if "leaf" in spec:
        if type(spec["leaf"]) is not int or spec["leaf"] != next_leaf[0]:
            return f"has leaf index {spec['leaf']!r} where {next_leaf[0]} comes next"
        next_leaf[0] += 1
        return None
    if "dict" in spec:
        items = spec["dict"]
        if not isinstance(items, list) or not all(isinstance(i, list) and len(i) == 2 and isinstance(i[0], str)
                                                  for i in items):
            return "has a 'dict' node that is not a list of [string key, node] pairs"
        if len({key for key, _ in items}) != len(items):
            return "has a 'dict' node with a repeated key"
        children = [child for _, child in items]
    elif "list" in spec or "tuple" in spec:
        children = spec.get("list", spec.get("tuple"))
    elif "custom" in spec and "children" in spec and isinstance(spec["custom"], str):
        children = spec["children"]
    else:
        return f"has a node of unknown type {sorted(spec)}"
    if not isinstance(children, list):
        return "has a container node whose children are not a list"
    for child in children:
        if problem := _spec_problem(child, next_leaf, depth + 1):
            return problem
    return None


def _check_tree(path: Path, tree: Any) -> dict[str, Any]:
    """Refuse a tree.json whose spec is malformed or whose leaves do not match its unique leaf paths."""
    if not isinstance(tree, dict) or set(tree) != {"spec", "paths"}:
        raise CheckpointError(f"checkpoint {path.name}: tree.json must be an object with exactly 'spec' and 'paths'")
    paths = tree["paths"]
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths) or len(set(paths)) != len(paths):
        raise CheckpointError(f"checkpoint {path.name}: tree.json field 'paths' must be a list of distinct strings")
    counted = [0]
    try:
        problem = _spec_problem(tree["spec"], counted, 0)
    except RecursionError:
        problem = "is nested too deeply"
    if problem:
        raise CheckpointError(f"checkpoint {path.name}: tree.json field 'spec' {problem}")
    if counted[0] != len(paths):
        raise CheckpointError(f"checkpoint {path.name}: tree.json field 'spec' has {counted[0]} leaves but 'paths' "
                              f"names {len(paths)}")
    return tree


def _check_leaf_entries(path: Path, entries: Mapping[str, zipfile.ZipInfo], n_leaves: int) -> list[str]:
    """The leaf entry names tree.json promises, refusing missing or unexpected ones."""
    names = [f"leaf_{i:05d}" for i in range(n_leaves)]
    if missing := [n for n in names if n not in entries]:
        raise CheckpointError(f"checkpoint {path.name} lacks the arrays {missing[:5]} its tree.json lists "
                              f"({len(missing)} missing)")
    if extra := sorted(set(entries) - set(names) - set(_JSON_ENTRIES)):
        raise CheckpointError(f"checkpoint {path.name} holds unexpected entries {extra[:5]}")
    return names


def _open(path: Path) -> tuple[zipfile.ZipFile, dict[str, zipfile.ZipInfo], dict[str, Any], dict[str, Any]]:
    """The verified archive, its entries, and its checked metadata and tree description (no leaf read yet)."""
    _, payload = _read_payload(path)
    archive, entries = _entries(path, payload)
    metadata = _check_metadata(path, _read_json(path, archive, entries, "metadata.json"))
    tree = _check_tree(path, _read_json(path, archive, entries, "tree.json"))
    return archive, entries, metadata, tree


def _unpack(path: Path) -> tuple[dict[str, Any], dict[str, Any], list[np.ndarray]]:
    """Metadata, tree description and leaves: every header and size checked before any leaf's data is read."""
    archive, entries, metadata, tree = _open(path)
    names = _check_leaf_entries(path, entries, len(tree["paths"]))
    for name in names:  # all headers first: a lying header is refused before any allocation
        try:
            with archive.open(entries[name]) as fh:
                _read_npy_header(path, name, fh, entries[name].file_size)
        except CheckpointError:
            raise
        except _UNREADABLE as exc:
            raise CheckpointError(f"checkpoint {path.name}: entry {name!r} is unreadable ({exc})") from exc
    leaves = [_read_array(path, archive, name, entries[name]) for name in names]
    return metadata, tree, leaves


# ---------------------------------------------------------------- load: what the caller expects

def _lookup(metadata: Mapping[str, Any], field: str) -> Any:
    """A metadata field, looked up at the top level and then in the network configuration."""
    if field in metadata:
        return metadata[field]
    network = metadata.get("network") or {}
    return network.get(field, _MISSING)


_MISSING = object()


def check_expected(path: str | os.PathLike, metadata: Mapping[str, Any], expected: Mapping[str, Any]) -> None:
    """Refuse metadata whose fields differ from `expected` (top level, then `network`), naming every mismatch."""
    problems = []
    for field, wanted in expected.items():
        found = _lookup(metadata, field)
        if found is _MISSING:
            problems.append(f"has no {field!r} (expected {wanted!r})")
        elif found != wanted:
            problems.append(f"was saved for {field} {found!r}, not {wanted!r}")
    if problems:
        raise CheckpointError(f"checkpoint {Path(path).name} " + "; ".join(problems))


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
        raise CheckpointError(f"checkpoint {path.name} does not fit the expected parameter tree: "
                              + "; ".join(problems))


def load_metadata(path: str | os.PathLike, *, expected: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A checkpoint's checked metadata, without reading its arrays (same checks and errors as `load_checkpoint`)."""
    path = Path(path)
    _, _, metadata, _ = _open(path)
    if expected:
        check_expected(path, metadata, expected)
    return metadata


def load_checkpoint(
    path: str | os.PathLike, *, expected: Mapping[str, Any] | None = None, like: Any = None,
) -> tuple[Any, dict[str, Any]]:
    """Load `(params, metadata)`, refusing malformed files, other format versions and mismatches.

    `expected`: metadata fields that must match, e.g. `{"kind": "vqc", "scenario": "metro_qkd",
    "n_qubits": 4}` (looked up at the top level, then in `metadata["network"]`). `like`: a template
    pytree; the saved tree must have its leaf paths, shapes and dtypes, and is rebuilt in its structure.
    Every problem with the file is a `ValueError` naming it (the module docstring lists the checks).
    """
    path = Path(path)
    metadata, tree, leaves = _unpack(path)
    if expected:
        check_expected(path, metadata, expected)
    if like is not None:
        _check_like(path, tree, leaves, like)
        return jax.tree.unflatten(jax.tree.structure(like), leaves), metadata
    if custom := _custom_nodes(tree["spec"]):
        raise CheckpointError(f"checkpoint {path.name} holds pytree nodes of type {sorted(set(custom))}; pass like= a "
                              "template pytree of the same structure to rebuild them")
    return _decode_tree(tree["spec"], leaves), metadata
