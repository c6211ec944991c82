"""Which agents enter the leaderboard, and with which checkpoint on each scenario.

`--agent NAME[@CHECKPOINT]` names one entry. NAME is a registered agent, an installed plug-in of
the `qin_env.agents` entry-point group, or an import path `package.module:Class`. CHECKPOINT is

- a checkpoint file, used on every scenario it was trained for (others: not entered);
- a `qin train` output folder (holding `checkpoint_final.qinckpt`), the same;
- a folder of per-scenario checkpoints: `<folder>/<scenario>.qinckpt` or
  `<folder>/<scenario>/checkpoint_final.qinckpt` (the layout of `benchmarks/entries/<agent>/`).

Without `@CHECKPOINT`, the trained agents (`TRAINED_AGENTS`) use their pinned entries in
`benchmarks/entries/<agent>/<scenario>.qinckpt`; a scenario without one is reported as not
entered, never evaluated with untrained weights.
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import Any

from qin_env.agents.checkpoint import FINAL_CHECKPOINT, EnvVersionError, load_metadata

ENTRIES_DIR = Path(__file__).resolve().parent.parent / "entries"
TRAINED_AGENTS = ("vqc-ppo", "mlp-ppo", "sb3-ppo")
CONSTANT_AGENT = "best-constant"  # plays the scenarios with a pinned constant (scenarios/best_constants.json)
ORACLE_AGENT = "oracle"  # plays the scenarios with a pinned oracle beside that constant


@dataclasses.dataclass(frozen=True)
class AgentSpec:
    """One leaderboard entry: the agent to build and where its checkpoints come from."""

    label: str
    """Its name in the tables and in results.json."""
    agent: str
    checkpoint: str | None = None


@dataclasses.dataclass(frozen=True)
class Placement:
    """An entry on one scenario: the checkpoint it plays with, or why it is not entered."""

    checkpoint: str | None = None
    not_entered: str | None = None


def _label(agent: str, checkpoint: str | None) -> str:
    if checkpoint is None:
        return agent
    path = Path(checkpoint)
    return f"{agent}@{path.stem if path.suffix else path.name}"


def parse_agent(text: str) -> AgentSpec:
    """`NAME` or `NAME@CHECKPOINT` as an AgentSpec (ValueError naming what is wrong)."""
    name, sep, checkpoint = text.partition("@")
    name = name.strip()
    if not name:
        raise ValueError(f"--agent {text!r}: the agent name before '@' is empty")
    if sep and not checkpoint:
        raise ValueError(f"--agent {text!r}: nothing after '@'; give a checkpoint file or folder")
    if sep and not Path(checkpoint).exists():
        raise ValueError(f"--agent {text!r}: checkpoint {checkpoint!r} does not exist")
    return AgentSpec(_label(name, checkpoint or None), name, checkpoint or None)


def check_agent_name(name: str) -> None:
    """Refuse a name `agents.make` cannot resolve, listing the valid ones (before any evaluation starts)."""
    from qin_env import agents

    if ":" in name:
        module_name, _, attr_path = name.partition(":")
        try:
            obj: Any = importlib.import_module(module_name)
        except ImportError as exc:
            raise ValueError(f"agent {name!r}: cannot import module {module_name!r} ({exc}); is it on "
                             "PYTHONPATH or installed?") from exc
        for attr in attr_path.split("."):
            if not hasattr(obj, attr):
                raise ValueError(f"agent {name!r}: module {module_name!r} has no attribute {attr_path!r}")
            obj = getattr(obj, attr)
        return
    valid = agents.list_agents()
    if name not in valid:
        raise ValueError(f"unknown agent {name!r}; valid agents: {', '.join(valid)}, "
                         "or an import path 'package.module:Class'")


def checkpoint_metadata(path: str | Path) -> dict[str, Any]:
    """A checkpoint's metadata, checked by the loader's rules without reading any array (ValueError otherwise)."""
    return load_metadata(path)


def check_loadable(agent: str, path: str | Path) -> None:
    """Refuse, from its metadata alone, a checkpoint its agent never loads: an sb3-ppo file of another format.

    The sb3-ppo format before `SB3_FORMAT` 2 embeds stable-baselines3's pickled zip, so the refusal
    comes before any cell runs and reads no array of it (ValueError saying why and how to convert).
    """
    if agent != "sb3-ppo":
        return
    try:
        metadata = checkpoint_metadata(path)
    except ValueError:  # not a qin checkpoint at all: the agent's own loader says so in its cells
        return
    from qin_env.agents.baselines import SB3_FORMAT, _old_format_error

    found = metadata.get("sb3_format")
    if found is None or found == 1:
        raise _old_format_error(path)
    if found != SB3_FORMAT:
        raise ValueError(f"checkpoint {path} has sb3_format {found!r}; this qin-env reads sb3_format {SB3_FORMAT}")


def _single_file(folder: Path) -> Path | None:
    final = folder / FINAL_CHECKPOINT
    return final if final.is_file() else None


def _fits(path: Path, scenario: str, scenario_hash: str) -> Placement:
    """Use a checkpoint only on the scenario, with the very configuration, it was trained for.

    A file in another format than `qin_env.agents.checkpoint`'s (a plug-in's own) is passed to the agent as is.
    """
    try:
        metadata = checkpoint_metadata(path)
    except EnvVersionError as err:
        return Placement(not_entered=str(err))
    except ValueError:
        return Placement(checkpoint=str(path))
    trained_on = Path(str(metadata.get("scenario", ""))).stem
    if trained_on != scenario:
        return Placement(not_entered=f"checkpoint {path} was trained on {trained_on!r}")
    if metadata.get("config_hash") not in (None, scenario_hash):
        return Placement(not_entered=f"checkpoint {path} was trained on {scenario} with config hash "
                                     f"{metadata['config_hash']}, this run's configuration hashes to {scenario_hash} "
                                     "(different --set overrides or an edited scenario)")
    return Placement(checkpoint=str(path))


def place(spec: AgentSpec, scenario: str, scenario_hash: str, entries_dir: Path = ENTRIES_DIR) -> Placement:
    """The checkpoint `spec` plays `scenario` (config hash `scenario_hash`) with, or why it does not enter it."""
    if spec.checkpoint is None:
        if spec.agent in (CONSTANT_AGENT, ORACLE_AGENT):
            from qin_env.agents import baselines  # the agents' module: not loaded for --help

            pinned = baselines.pinned_constant if spec.agent == CONSTANT_AGENT else baselines.pinned_oracle
            try:
                pinned(scenario, scenario_hash)
            except LookupError as missing:
                return Placement(not_entered=str(missing))
        if spec.agent not in TRAINED_AGENTS:
            return Placement()
        pinned = entries_dir / spec.agent / f"{scenario}.qinckpt"
        if pinned.is_file():
            return _fits(pinned, scenario, scenario_hash)
        return Placement(not_entered=f"no pinned checkpoint {pinned.name} in {entries_dir / spec.agent} "
                                     f"(make it: python -m qin_env.bench.entries.make_entries --agents {spec.agent} "
                                     f"--scenarios {scenario})")
    path = Path(spec.checkpoint)
    if path.is_file():
        return _fits(path, scenario, scenario_hash)
    if (single := _single_file(path)) is not None:
        return _fits(single, scenario, scenario_hash)
    for candidate in (path / f"{scenario}.qinckpt", path / scenario / FINAL_CHECKPOINT):
        if candidate.is_file():
            return _fits(candidate, scenario, scenario_hash)
    return Placement(not_entered=f"no checkpoint for {scenario} in {path} (looked for {scenario}.qinckpt and "
                                 f"{scenario}/{FINAL_CHECKPOINT})")
