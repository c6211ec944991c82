"""Stable-Baselines3's `VecEnv` over a Gymnasium vector face: N envs per compiled call for SB3 and MaskablePPO.

``` python
from stable_baselines3 import PPO
from qin_env.faces.vector import OrchestratorVectorEnv
from qin_env.wrappers import SB3VecEnv

PPO("MlpPolicy", SB3VecEnv(OrchestratorVectorEnv(64, "metro_qkd"))).learn(10_000)
```

SB3's conventions: `reset()` returns only observations and seeds from `seed()`; `step_wait()`
returns dones and a list of per-env infos, with `terminal_observation` and `TimeLimit.truncated`
where an episode ended (the vector face auto-resets in the same step, as SB3 expects).
`env_method("action_masks")` serves sb3-contrib's MaskablePPO.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv

from qin_env.faces.vector import _VectorView

__all__ = ["SB3VecEnv"]


class SB3VecEnv(VecEnv):
    """A `qin_env.faces.vector` env (or `gymnasium.make_vec` of a qin id) as an SB3 `VecEnv`."""

    def __init__(self, vector_env: Any) -> None:
        base = getattr(vector_env, "unwrapped", vector_env)
        if not isinstance(base, _VectorView):
            raise TypeError(f"SB3VecEnv wraps a qin_env vector env (OrchestratorVectorEnv, AggregatorVectorEnv or "
                            f"gymnasium.make_vec of a qin id), got {type(vector_env).__name__}")
        self.vector_env = vector_env
        self._actions: np.ndarray | None = None
        super().__init__(base.num_envs, base.single_observation_space, base.single_action_space)

    def reset(self) -> np.ndarray:
        """Every env restarted; seeds from `seed()` (SB3 sets `s + i` per env), else the streams continue."""
        seeds = None if self._seeds[0] is None else [int(s) for s in self._seeds]
        obs, info = self.vector_env.reset(seed=seeds)
        self.reset_infos = [{"action_mask": m} for m in info["action_mask"]]
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        obs, rewards, terminated, truncated, info = self.vector_env.step(self._actions)
        done = terminated | truncated
        source = info.get("final_info", info)
        infos: list[dict[str, Any]] = []
        for i in range(self.num_envs):
            inner = source if done[i] else info
            one = {"kpi": {k: float(v[i]) for k, v in inner["kpi"].items()},
                   "reward_terms": {k: float(v[i]) for k, v in inner["reward_terms"].items()},
                   "action_mask": info["action_mask"][i]}
            if done[i]:
                one["terminal_observation"] = info["final_obs"][i]
                one["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
            infos.append(one)
        return obs, rewards, done, infos

    def close(self) -> None:
        self.vector_env.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        """The vector env's attribute, once per selected env (`action_masks` is each env's own mask getter)."""
        idx = list(self._get_indices(indices))
        base = self.vector_env.unwrapped
        if attr_name == "action_masks":
            return [lambda i=i: base.action_masks()[i] for i in idx]
        return [getattr(base, attr_name) for _ in idx]

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        raise AttributeError(f"SB3VecEnv: the envs share one compiled batch; {attr_name!r} cannot be set per env")

    def env_method(self, method_name: str, *method_args: Any, indices: Any = None, **method_kwargs: Any) -> list[Any]:
        """`action_masks` per env (sb3-contrib's `get_action_masks`); other methods are not per env here."""
        if method_name != "action_masks":
            raise AttributeError(f"SB3VecEnv: env_method({method_name!r}) is not available; the batch has one "
                                 "compiled step, not per-env objects (action_masks is)")
        masks = self.vector_env.unwrapped.action_masks()
        return [masks[i] for i in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None] * self.num_envs
