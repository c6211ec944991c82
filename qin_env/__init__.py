"""QIN-Gym: a multi-agent RL environment of quantum intelligence networks.

Faces over one functional JAX core (`qin_env.core`):
- PettingZoo: `qin_env.parallel_env(...)` and `qin_env.env(...)` (AEC);
- Gymnasium: `gymnasium.make("qin/Orchestrator-v1")` and `"qin/Aggregator-v1"`, registered on import;
- JAX: `qin_env.load_params`, `qin_env.core.reset`, `qin_env.core.step`, and whole episodes under
  `lax.scan` with `qin_env.rollout.rollout` (which also fixes how episodes split their keys).
"""

from __future__ import annotations

from typing import Any

import gymnasium

from qin_env.params import DEFAULT_SCENARIO, Params, list_scenarios, load_params

__version__ = "0.1.0"
__all__ = ["DEFAULT_SCENARIO", "Params", "env", "list_scenarios", "load_params", "parallel_env"]


def parallel_env(
    scenario: str = DEFAULT_SCENARIO, overrides: dict[str, Any] | None = None, render_mode: str | None = None,
    max_cycles: int | None = None,
) -> Any:
    """PettingZoo ParallelEnv of a scenario (see `qin_env.faces.pettingzoo`)."""
    from qin_env.faces.pettingzoo import parallel_env as make

    return make(scenario=scenario, overrides=overrides, render_mode=render_mode, max_cycles=max_cycles)


def env(
    scenario: str = DEFAULT_SCENARIO, overrides: dict[str, Any] | None = None, render_mode: str | None = None,
    max_cycles: int | None = None,
) -> Any:
    """PettingZoo AEC env of a scenario (see `qin_env.faces.pettingzoo`)."""
    from qin_env.faces.pettingzoo import env as make

    return make(scenario=scenario, overrides=overrides, render_mode=render_mode, max_cycles=max_cycles)


def _register() -> None:
    for env_id, entry in (("qin/Orchestrator-v1", "OrchestratorEnv"), ("qin/Aggregator-v1", "AggregatorEnv")):
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point=f"qin_env.faces.gymnasium:{entry}")


_register()
