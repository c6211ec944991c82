"""Agents for QIN-Gym: a registry of baselines, trained agents and plug-ins, and checkpoints.

``` python
from qin_env import agents
agent = agents.make("heuristic", scenario="metro_qkd")
agents.list_agents()   # {name: description}
```

Heavy dependencies (stable-baselines3, PennyLane) are imported only when an agent needing them is built.
"""

from __future__ import annotations

from qin_env.agents.checkpoint import load_checkpoint, save_checkpoint
from qin_env.agents.registry import Agent, list_agents, make, register

__all__ = ["Agent", "list_agents", "load_checkpoint", "make", "register", "save_checkpoint"]
