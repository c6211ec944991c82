"""The environment version: it changes whenever the dynamics change, so results of two versions never mix.

Checkpoints, leaderboard cells and reference returns record the version they were made under;
loaders refuse another version with a message that says why. The history is in
`qin_env.faces.pettingzoo`'s docstring and `docs/environment.md`.
"""

from __future__ import annotations

ENV_VERSION = 1
VERSION_HISTORY = {
    0: "first release",
    1: "the step's physics made honest (superdense over the channel, nested repeater rate, in-slot decoherence, "
       "satellite passes from the orbit, estimated fidelities, exact alarm tails, finite-key QKD) and a return "
       "that rewards the quality held every slot",
}


def version_mismatch(what: str, found: object) -> str | None:
    """A message when `found` (the version a file records) is not this environment's version; None when it is."""
    if found == ENV_VERSION:
        return None
    return (f"{what} was made under environment version {found!r}; this qin-env runs version {ENV_VERSION} "
            f"({VERSION_HISTORY[ENV_VERSION]}), whose dynamics differ, so its results do not carry over: "
            "retrain or recompute it under this version")
