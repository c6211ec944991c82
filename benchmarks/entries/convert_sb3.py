"""Convert an sb3-ppo checkpoint of the old format (SB3's own zip inside) to the data-only format.

    python -m qin_env.bench.entries.convert_sb3 OLD.qinckpt NEW.qinckpt   # NEW may be OLD: replaced atomically

Only the data in the old zip is read, nothing SB3 pickled is unpickled: `data` (SB3's JSON: the
PPO settings and the policy's keyword arguments, by the names SB3 records beside each pickled
value) and `policy.pth` (the policy's `state_dict`, read with `torch.load(weights_only=True)`,
torch's loader restricted to tensors and plain containers). The spaces, the optimiser state and
every `:serialized:` field are ignored: the spaces come from the scenario the checkpoint names,
and the weights must fit the policy rebuilt from it. Convert only files you trust: the result is
what they say they are, no more. See docs/security.md.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import sys
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

_MAX_ENTRY_BYTES = {"data": 16 << 20, "policy.pth": 256 << 20}  # SB3's PPO at default size: 16 KB and 60 KB
_NAMED = {  # how SB3's JSON names a pickled class: str(cls)
    "activation_fn": re.compile(r"<class 'torch\.nn\.modules\.activation\.(\w+)'>"),
    "optimizer_class": re.compile(r"<class 'torch\.optim\.adam\.(Adam)'>"),
    "features_extractor_class": re.compile(r"<class 'stable_baselines3\.common\.torch_layers\.(FlattenExtractor)'>"),
}
_PLAIN_POLICY_KWARGS = ("net_arch", "ortho_init", "share_features_extractor", "normalize_images", "optimizer_kwargs")
_CONSTANT_SCHEDULE = re.compile(r"ConstantSchedule\(val=([-+0-9.eE]+)\)")


def _zip_entry(source: str, archive: zipfile.ZipFile, name: str) -> bytes:
    """One entry of SB3's zip, refusing a missing or oversized one (the zip may be deflated)."""
    try:
        info = archive.getinfo(name)
        if info.file_size > _MAX_ENTRY_BYTES[name]:
            raise ValueError(f"{source}: SB3 zip entry {name!r} is {info.file_size} bytes, over the "
                             f"{_MAX_ENTRY_BYTES[name]}-byte cap")
        with archive.open(info) as fh:
            data = fh.read(_MAX_ENTRY_BYTES[name] + 1)
    except (KeyError, zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
        raise ValueError(f"{source}: SB3 zip has no readable {name!r} entry ({type(exc).__name__}: {exc})") from exc
    if len(data) > _MAX_ENTRY_BYTES[name]:
        raise ValueError(f"{source}: SB3 zip entry {name!r} is over the {_MAX_ENTRY_BYTES[name]}-byte cap")
    return data


def _policy_kwargs(source: str, recorded: Any) -> dict[str, Any]:
    """SB3 policy keyword arguments from `data["policy_kwargs"]`: plain JSON, or the names beside a pickled dict."""
    import torch

    from qin_env.agents.baselines import ACTIVATIONS

    if not isinstance(recorded, dict):
        raise ValueError(f"{source}: SB3's policy_kwargs is {recorded!r}, expected an object")
    items = {k: v for k, v in recorded.items() if k not in (":type:", ":serialized:")}
    if unknown := sorted(set(items) - set(_PLAIN_POLICY_KWARGS) - set(_NAMED)):
        raise ValueError(f"{source}: policy_kwargs {unknown} cannot be converted without unpickling; convertible: "
                         f"{', '.join((*_PLAIN_POLICY_KWARGS, *_NAMED))}. Re-train the agent instead")
    out = {k: v for k, v in items.items() if k in _PLAIN_POLICY_KWARGS}
    if isinstance(out.get("net_arch"), str) or isinstance(out.get("optimizer_kwargs"), str):
        raise ValueError(f"{source}: policy_kwargs net_arch / optimizer_kwargs are pickled objects; re-train instead")
    for key, pattern in _NAMED.items():
        if key in items:
            match = pattern.fullmatch(str(items[key]))
            if not match or (key == "activation_fn" and match.group(1) not in ACTIVATIONS):
                raise ValueError(f"{source}: policy_kwargs {key} {items[key]!r} is not convertible (activation_fn: "
                                 f"one of {', '.join(ACTIVATIONS)}; Adam; FlattenExtractor)")
            if key == "activation_fn":
                out[key] = getattr(torch.nn, match.group(1))
    return out


def _hyperparameters(data: Mapping[str, Any]) -> dict[str, Any]:
    """PPO settings from SB3's JSON: plain values as recorded, a clip range from its ConstantSchedule's name."""
    from qin_env.agents.baselines import HYPERPARAMETERS

    out = {}
    for name in HYPERPARAMETERS:
        if name not in data:
            continue
        value = data[name]
        if isinstance(value, dict):  # a pickled schedule: readable only when SB3 named a constant one
            match = _CONSTANT_SCHEDULE.search(str(value.get("value_schedule", "")))
            if not match:
                continue  # SB3's default applies
            value = float(match.group(1))
        out[name] = value
    return out


def convert(old: str | Path, new: str | Path) -> Path:
    """Write `new`, the data-only form of the old-format sb3-ppo checkpoint `old`; returns its path."""
    import numpy as np
    import torch

    from qin_env.agents.baselines import SB3_FORMAT, SB3PPOAgent, load_policy_weights
    from qin_env.agents.checkpoint import load_checkpoint

    old, new = Path(old), Path(new)
    source = f"sb3-ppo checkpoint {old.name}"
    old_sha256 = hashlib.sha256(old.read_bytes()).hexdigest()
    params, meta = load_checkpoint(old, expected={"kind": SB3PPOAgent.KIND})
    if not isinstance(params, dict) or set(params) != {"sb3_zip"}:
        raise ValueError(f"{source} holds no SB3 zip (arrays {sorted(params) if isinstance(params, dict) else '?'}); "
                         f"is it already in sb3_format {SB3_FORMAT}?")
    try:
        archive = zipfile.ZipFile(io.BytesIO(params["sb3_zip"].tobytes()))
        data = json.loads(_zip_entry(source, archive, "data"))
    except (zipfile.BadZipFile, ValueError, RecursionError) as exc:
        raise ValueError(f"{source}: its SB3 zip or that zip's JSON `data` is unreadable ({exc})") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{source}: SB3's `data` is not a JSON object")
    try:
        state = torch.load(io.BytesIO(_zip_entry(source, archive, "policy.pth")), map_location="cpu",
                           weights_only=True)
    except Exception as exc:  # torch refuses anything but tensors with UnpicklingError, RuntimeError and others
        raise ValueError(f"{source}: policy.pth is not a plain state_dict ({exc})") from exc
    if not isinstance(state, Mapping) or not all(isinstance(t, torch.Tensor) for t in state.values()):
        raise ValueError(f"{source}: policy.pth is not a state_dict of tensors")
    weights = {str(name): t.detach().cpu().numpy().copy() for name, t in state.items()}
    seed = data.get("seed") if type(data.get("seed")) is int else 0
    agent = SB3PPOAgent(scenario=meta["scenario"], overrides=meta.get("overrides") or {}, seed=seed,
                        policy_kwargs=_policy_kwargs(source, data.get("policy_kwargs", {})), **_hyperparameters(data))
    if agent.config_hash != meta.get("config_hash"):
        raise ValueError(f"{source} was trained on {meta['scenario']} with config hash {meta.get('config_hash')}; "
                         f"that scenario now hashes to {agent.config_hash}: re-train the agent instead")
    load_policy_weights(agent.model.policy, weights, source)
    timesteps = data.get("num_timesteps", meta.get("timesteps", 0))
    agent.model.num_timesteps = int(timesteps) if type(timesteps) is int else 0
    provenance = {"sb3_format": 1, "sha256": old_sha256, "versions": meta.get("versions"),
                  "sb3_versions": meta.get("sb3_versions")}
    agent.save(new, extra={"created": meta.get("created"), "converted_from": provenance})
    reloaded = SB3PPOAgent(scenario=meta["scenario"], overrides=meta.get("overrides") or {}, checkpoint=new)
    for name, tensor in reloaded.model.policy.state_dict().items():
        if not np.array_equal(tensor.numpy(), weights[name]):
            raise RuntimeError(f"converted {new} does not reproduce tensor {name!r} of {old}")
    return new


def main(argv: Sequence[str] | None = None) -> int:
    """Convert one old-format sb3-ppo checkpoint; exit with the reason (status 1) if it cannot be converted."""
    parser = argparse.ArgumentParser(prog="python -m qin_env.bench.entries.convert_sb3", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old", type=Path, help="old-format sb3-ppo checkpoint (a file you trust)")
    parser.add_argument("new", type=Path, help="where to write the converted checkpoint (may be OLD)")
    args = parser.parse_args(argv)
    try:
        path = convert(args.old, args.new)
    except ValueError as exc:
        raise SystemExit(f"{parser.prog}: {exc}") from None
    print(f"converted {args.old} -> {path} (sha256 {hashlib.sha256(path.read_bytes()).hexdigest()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
