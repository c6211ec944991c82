"""What every speed benchmark shares: medians over repeats, and a record of the machine and versions."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

PACKAGES = ("jax", "jaxlib", "pennylane", "numpy", "optax", "pettingzoo", "gymnasium", "stable-baselines3", "torch",
            "mpe2", "qin-env")


def median_rate(run: Callable[[], int], repeats: int) -> tuple[float, list[float]]:
    """Median items/s of `run` (which returns how many items it processed) over `repeats` calls."""
    if repeats < 1:
        raise ValueError(f"repeats={repeats} is outside the allowed range [1, inf)")
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        n = run()
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates), rates


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """`fn()`'s result and its wall time in seconds (for compile times and first calls)."""
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def versions() -> dict[str, str]:
    """Installed versions of the packages whose speed the benchmarks measure."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit() -> str:
    """The checkout's commit (`+dirty` with uncommitted changes to tracked files), or "unknown" outside git."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True,
                                check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def machine_info() -> dict[str, Any]:
    """The machine a measurement ran on: platform, processor, CPUs (all and usable), memory, Python, JAX devices."""
    import jax

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):  # not every platform reports it
        memory = None
    return {"platform": platform.platform(), "machine": platform.machine(),
            "processor": platform.processor() or platform.machine(), "python": platform.python_version(),
            "cpus": os.cpu_count(), "usable_cpus": usable, "memory_bytes": memory, "jax": jax.__version__,
            "jax_device": str(jax.devices()[0]), "jax_devices": [str(d) for d in jax.devices()]}
