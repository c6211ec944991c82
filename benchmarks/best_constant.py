"""The best constant joint action of a scenario, by per-aggregator coordinate search, and the headroom it leaves.

A benchmark is only as honest as its headroom: where one joint action played every slot does as
well as any policy, learning has nothing to show. This finds the best such action the way a
careful tuner would, then measures it beside `noop`, `random` and the heuristic on fresh episodes.

The search: every aggregator's 8 levels (its orchestrator pair: episodes, width; its own
components: channel, payload, key share, test fraction, memory, throttle) are a coordinate.
It starts from the best of a coarse uniform grid (episodes x width x channel, the same for every
aggregator, the other components at their middle level), then sweeps the coordinates in turn:
each sweep evaluates every level of one coordinate with the others fixed, in one batch, and keeps
the best, until a sweep changes nothing (at most `--sweeps`). Every evaluation of a search uses
the same episode keys (common random numbers), so levels are compared on the same noise; the
result is then measured on `--check-episodes` episodes of another seed, which the search never
saw. A level the action masks forbid plays as the largest allowed one below it
(`qin_env.policies.constant_policy`).

With `--write` each scenario's result is pinned in `scenarios/best_constants.json` (levels,
config hash, environment version, the measured returns), which the `best-constant` agent plays.

    python -m qin_env.bench.best_constant [--scenarios S,..] [--episodes N] [--check-episodes M] [--json FILE]
                                          [--write]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from qin_env import list_scenarios
from qin_env.agents.baselines import best_constants_path
from qin_env.bench.args import HelpFormatter, add_json, input_file, int_range, output_file
from qin_env.bench.io import publish, save_figure, write_json
from qin_env.core import action_nvec
from qin_env.params import Params, config_hash, load_config, params_from_config
from qin_env.policies import CONSTANT_FIELDS, POLICIES, constant_policy, noop_levels
from qin_env.rollout import rollouts, seed_keys
from qin_env.version import ENV_VERSION

SEARCH_SEED, CHECK_SEED = 0, 1  # episode keys of the search, and of the measurement it never saw


def field_sizes(params: Params) -> np.ndarray:
    """Levels [A, 8] of every aggregator's coordinates, in `CONSTANT_FIELDS` order."""
    orch = np.asarray(action_nvec(params, "orchestrator")).reshape(params.n_aggregators, -1)
    own = np.asarray([action_nvec(params, f"aggregator_{i}") for i in range(params.n_aggregators)])
    return np.concatenate([orch, own], axis=1)


def evaluator(params: Params, episodes: int, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    """`levels [K, A, 8] -> mean true return [K]` over `episodes` fixed episode keys, one compiled program."""
    keys = seed_keys(seed, episodes)

    def mean_return(levels: jax.Array) -> jax.Array:
        records = rollouts(constant_policy(levels, params), params, keys)
        return jnp.mean(jnp.sum(records["reward"], axis=-1))

    run = jax.jit(jax.vmap(mean_return))
    return lambda levels: np.asarray(run(jnp.asarray(levels, jnp.int32)), np.float64)


def policy_return(name: str, params: Params, episodes: int, seed: int) -> float:
    """Mean true return of a fixed policy of `qin_env.policies.POLICIES` over `episodes` episodes of `seed`."""
    records = jax.jit(lambda k: rollouts(POLICIES[name], params, k))(seed_keys(seed, episodes))
    return float(np.mean(np.sum(np.asarray(records["reward"], np.float64), axis=-1)))


def search(params: Params, episodes: int = 32, sweeps: int = 3, progress: bool = True) -> dict[str, Any]:
    """The best constant levels [A, 8] found by the coordinate search of the module docstring."""
    sizes = field_sizes(params)
    width = int(sizes.max())
    evaluate = evaluator(params, episodes, SEARCH_SEED)

    def padded(batch: list[np.ndarray]) -> np.ndarray:  # one batch shape, one compilation
        return np.stack(batch + [batch[-1]] * (-len(batch) % width))

    grid = []
    for combo in itertools.product(*(range(n) for n in sizes[0, :3])):  # episodes x width x channel
        levels = sizes // 2
        levels[:, :3] = combo
        grid.append(levels)
    returns = np.concatenate([evaluate(padded(grid[i:i + width]))[:len(grid[i:i + width])]
                              for i in range(0, len(grid), width)])
    best, best_return = grid[int(np.argmax(returns))], float(np.max(returns))
    evaluations, history = len(grid), [best_return]
    coordinates = list(itertools.product(range(params.n_aggregators), range(len(CONSTANT_FIELDS))))
    bar = _progress(sweeps * len(coordinates), params.scenario, progress)
    for _ in range(sweeps):
        changed = False
        for agg, field in coordinates:
            candidates = []
            for level in range(sizes[agg, field]):
                levels = best.copy()
                levels[agg, field] = level
                candidates.append(levels)
            got = evaluate(padded(candidates))[:len(candidates)]
            evaluations += len(candidates)
            if got.max() > best_return:
                best, best_return, changed = candidates[int(np.argmax(got))], float(got.max()), True
            bar.update(1)
        history.append(best_return)
        if not changed:
            break
    bar.close()
    return {"levels": best.tolist(), "search_return": best_return, "evaluations": evaluations,
            "sweep_returns": history, "search_episodes": episodes}


def headroom(scenario: str, episodes: int = 32, check_episodes: int = 64, sweeps: int = 3,
             progress: bool = True) -> dict[str, Any]:
    """Best constant of `scenario` and the mean returns of noop, random, heuristic and it on unseen episodes."""
    config = load_config(scenario)
    params = params_from_config(config)
    start = time.perf_counter()
    found = search(params, episodes, sweeps, progress)
    check = evaluator(params, check_episodes, CHECK_SEED)
    constant, noop = check(np.stack([np.asarray(found["levels"]), np.asarray(noop_levels(params))]))
    row = {"scenario": scenario, "config_hash": config_hash(config), "check_episodes": check_episodes,
           "fields": list(CONSTANT_FIELDS), **found, "noop": float(noop), "best_constant": float(constant)}
    for name in ("random", "heuristic"):
        row[name] = policy_return(name, params, check_episodes, CHECK_SEED)
    span = row["best_constant"] - row["noop"]
    # the benchmark issue's figure: how far an adaptive rule gets beyond the best constant, in the noop span
    row["heuristic_gain_over_span"] = (row["heuristic"] - row["best_constant"]) / span if span > 0 else float("nan")
    row["seconds"] = time.perf_counter() - start
    return row


def pin(rows: Sequence[dict[str, Any]], path: str | None = None) -> Path:
    """Write the rows' constants into the pinned table (other scenarios' pins stay as they are), atomically."""
    path = Path(path) if path is not None else best_constants_path()
    table = json.loads(path.read_text()) if path.is_file() else {"scenarios": {}}
    for row in rows:
        table["scenarios"][row["scenario"]] = {k: v for k, v in row.items() if k not in ("scenario", "seconds")} | {
            "env_version": ENV_VERSION}
    return write_json(path, table)


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    """The headroom table: mean true returns on the unseen episodes, and the heuristic's gain in the span."""
    lines = ["| scenario | noop | random | heuristic | best constant | (heuristic - const) / (const - noop) |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {r['scenario']} | {r['noop']:.2f} | {r['random']:.2f} | {r['heuristic']:.2f} | "
              f"{r['best_constant']:.2f} | {r['heuristic_gain_over_span']:+.3f} |" for r in rows]
    return "\n".join(lines)


def plot(rows: Sequence[dict[str, Any]], out: str | os.PathLike) -> Path:
    """Each scenario's returns of noop, random, the heuristic and the best constant, scaled so noop is 0 and it is 1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ("noop", "random", "heuristic", "best_constant")
    fig, ax = plt.subplots(figsize=(9, 4), dpi=120)
    x = np.arange(len(rows))
    for j, name in enumerate(names):
        scaled = [(r[name] - r["noop"]) / (r["best_constant"] - r["noop"]) for r in rows]
        ax.bar(x + (j - 1.5) * 0.2, scaled, 0.2, label=name.replace("_", " "))
    ax.axhline(1.0, color="0.3", lw=0.8, ls="--")
    ax.set_xticks(x, [r["scenario"] for r in rows], rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("(R - R_noop) / (R_best_constant - R_noop)")
    ax.set_title(f"Headroom: a constant against the rule ({rows[0]['check_episodes']} unseen episodes each)")
    ax.legend(fontsize=8, ncol=4, loc="lower right")
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    path = save_figure(fig, out)
    plt.close(fig)
    return path


def _progress(total: int, scenario: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=f"best constant {scenario}", unit="coordinate", disable=not enabled, leave=False)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command line: search every named scenario, print the headroom table, optionally write JSON."""
    parser = argparse.ArgumentParser(prog="python -m qin_env.bench.best_constant", description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--scenarios", default=None, help="comma-separated scenario names (default: all)")
    parser.add_argument("--episodes", type=int_range("--episodes", 1), default=32,
                        help="episodes behind every evaluation of the search")
    parser.add_argument("--check-episodes", type=int_range("--check-episodes", 1), default=64,
                        help="unseen episodes on which every policy's return is measured")
    parser.add_argument("--sweeps", type=int_range("--sweeps", 1), default=3, help="coordinate sweeps at most")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--write", action="store_true", help=f"pin the constants found in {best_constants_path()}")
    add_json(parser, "write the table's rows here, atomically")
    parser.add_argument("--plot", type=output_file("--plot"), default=None, metavar="FILE",
                        help="bar chart of the scaled returns (default: none)")
    parser.add_argument("--from-json", type=input_file("--from-json"), default=None, metavar="FILE",
                        help="plot and tabulate the rows of an earlier --json instead of searching")
    args = parser.parse_args(argv)
    known = list_scenarios()
    names = list(known) if args.scenarios is None else [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in names if s not in known]
    if unknown or not names:
        parser.error(f"--scenarios: unknown {unknown or names}; allowed: {', '.join(known)}")
    if args.from_json is not None:
        rows = [r for r in json.loads(Path(args.from_json).read_text())["rows"] if r["scenario"] in names]
    else:
        rows = [headroom(s, args.episodes, args.check_episodes, args.sweeps, not args.no_progress) for s in names]
    if args.plot is not None and rows:
        print(f"plot: {plot(rows, args.plot)}")
    if args.write:
        print(f"pinned in {pin(rows)}")
    return publish({"rows": rows}, markdown(rows), args.json)


if __name__ == "__main__":
    main()
