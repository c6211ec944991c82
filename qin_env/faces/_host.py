"""One device-to-host copy per call: a compiled function's host results packed into one vector.

A face's jitted step returns `pack(tree)` beside what stays on the device; on the host,
`.unpack()` copies the one float32 buffer and hands back `tree` with numpy leaves of the original
shapes and dtypes. The layout (where each leaf lies) is fixed when the function is traced and
travels as static pytree metadata, so the host needs no shapes of its own.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

_JAX_PID: int | None = None  # the process in which a face first ran JAX

FORK_MESSAGE = (
    "this process was forked from one that had already started JAX (pid {parent}), and JAX's thread pools do "
    "not survive a fork: the first computation would hang. Start workers with 'spawn' or 'forkserver', e.g. "
    "gymnasium.make_vec(id, n, vectorization_mode='async', vector_kwargs={{'context': 'spawn'}}), "
    "or SuperSuit/multiprocessing with the same start method")


def claim_process() -> None:
    """Raise at once, instead of hanging, when a face is used in a child forked after JAX started."""
    global _JAX_PID
    pid = os.getpid()
    if _JAX_PID is None:
        _JAX_PID = pid
    elif pid != _JAX_PID:
        raise RuntimeError(FORK_MESSAGE.format(parent=_JAX_PID))


# Exact in float32: floats of 32 bits or fewer, bools, and integers below 2**24 (counts, indices).
_PACKABLE = {"float32", "float16", "bfloat16", "bool", "int8", "uint8", "int16", "uint16", "int32", "uint32"}


@jax.tree_util.register_static  # a leafless node: jit hands it back with each call's buffer at no cost
@dataclasses.dataclass(frozen=True, eq=False)
class _Layout:
    """Where each leaf of a packed tree lies in the buffer: (slice, shape or None, dtype or None)."""

    treedef: Any
    slots: tuple[tuple[slice, tuple[int, ...] | None, np.dtype | None], ...]

    def unpack(self, buffer: np.ndarray) -> Any:
        """The tree from a host buffer; float32 vectors come back as views of it, the rest reshaped or cast."""
        leaves = []
        for part, shape, dtype in self.slots:
            leaf = buffer[part]
            if shape is not None:
                leaf = leaf.reshape(shape)
            leaves.append(leaf if dtype is None else leaf.astype(dtype))
        return self.treedef.unflatten(leaves)


@functools.lru_cache(maxsize=256)
def _layout(treedef: Any, specs: tuple[tuple[tuple[int, ...], np.dtype], ...]) -> _Layout:
    """The one layout of a tree structure and its leaves' shapes and dtypes (equal trees share it)."""
    slots, start = [], 0
    for shape, dtype in specs:
        size = math.prod(shape)
        slots.append((slice(start, start + size), None if len(shape) == 1 else shape,
                      None if dtype == np.float32 else dtype))
        start += size
    return _Layout(treedef, tuple(slots))


class Packed(NamedTuple):
    """A pytree's leaves as one float32 device vector, with the static layout to rebuild it."""

    buffer: jax.Array
    layout: _Layout

    def unpack(self) -> Any:
        """The packed tree with numpy leaves, after a single device-to-host copy into a writable array of
        the caller's (observations handed on to torch or a replay buffer may be written in place)."""
        return self.layout.unpack(np.array(self.buffer))


def pack(tree: Any) -> Packed:
    """Every leaf of `tree` raveled into one float32 vector (call inside the jitted function)."""
    leaves, treedef = jax.tree.flatten(tree)
    leaves = [jnp.asarray(x) for x in leaves]
    odd = sorted({str(x.dtype) for x in leaves} - _PACKABLE)
    if odd:
        raise TypeError(f"leaves of dtype {odd} do not survive a float32 round trip; cast them first")
    buffer = jnp.concatenate([jnp.ravel(x).astype(jnp.float32) for x in leaves])
    return Packed(buffer, _layout(treedef, tuple((x.shape, np.dtype(x.dtype)) for x in leaves)))
