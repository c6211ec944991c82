"""The faces' action space: a Gymnasium `MultiDiscrete` whose `sample` also takes the flat mask.

Every face reports `info["action_mask"]` as one `int8` vector over the concatenated components
(TorchRL's, MaskablePPO's and RLlib's form). Gymnasium's `MultiDiscrete.sample` wants one array per
component, and PettingZoo's `api_test` calls `action_space(agent).sample(info["action_mask"])`, so
this space accepts either form. It is a `MultiDiscrete` for every `isinstance` check and compares
equal to a plain one of the same `nvec`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

__all__ = ["MaskedMultiDiscrete"]


class MaskedMultiDiscrete(spaces.MultiDiscrete):
    """`MultiDiscrete` whose `sample(mask=...)` and `sample(probability=...)` take a flat vector too."""

    def sample(self, mask: Any = None, probability: Any = None) -> np.ndarray:
        """A random action; a flat `mask`/`probability` of length `nvec.sum()` is split per component."""
        return super().sample(mask=self.split(mask, "mask"), probability=self.split(probability, "probability"))

    def split(self, flat: Any, name: str = "mask") -> tuple[np.ndarray, ...] | None:
        """The per-component tuple of a flat mask (a tuple or None passes through unchanged)."""
        if flat is None or isinstance(flat, tuple):
            return flat
        flat = np.asarray(flat)
        total = int(self.nvec.sum())
        if self.nvec.ndim != 1 or flat.shape != (total,):
            raise ValueError(f"{name}: a flat {name} for nvec {self.nvec.tolist()} has shape ({total},), "
                             f"got {flat.shape}; or pass one array per component as a tuple")
        return tuple(np.split(flat, np.cumsum(self.nvec)[:-1]))
