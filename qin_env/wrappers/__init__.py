"""Adapters for trainers whose conventions differ from the faces', each a few lines (imported on use).

| name | for | what it does |
| --- | --- | --- |
| `SB3VecEnv` | Stable-Baselines3, sb3-contrib | a Gymnasium vector face (`qin_env.faces.vector`) as SB3's `VecEnv` |
| `tensor_infos` | TorchRL's `PettingZooWrapper` | infos without the mask tuple (TorchRL tensorises every entry) |
| `aggregator_team` | SuperSuit, parameter sharing | the PettingZoo face with the aggregators as its agents |

`docs/integrations.md` has a runnable snippet for each.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SB3VecEnv", "aggregator_team", "tensor_infos"]

_WHERE = {"SB3VecEnv": "qin_env.wrappers.sb3", "tensor_infos": "qin_env.wrappers.zoo",
          "aggregator_team": "qin_env.wrappers.zoo"}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'qin_env.wrappers' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_WHERE[name]), name)
