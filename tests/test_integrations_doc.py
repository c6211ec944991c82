"""The CleanRL-style loop of docs/integrations.md runs as printed, and its policy never samples a masked value."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "integrations.md"


def _block(heading: str) -> str:
    """The first python block under `heading` in docs/integrations.md."""
    text = DOC.read_text()
    start = text.index(heading)
    return re.search(r"```python\n(.*?)```", text[start:], re.S).group(1)


def test_the_cleanrl_loop_trains_with_masks_as_printed(capsys):
    pytest.importorskip("torch")
    scope: dict = {"__name__": "cleanrl_snippet"}
    exec(compile(_block("## A CleanRL-style loop"), str(DOC), "exec"), scope)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == scope["UPDATES"] and all(np.isfinite(float(line.split()[-1])) for line in lines)
    assert np.isfinite(float(scope["loss"]))
    batch, sizes = scope["b"], scope["sizes"]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    chosen = np.take_along_axis(batch["mask"].numpy(), batch["action"].numpy() + offsets, axis=-1)
    assert chosen.all()  # every sampled component value was allowed by the step's mask
    assert not batch["mask"].numpy().all()  # and the masks did forbid something
