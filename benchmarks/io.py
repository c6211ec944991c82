"""Result files written atomically, and output folders held by one writer at a time.

Every writer here goes through `qin_env.agents.checkpoint.atomic_write_bytes`: a temporary file in
the same folder, fsynced, `os.replace`d over the target, the folder fsynced, so a reader (or a run
killed at any instant) sees the old file or the new one, never half of one. A killed write leaves
at most a `.NAME.XXXXXXXX.tmp` file beside it (`is_temporary`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from qin_env.agents.checkpoint import atomic_write_bytes
from qin_env.bench.args import UsageError

LOCK_FILE = ".lock"
_TEMPORARY = re.compile(r"\.(?P<name>.+)\.[^.]+\.tmp")  # atomic_write_bytes's mkstemp(prefix=".NAME.", suffix=".tmp")


def write_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Create the folder if needed, then write `data` with the project's one atomic writer (folder fsynced too)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_bytes(path, data)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write `obj` as indented JSON."""
    return write_atomic(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def publish(result: dict[str, Any], table: str, json_path: str | os.PathLike | None) -> dict[str, Any]:
    """A benchmark's last step: print its table and, when asked, write its result JSON atomically."""
    print(table)
    if json_path:
        write_json(json_path, result)
    return result


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write a text file."""
    return write_atomic(path, text.encode())


def save_figure(fig: Any, path: str | os.PathLike, **kwargs: Any) -> Path:
    """Atomically save a matplotlib figure (format from the suffix)."""
    import io

    path = Path(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=path.suffix.lstrip(".") or "png", **kwargs)
    return write_atomic(path, buffer.getvalue())


def is_temporary(name: str, of: Any = None) -> bool:
    """Whether `name` is the temporary file of an atomic write (killed before its rename); `of(target)` filters."""
    match = _TEMPORARY.fullmatch(name)
    return bool(match) and (of is None or of(match["name"]))


@contextlib.contextmanager
def exclusive_folder(folder: Path, flag: str = "--out") -> Iterator[Path]:
    """Create `folder` and hold an exclusive lock on it while the block runs (`flock` on `folder/.lock`).

    The kernel drops the lock when the process ends, however it ends, so a killed run never leaves a
    folder locked. A folder another process holds is a UsageError naming the folder and that PID.
    """
    import fcntl  # POSIX; imported here so parsing the command line needs nothing platform-specific

    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{flag} {folder} is a file, not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise UsageError(f"{flag} {folder} is in use by another run (PID {holder}, which holds "
                             f"{folder / LOCK_FILE}); wait for it to end or choose another folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield folder
    finally:
        os.close(fd)
