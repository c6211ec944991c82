"""Plot secret key rate against fiber distance: decoy-state BB84 (GYS), a single-photon BB84 bound, PLOB.

Run `.venv/bin/python -m qin_env.bench.plot_key_rates [--out PATH]` to regenerate docs/key_rate_vs_distance.png.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from qin_env.physics import (
    decoy_bb84_key_rate,
    fiber_transmittance,
    plob_bound,
    shor_preskill_rate,
)

# GYS parameters, the defaults of `decoy_bb84_key_rate` (Gobby, Yuan, Shields 2004).
ALPHA_DB_PER_KM = 0.21
ETA_BOB = 0.045
Y0 = 1.7e-6
E_DETECTOR = 0.033
SIFTING = 0.5
MAX_KM = 200.0


def single_photon_bb84_rate(length_km: jax.Array) -> jax.Array:
    """Bits per pulse of BB84 with an ideal single-photon source and the GYS detectors.

    Shor-Preskill applied to a perfect single-photon source with GYS detectors:
    Y1 = y0 + eta, e1 = (y0 / 2 + e_d eta) / Y1, R = q Y1 (1 - 2 h(e1)), with no error-correction
    inefficiency, so it bounds what any BB84 source reaches with these detectors.
    """
    eta = ETA_BOB * fiber_transmittance(length_km, ALPHA_DB_PER_KM)
    y1 = Y0 + eta
    e1 = (0.5 * Y0 + E_DETECTOR * eta) / y1
    return SIFTING * y1 * shor_preskill_rate(e1)


def _positive_or_nan(rate: np.ndarray) -> np.ndarray:
    """Hide zero rates, which a log axis cannot show."""
    return np.where(rate > 0.0, rate, np.nan)


def main(out: str = "docs/key_rate_vs_distance.png") -> Path:
    """Render the key-rate comparison to `out` and return its path."""
    with jax.enable_x64(True):  # float64 so that the cut-off is not blurred by float32 rounding
        length_km = jnp.linspace(0.0, MAX_KM, 20001, dtype=jnp.float64)
        decoy = np.asarray(decoy_bb84_key_rate(length_km))
        single = np.asarray(single_photon_bb84_rate(length_km))
        plob = np.asarray(plob_bound(fiber_transmittance(length_km, ALPHA_DB_PER_KM)))
    km = np.asarray(length_km)
    decoy_cutoff_km = float(km[decoy > 0.0].max())

    fig, ax = plt.subplots(figsize=(8.0, 5.0))
    ax.semilogy(km, plob, color="black", label="PLOB bound, $-\\log_2(1-\\eta)$ (repeaterless capacity)")
    ax.semilogy(km, _positive_or_nan(single), color="tab:green", label="BB84, ideal single photons (GYS detectors)")
    ax.semilogy(km, _positive_or_nan(decoy), color="tab:blue", label="Decoy-state BB84, GYS, $\\mu=0.48$")
    ax.axvline(decoy_cutoff_km, color="tab:blue", linestyle=":", linewidth=1.5)
    ax.annotate(
        f"decoy cut-off\n{decoy_cutoff_km:.1f} km",
        xy=(decoy_cutoff_km, 1e-8),
        xytext=(decoy_cutoff_km - 45.0, 1e-9),
        arrowprops={"arrowstyle": "->", "color": "tab:blue"},
        color="tab:blue",
    )
    ax.set_xlim(0.0, MAX_KM)
    ax.set_ylim(1e-10, 1.0)
    ax.set_xlabel("Fiber distance L (km), 0.21 dB/km")
    ax.set_ylabel("Secret key rate (bits per pulse / channel use)")
    ax.set_title("Secret key rate vs fiber distance (asymptotic, GYS parameters)")
    ax.grid(True, which="major", alpha=0.5)
    ax.grid(True, which="minor", alpha=0.15)
    ax.legend(loc="upper right", fontsize=9)
    fig.tight_layout()

    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


if __name__ == "__main__":
    from qin_env.bench.args import HelpFormatter

    parser = argparse.ArgumentParser(prog="python -m qin_env.bench.plot_key_rates", description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--out", default="docs/key_rate_vs_distance.png", help="output PNG path")
    print(main(parser.parse_args().out))
