"""Suite-wide set-up: one persistent XLA compilation cache for the session, its workers and subprocesses.

Most of the suite's time is compiling: many tests build their own `jax.jit` of the same step,
rollout or trainer, and JAX's persistent cache (keyed by the computation, not the Python
object) lets every compile after the first load the executable instead. The cache lives in a
temporary folder of this session (`QIN_TEST_JAX_CACHE` names another one to keep it across runs),
shared by the pytest-xdist workers, so no run sees another's programs unless asked to.

Every compiled program stays mapped in the process until JAX's caches drop it: a whole suite in
one process grew to 9.5 GB and segfaulted inside XLA near its end (the kernel's limit of 65,530
memory maps is the likely wall). So the in-memory caches are cleared after each test module; a
later module's compile of the same program is a load from the persistent cache.

The tests check behaviour, not speed (that is `qin perf`'s), and most of their time is LLVM
optimising programs that then run for milliseconds: they compile at XLA's backend optimisation
level 0 (about a quarter less time on 2 cores). Results agree with level 2 to float rounding;
every bitwise comparison in the suite is between programs compiled alike.
"""

from __future__ import annotations

import gc
import os
import shutil
import tempfile

_O0 = "--xla_backend_optimization_level=0"
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):  # set before jax starts its backend
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_O0}".strip()

import jax  # noqa: E402
import pytest  # noqa: E402

_OWN = "QIN_TEST_JAX_CACHE" not in os.environ
CACHE_DIR = os.environ.get("QIN_TEST_JAX_CACHE") or tempfile.mkdtemp(prefix="qin-jax-cache-")
os.environ["QIN_TEST_JAX_CACHE"] = CACHE_DIR  # xdist workers start from this environment and share the folder
for name, value in (("jax_compilation_cache_dir", CACHE_DIR), ("jax_persistent_cache_min_compile_time_secs", 0.0),
                    ("jax_persistent_cache_min_entry_size_bytes", 0)):
    jax.config.update(name, value)
    os.environ[name.upper()] = str(value)  # the CLI tests' subprocesses read the same cache


@pytest.fixture(scope="module", autouse=True)
def _release_compiled_programs():
    """Drop this module's compiled programs once its tests are done (see the module docstring)."""
    yield
    jax.clear_caches()
    gc.collect()


def pytest_sessionfinish(session, exitstatus) -> None:
    """Remove this session's cache folder, from the process that made it (a named folder is kept)."""
    if _OWN and not hasattr(session.config, "workerinput"):
        shutil.rmtree(CACHE_DIR, ignore_errors=True)
