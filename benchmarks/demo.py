"""`make demo`: the main job on the default scenario, with what a user should look at.

Trains the variational-circuit PPO team on `metro_qkd` for a few minutes (several seeds at once),
evaluates it against the random and heuristic teams on the true reward, prints the table, and
writes the learning curve, a render of the network mid-episode and the key-rate plot.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jax
import jax.numpy as jnp
from tqdm import tqdm

from qin_env import agents, core
from qin_env import physics as ph
from qin_env.bench import cli, plot_key_rates
from qin_env.bench.args import HelpFormatter, add_scenario, int_range
from qin_env.bench.evaluate import evaluate_agent
from qin_env.params import load_params
from qin_env.policies import POLICIES
from qin_env.render import render_rgb

SHOWN_KPIS = ("model_quality", "latency_s", "slo_violation", "leaked_bits", "secret_key_bits", "qber",
              "eve_detected", "dropped_bits")


def link_table(lengths_km: tuple[float, ...] = (10.0, 30.0, 50.0)) -> str:
    """Per-link figures of the metro network's fiber spans (decoy BB84 with GYS hardware)."""
    lengths = jnp.asarray(lengths_km)
    key = ph.decoy_bb84_key_rate(lengths)
    pairs = ph.heralded_pair_rate(lengths)
    fidelity = ph.decohered_fidelity(0.97, 2 * ph.fiber_delay_s(lengths), 0.01)
    rows = ["| fiber km | key bits/pulse | pairs/s | pair fidelity after 1 RTT | teleport fidelity |",
            "| ---: | ---: | ---: | ---: | ---: |"]
    for i, length in enumerate(lengths_km):
        rows.append(f"| {length:.0f} | {float(key[i]):.2e} | {float(pairs[i]):.0f} | {float(fidelity[i]):.4f} "
                    f"| {float(ph.teleportation_fidelity(fidelity[i])):.4f} |")
    return "\n".join(rows)


def render_snapshot(scenario: str, out: Path, steps: int = 30) -> Path:
    """Render the network after `steps` heuristic slots to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    params = load_params(scenario)
    obs, state = core.reset(jax.random.PRNGKey(0), params)
    step = jax.jit(core.step)
    kpi = None
    for t in range(steps):
        k1, k2 = jax.random.split(jax.random.PRNGKey(t + 1))
        obs, state, _, _, _, infos = step(k2, state, POLICIES["heuristic"](k1, obs, params), params)
        kpi = {k: float(v) for k, v in infos["orchestrator"]["kpi"].items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    plt.imsave(out, render_rgb(state, params, kpi))
    return out


def main(argv: list[str] | None = None) -> None:
    """Train vqc-ppo for a few minutes, compare it with the fixed teams, write the pictures."""
    parser = argparse.ArgumentParser(prog="python -m qin_env.bench.demo", description=__doc__,
                                     formatter_class=HelpFormatter)
    add_scenario(parser)
    parser.add_argument("--episodes", type=int_range("--episodes", 1), default=16,
                        help="evaluation episodes (seeds) per agent")
    parser.add_argument("--steps", type=int_range("--steps", 1), default=400_000, help="training env steps per seed")
    parser.add_argument("--seeds", type=int_range("--seeds", 1), default=3, help="seeds trained at once")
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder")
    args = parser.parse_args(argv)
    # a rerun of the demo replaces its previous training run (qin train refuses a used folder otherwise)
    status = cli.main(["train", "--scenario", args.scenario, "--agent", "vqc-ppo", "--steps", str(args.steps),
                       "--seeds", str(args.seeds), "--out", str(args.out), "--eval-episodes", str(args.episodes),
                       "--overwrite"])
    if status:
        raise SystemExit(status)
    summary = json.loads((args.out / "summary.json").read_text())
    results = {}
    for name in tqdm(("random", "heuristic"), desc=f"evaluating on {args.scenario}"):
        r = evaluate_agent(agents.make(name, scenario=args.scenario), args.scenario, episodes=args.episodes)
        results[name] = {"mean_return": r["mean_return"], "std_return": r["std_return"], **r["kpi"]}
    trained = evaluate_agent(agents.make("vqc-ppo", scenario=args.scenario, checkpoint=str(args.out)),
                             args.scenario, episodes=args.episodes)
    results["vqc-ppo (best seed)"] = {"mean_return": trained["mean_return"], "std_return": trained["std_return"],
                                      **trained["kpi"]}
    header = "| agent | return | " + " | ".join(SHOWN_KPIS) + " |"
    print("\n" + header + "\n|" + " --- |" * (len(SHOWN_KPIS) + 2))
    for name, r in results.items():
        print(f"| {name} | {r['mean_return']:.2f} ± {r['std_return']:.2f} | "
              + " | ".join(f"{r[k]:.3g}" for k in SHOWN_KPIS) + " |")
    print(f"\nvqc-ppo mean over {summary['seeds']} seeds: {summary['mean_return']:.2f}; "
          f"{summary['parameters_per_agent_network']} parameters per agent circuit")
    print()
    print(link_table())
    snapshot = render_snapshot(args.scenario, args.out / "network.png")
    curve = plot_key_rates.main(str(args.out / "key_rate_vs_distance.png"))
    print(f"\nlearning curve: {args.out / 'learning_curve.png'}\nnetwork picture: {snapshot}\n"
          f"key rate versus distance: {curve}")


if __name__ == "__main__":
    main()
