"""Result files written atomically: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from qin_env.agents.checkpoint import atomic_write_bytes


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
