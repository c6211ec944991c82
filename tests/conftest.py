"""Suite-wide set-up: one persistent XLA compilation cache for the session and its subprocesses.

Most of the suite's time is compiling: many tests build their own `jax.jit` of the same step,
rollout or trainer, and JAX's persistent cache (keyed by the computation, not the Python
object) lets every compile after the first load the executable instead. The cache lives in a
temporary folder of this session (`QIN_TEST_JAX_CACHE` names another one to keep it across runs),
so no run sees another's programs unless asked to.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import jax

_OWN = "QIN_TEST_JAX_CACHE" not in os.environ
CACHE_DIR = os.environ.get("QIN_TEST_JAX_CACHE") or tempfile.mkdtemp(prefix="qin-jax-cache-")
for name, value in (("jax_compilation_cache_dir", CACHE_DIR), ("jax_persistent_cache_min_compile_time_secs", 0.0),
                    ("jax_persistent_cache_min_entry_size_bytes", 0)):
    jax.config.update(name, value)
    os.environ[name.upper()] = str(value)  # the CLI tests' subprocesses read the same cache


def pytest_sessionfinish(session, exitstatus) -> None:
    """Remove this session's cache folder (a folder named by QIN_TEST_JAX_CACHE is kept)."""
    if _OWN:
        shutil.rmtree(CACHE_DIR, ignore_errors=True)
