"""Train the pinned leaderboard entries of the trained agents: one checkpoint per agent and scenario.

    python -m qin_env.bench.entries.make_entries                       # every missing entry
    python -m qin_env.bench.entries.make_entries --agents vqc-ppo --scenarios metro_qkd --force

Writes `benchmarks/entries/<agent>/<scenario>.qinckpt` and records in `manifest.json` how each was
made (budget, seeds, time, SHA-256). The budget is fixed per agent, so anyone can remake an entry:

- `vqc-ppo`, `mlp-ppo`: `qin train --steps 204800 --seeds 2` (JAX PPO, IPPO, rollouts of 32 envs x
  100 steps as `qin_env.bench.train.ppo_config` sets them); the entry is `checkpoint_final.qinckpt`, the seed with the
  best return on its own evaluation seeds (1000+), which never overlap the leaderboard's seeds.
- `sb3-ppo`: stable-baselines3 PPO (MlpPolicy, its defaults) for 40,960 steps, seed 0. SB3 steps
  the Gymnasium face in Python (about 600 env steps/s here), so it gets a fifth of the JAX agents'
  budget; the leaderboard compares these entries as trained, not the algorithms at equal budget.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from qin_env.version import ENV_VERSION

ENTRIES_DIR = Path(__file__).resolve().parent
MANIFEST = ENTRIES_DIR / "manifest.json"
BUDGETS: dict[str, dict[str, int]] = {
    "vqc-ppo": {"steps": 204_800, "seeds": 2},
    "mlp-ppo": {"steps": 204_800, "seeds": 2},
    "sb3-ppo": {"steps": 40_960, "seeds": 1},
}


def entry_path(agent: str, scenario: str, root: Path = ENTRIES_DIR) -> Path:
    """Where the pinned checkpoint of `agent` on `scenario` lives."""
    return root / agent / f"{scenario}.qinckpt"


def _train_jax_ppo(agent: str, scenario: str, budget: dict[str, int], out: Path) -> dict[str, Any]:
    """Run `qin train` into a temporary folder and return its summary (the final checkpoint is in it)."""
    from qin_env.bench.cli import main as qin

    status = qin(["train", "--scenario", scenario, "--agent", agent, "--steps", str(budget["steps"]),
                  "--seeds", str(budget["seeds"]), "--eval-episodes", "8", "--out", str(out)])
    if status != 0:
        raise RuntimeError(f"qin train failed for {agent} on {scenario} (exit status {status})")
    return json.loads((out / "summary.json").read_text())


def _train_sb3(scenario: str, budget: dict[str, int], out: Path) -> dict[str, Any]:
    from qin_env.agents.baselines import SB3PPOAgent
    from qin_env.agents.checkpoint import FINAL_CHECKPOINT

    agent = SB3PPOAgent(scenario=scenario, seed=0)
    start = time.perf_counter()
    agent.train(budget["steps"])
    agent.save(out / FINAL_CHECKPOINT)
    return {"train_seconds": time.perf_counter() - start}


def pin_circuit_width(path: Path) -> bool:
    """Write a VQC checkpoint's circuit width into its PPO config; True if the file changed.

    `qin train` saves `n_qubits=None` ("the scenario's computation share"), which
    `qin_env.agents.trained.load_trained` resolves from numpy inside `jax.eval_shape`, where JAX 0.10
    hands it tracers and the load fails. The width is the one the network was trained with
    (`network.n_qubits` in the same metadata), so pinning it changes no parameter.
    """
    from qin_env.agents.checkpoint import load_checkpoint, save_checkpoint

    params, metadata = load_checkpoint(path)
    config = metadata.get("ppo_config") or {}
    if config.get("network") != "vqc" or config.get("n_qubits") is not None:
        return False
    metadata["ppo_config"] = {**config, "n_qubits": int(metadata["network"]["n_qubits"])}
    save_checkpoint(path, params, metadata)
    return True


def make_entry(agent: str, scenario: str, root: Path = ENTRIES_DIR) -> dict[str, Any]:
    """Train one entry with its agent's fixed budget and install it atomically; returns its manifest record."""
    from qin_env.agents.checkpoint import FINAL_CHECKPOINT
    from qin_env.bench.io import write_atomic

    budget = BUDGETS[agent]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"entry-{agent}-{scenario}-") as tmp:
        out = Path(tmp)
        summary = _train_sb3(scenario, budget, out) if agent == "sb3-ppo" else _train_jax_ppo(
            agent, scenario, budget, out)
        pin_circuit_width(out / FINAL_CHECKPOINT)
        data = (out / FINAL_CHECKPOINT).read_bytes()
    path = write_atomic(entry_path(agent, scenario, root), data)
    return {
        "checkpoint": str(path.relative_to(root)), "sha256": hashlib.sha256(data).hexdigest(),
        "steps_per_seed": budget["steps"], "training_seeds": budget["seeds"],
        "final_checkpoint_seed": summary.get("final_checkpoint_seed", 0),
        "train_seconds": round(float(summary["train_seconds"]), 1),
        "wall_seconds": round(time.perf_counter() - start, 1),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "env_version": ENV_VERSION,
    }


def _record(agent: str, scenario: str, record: dict[str, Any], root: Path) -> None:
    from qin_env.bench.io import write_json

    manifest_path = root / MANIFEST.name
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    manifest.setdefault("budgets", BUDGETS)
    manifest.setdefault("entries", {}).setdefault(agent, {})[scenario] = record
    write_json(manifest_path, manifest)


def _pin_existing(root: Path) -> int:
    from qin_env.bench.io import write_json

    manifest_path = root / MANIFEST.name
    manifest = json.loads(manifest_path.read_text())
    for path in sorted((root / "vqc-ppo").glob("*.qinckpt")):
        if pin_circuit_width(path):
            manifest["entries"]["vqc-ppo"][path.stem]["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
            print(f"pinned the circuit width of {path}")
    write_json(manifest_path, manifest)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Train every requested entry that is missing (or all of them with --force)."""
    from qin_env.bench.args import HelpFormatter, comma_names
    from qin_env.params import list_scenarios

    parser = argparse.ArgumentParser(prog="python -m qin_env.bench.entries.make_entries", description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--agents", type=comma_names("--agents"), default=list(BUDGETS),
                        help=f"comma-separated, of {', '.join(BUDGETS)} (default: all)")
    parser.add_argument("--scenarios", type=comma_names("--scenarios"), default=list(list_scenarios()),
                        help="comma-separated scenario names (default: all)")
    parser.add_argument("--force", action="store_true", help="retrain entries that already exist")
    parser.add_argument("--root", type=Path, default=ENTRIES_DIR, help="entries folder (default: this one)")
    parser.add_argument("--pin-existing", action="store_true", help="pin the circuit width of installed vqc-ppo "
                        "entries (see pin_circuit_width), then stop")
    args = parser.parse_args(argv)
    if args.pin_existing:
        return _pin_existing(args.root)
    agents, scenarios = args.agents, args.scenarios
    if bad := [a for a in agents if a not in BUDGETS]:
        parser.error(f"--agents: {bad} not trainable here; allowed: {', '.join(BUDGETS)}")
    if bad := [s for s in scenarios if s not in list_scenarios()]:
        parser.error(f"--scenarios: unknown {bad}; valid: {', '.join(list_scenarios())}")
    for scenario in scenarios:
        for agent in agents:
            if entry_path(agent, scenario, args.root).exists() and not args.force:
                print(f"{agent} on {scenario}: entry exists, kept (--force retrains)")
                continue
            print(f"=== training entry {agent} on {scenario}: {BUDGETS[agent]}", flush=True)
            record = make_entry(agent, scenario, args.root)
            _record(agent, scenario, record, args.root)
            print(f"=== {agent} on {scenario}: {record['wall_seconds']} s, {record['checkpoint']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
