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

With `--oracle` the oracle is searched too: the same coordinate search over one constant per
aggregator and hidden regime (Eve tapped its link last slot or not, x a device surge on or not;
`qin_env.policies.oracle_policy`, which reads `core.privileged_view`), started from the best
constant in every regime, so it is the best constant's equal or better on the search's episodes;
only the (regime, aggregator) pairs met in at least 1 % of the slots are searched.

With `--write` each scenario's result is pinned in `scenarios/best_constants.json` (levels,
config hash, environment version, the measured returns, the oracle's table when searched), which
the `best-constant` and `oracle` agents play. A pin replaces the scenario's entry as a whole.

    python -m qin_env.bench.best_constant [--scenarios S,..] [--episodes N] [--check-episodes M] [--json FILE]
                                          [--oracle [--oracle-sweeps K]] [--from-pinned] [--write]
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
from qin_env.agents.baselines import best_constants_path, pinned_constant
from qin_env.bench.args import HelpFormatter, add_json, input_file, int_range, output_file
from qin_env.bench.io import publish, save_figure, write_json
from qin_env.core import action_nvec, privileged_view
from qin_env.params import Params, config_hash, load_config, params_from_config
from qin_env.policies import (
    CONSTANT_FIELDS,
    POLICIES,
    REGIMES,
    constant_policy,
    hidden_regime,
    noop_levels,
    oracle_policy,
)
from qin_env.rollout import Policy, Transition, rollouts, seed_keys
from qin_env.version import ENV_VERSION

SEARCH_SEED, CHECK_SEED = 0, 1  # episode keys of the search, and of the measurement it never saw


def field_sizes(params: Params) -> np.ndarray:
    """Levels [A, 8] of every aggregator's coordinates, in `CONSTANT_FIELDS` order."""
    orch = np.asarray(action_nvec(params, "orchestrator")).reshape(params.n_aggregators, -1)
    own = np.asarray([action_nvec(params, f"aggregator_{i}") for i in range(params.n_aggregators)])
    return np.concatenate([orch, own], axis=1)


def evaluator(params: Params, episodes: int, seed: int,
              make: Callable[[jax.Array, Params], Policy] = constant_policy) -> Callable[[np.ndarray], np.ndarray]:
    """`levels [K, ...] -> mean true return [K]` of `make(levels[k])` over `episodes` fixed keys, compiled once."""
    keys = seed_keys(seed, episodes)

    def mean_return(levels: jax.Array) -> jax.Array:
        records = rollouts(make(levels, params), params, keys)
        return jnp.mean(jnp.sum(records["reward"], axis=-1))

    run = jax.jit(jax.vmap(mean_return))
    return lambda levels: np.asarray(run(jnp.asarray(levels, jnp.int32)), np.float64)


def _padded(batch: list[np.ndarray], width: int) -> np.ndarray:
    """`batch` stacked and padded with its last entry to a multiple of `width`: one batch shape, one compilation."""
    return np.stack(batch + [batch[-1]] * (-len(batch) % width))


def _sweep(best: np.ndarray, best_return: float, coordinates: list[tuple[int, ...]], sizes: np.ndarray,
           evaluate: Callable[[np.ndarray], np.ndarray], sweeps: int, bar: Any) -> tuple[np.ndarray, float, int, list]:
    """Coordinate ascent from `best`: each coordinate's every level in one batch, the best kept, until nothing moves.

    `coordinates` index `best`; `sizes[c[-2:]]` is a coordinate's number of levels (its aggregator
    and field). Returns the best levels, their return, the evaluations spent and each sweep's return.
    """
    width, evaluations, history = int(sizes.max()), 0, []
    for _ in range(sweeps):
        changed = False
        for coordinate in coordinates:
            candidates = []
            for level in range(sizes[coordinate[-2:]]):
                levels = best.copy()
                levels[coordinate] = level
                candidates.append(levels)
            got = evaluate(_padded(candidates, width))[:len(candidates)]
            evaluations += len(candidates)
            if got.max() > best_return:
                best, best_return, changed = candidates[int(np.argmax(got))], float(got.max()), True
            bar.update(1)
        history.append(best_return)
        if not changed:
            break
    bar.close()
    return best, best_return, evaluations, history


def policy_return(name: str, params: Params, episodes: int, seed: int) -> float:
    """Mean true return of a fixed policy of `qin_env.policies.POLICIES` over `episodes` episodes of `seed`."""
    records = jax.jit(lambda k: rollouts(POLICIES[name], params, k))(seed_keys(seed, episodes))
    return float(np.mean(np.sum(np.asarray(records["reward"], np.float64), axis=-1)))


def search(params: Params, episodes: int = 32, sweeps: int = 3, progress: bool = True) -> dict[str, Any]:
    """The best constant levels [A, 8] found by the coordinate search of the module docstring."""
    sizes = field_sizes(params)
    width = int(sizes.max())
    evaluate = evaluator(params, episodes, SEARCH_SEED)
    grid = []
    for combo in itertools.product(*(range(n) for n in sizes[0, :3])):  # episodes x width x channel
        levels = sizes // 2
        levels[:, :3] = combo
        grid.append(levels)
    returns = np.concatenate([evaluate(_padded(grid[i:i + width], width))[:len(grid[i:i + width])]
                              for i in range(0, len(grid), width)])
    start, start_return = grid[int(np.argmax(returns))], float(np.max(returns))
    coordinates = list(itertools.product(range(params.n_aggregators), range(len(CONSTANT_FIELDS))))
    bar = _progress(sweeps * len(coordinates), f"best constant {params.scenario}", progress)
    best, best_return, evaluations, history = _sweep(start, start_return, coordinates, sizes, evaluate, sweeps, bar)
    return {"levels": best.tolist(), "search_return": best_return, "evaluations": len(grid) + evaluations,
            "sweep_returns": [start_return, *history], "search_episodes": episodes}


def regime_shares(params: Params, levels: np.ndarray, episodes: int, seed: int) -> np.ndarray:
    """Share [REGIMES, A] of the slots each aggregator spends in each hidden regime while `levels` [A, 8] play."""
    def regime(transition: Transition) -> jax.Array:
        return hidden_regime(privileged_view(transition.state, params))

    # the regime a slot ends in is the one the next slot acts in; the first slot's is reset's (no tap, no surge)
    seen = jax.jit(lambda k: rollouts(constant_policy(levels, params), params, k, regime))(seed_keys(seed, episodes))
    seen = np.asarray(seen).reshape(-1, params.n_aggregators)
    return np.stack([np.mean(seen == r, axis=0) for r in range(REGIMES)])


def oracle_search(params: Params, start: np.ndarray, episodes: int = 32, sweeps: int = 2, min_share: float = 0.01,
                  progress: bool = True) -> dict[str, Any]:
    """The oracle's levels [REGIMES, A, 8]: the coordinate search again, one constant per aggregator and hidden regime.

    It starts from `start` (the best constant) in every regime, so on the search's episodes it never
    ends below it, and searches only the (regime, aggregator) pairs met in at least `min_share` of
    the slots while `start` plays: a regime never met has nothing to tune.
    """
    sizes = field_sizes(params)
    evaluate = evaluator(params, episodes, SEARCH_SEED, oracle_policy)
    table = np.repeat(np.asarray(start, np.int32)[None], REGIMES, axis=0)
    shares = regime_shares(params, start, episodes, SEARCH_SEED)
    start_return = float(evaluate(table[None])[0])
    coordinates = [(r, a, f) for r in range(REGIMES) for a in range(params.n_aggregators)
                   if shares[r, a] >= min_share for f in range(len(CONSTANT_FIELDS))]
    bar = _progress(sweeps * len(coordinates), f"oracle {params.scenario}", progress)
    best, best_return, evaluations, history = _sweep(table, start_return, coordinates, sizes, evaluate, sweeps, bar)
    return {"levels": best.tolist(), "search_return": best_return, "evaluations": 1 + evaluations,
            "sweep_returns": [start_return, *history], "search_episodes": episodes,
            "regime_shares": shares.tolist()}


def headroom(scenario: str, episodes: int = 32, check_episodes: int = 64, sweeps: int = 3,
             progress: bool = True, oracle_sweeps: int = 0, from_pinned: bool = False) -> dict[str, Any]:
    """Best constant of `scenario` and the mean returns of noop, random, heuristic and it on unseen episodes.

    With `oracle_sweeps` > 0 the oracle is searched from that constant too and measured beside it;
    `from_pinned` starts from the pinned constant (when it is fresh) instead of searching it again.
    """
    config = load_config(scenario)
    params = params_from_config(config)
    start = time.perf_counter()
    if from_pinned:
        pinned = pinned_constant(scenario, config_hash(config))
        found = {k: pinned[k] for k in ("levels", "search_return", "evaluations", "sweep_returns", "search_episodes")}
    else:
        found = search(params, episodes, sweeps, progress)
    check = evaluator(params, check_episodes, CHECK_SEED)
    constant, noop = check(np.stack([np.asarray(found["levels"]), np.asarray(noop_levels(params))]))
    row = {"scenario": scenario, "config_hash": config_hash(config), "check_episodes": check_episodes,
           "fields": list(CONSTANT_FIELDS), **found, "noop": float(noop), "best_constant": float(constant)}
    for name in ("random", "heuristic"):
        row[name] = policy_return(name, params, check_episodes, CHECK_SEED)
    span = row["best_constant"] - row["noop"]
    # the benchmark issue's figures: how far an adaptive rule, and the oracle, get beyond the best constant, in the span
    row["heuristic_gain_over_span"] = (row["heuristic"] - row["best_constant"]) / span if span > 0 else float("nan")
    if oracle_sweeps > 0:
        oracle = oracle_search(params, np.asarray(found["levels"]), found["search_episodes"], oracle_sweeps,
                               progress=progress)
        oracle["check_return"] = float(evaluator(params, check_episodes, CHECK_SEED, oracle_policy)(
            np.asarray(oracle["levels"])[None])[0])
        row["oracle"] = oracle
        row["oracle_gain_over_span"] = (oracle["check_return"] - row["best_constant"]) / span if span > 0 else \
            float("nan")
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
    """The headroom table: mean returns on the unseen episodes, the heuristic's and the oracle's gain in the span."""
    lines = ["| scenario | noop | random | heuristic | best constant | oracle | (heuristic - const) / (const - noop) "
             "| (oracle - const) / (const - noop) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        oracle, gain = (f"{r['oracle']['check_return']:.2f}", f"{r['oracle_gain_over_span']:+.3f}") if "oracle" in r \
            else ("-", "-")
        lines.append(f"| {r['scenario']} | {r['noop']:.2f} | {r['random']:.2f} | {r['heuristic']:.2f} | "
                     f"{r['best_constant']:.2f} | {oracle} | {r['heuristic_gain_over_span']:+.3f} | {gain} |")
    return "\n".join(lines)


def plot(rows: Sequence[dict[str, Any]], out: str | os.PathLike) -> Path:
    """Each scenario's returns of noop, random, the heuristic and the best constant, scaled so noop is 0 and it is 1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = ("noop", "random", "heuristic", "best_constant") + (("oracle",) if all("oracle" in r for r in rows) else ())
    fig, ax = plt.subplots(figsize=(9, 4), dpi=120)
    x = np.arange(len(rows))
    bar = 0.8 / len(names)
    for j, name in enumerate(names):
        scaled = [((r["oracle"]["check_return"] if name == "oracle" else r[name]) - r["noop"])
                  / (r["best_constant"] - r["noop"]) for r in rows]
        ax.bar(x + (j - (len(names) - 1) / 2) * bar, scaled, bar, label=name.replace("_", " "))
    ax.axhline(1.0, color="0.3", lw=0.8, ls="--")
    ax.set_xticks(x, [r["scenario"] for r in rows], rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("(R - R_noop) / (R_best_constant - R_noop)")
    ax.set_title(f"Headroom: a constant against the rule and the oracle ({rows[0]['check_episodes']} unseen episodes "
                 "each)", fontsize=9)
    ax.legend(fontsize=8, ncol=len(names), loc="lower right")
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    path = save_figure(fig, out)
    plt.close(fig)
    return path


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="coordinate", disable=not enabled, leave=False)


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
    parser.add_argument("--oracle", action="store_true", help="search the oracle from the best constant and measure it")
    parser.add_argument("--oracle-sweeps", type=int_range("--oracle-sweeps", 1), default=2,
                        help="coordinate sweeps of the oracle's search at most")
    parser.add_argument("--from-pinned", action="store_true",
                        help="start from the pinned best constant instead of searching it again (it must be fresh)")
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
        if args.write:
            print(f"pinned in {pin(rows)}")
    else:
        rows = []
        for name in names:  # each scenario's result is kept as soon as it is measured: an interrupted run loses one
            rows.append(headroom(name, args.episodes, args.check_episodes, args.sweeps, not args.no_progress,
                                 args.oracle_sweeps if args.oracle else 0, args.from_pinned))
            print(markdown(rows[-1:]).splitlines()[-1], flush=True)
            if args.write:
                pin(rows[-1:])
            if args.json:
                write_json(args.json, {"rows": rows})
        if args.write:
            print(f"pinned in {best_constants_path()}")
    if args.plot is not None and rows:
        print(f"plot: {plot(rows, args.plot)}")
    return publish({"rows": rows}, markdown(rows), args.json)


if __name__ == "__main__":
    main()
