"""Werner-state entanglement: storage, swapping, purification and what a pair is good for.

A Werner pair of fidelity F is F |Phi+><Phi+| plus (1-F)/3 on each other Bell state; F lies
in [1/4, 1] (1/4 is the maximally mixed state, 1/2 the separability boundary).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from qin_env.physics._validate import as_float, check_range


def _fidelity(name: str, f: ArrayLike) -> jax.Array:
    check_range(name, f, 0.25, 1.0)
    return as_float(f)


def werner_swap_fidelity(f1: ArrayLike, f2: ArrayLike) -> jax.Array:
    """Fidelity of the pair left after a Bell measurement joins two Werner pairs."""
    f1 = _fidelity("f1", f1)
    f2 = jnp.asarray(_fidelity("f2", f2), f1.dtype)
    # F' = F1 F2 + (1-F1)(1-F2)/3 (Briegel, Dür, Cirac, Zoller, PRL 81, 5932, 1998; Dür et al. PRA 59, 169, Eq. 11)
    return f1 * f2 + (1.0 - f1) * (1.0 - f2) / 3.0


def decohered_fidelity(f0: ArrayLike, t_s: ArrayLike, t_coherence_s: ArrayLike) -> jax.Array:
    """Fidelity of a Werner pair after `t_s` seconds in a depolarising memory of time constant T."""
    f0 = _fidelity("f0", f0)
    check_range("t_s", t_s, 0.0, float("inf"))
    check_range("t_coherence_s", t_coherence_s, 0.0, float("inf"), low_open=True)
    t = jnp.asarray(t_s, f0.dtype)
    # Depolarising decay toward the maximally mixed state: F(t) = 1/4 + (F0 - 1/4) e^{-t/T}
    # (Nielsen & Chuang, Eq. 8.102, applied to the Werner parameter)
    return 0.25 + (f0 - 0.25) * jnp.exp(-t / jnp.asarray(t_coherence_s, f0.dtype))


def age_averaged_fidelity(f0: ArrayLike, dt_s: ArrayLike, t_coherence_s: ArrayLike) -> jax.Array:
    """Mean fidelity at the end of a slot of `dt_s` of pairs made uniformly in it, stored in a depolarising memory.

    Equals `decohered_fidelity` averaged over ages uniform in [0, dt]; dt = 0 gives f0 exactly.
    """
    f0 = _fidelity("f0", f0)
    check_range("dt_s", dt_s, 0.0, float("inf"))
    check_range("t_coherence_s", t_coherence_s, 0.0, float("inf"), low_open=True)
    x = jnp.asarray(dt_s, f0.dtype) / jnp.asarray(t_coherence_s, f0.dtype)
    small = x < 1e-3
    x_safe = jnp.where(small, 1.0, x)
    # Mean of e^{-t/T} over t uniform in [0, dt]: (1 - e^{-x})/x with x = dt/T, its Taylor series near 0
    mean_decay = jnp.where(small, 1.0 - x / 2.0 + x * x / 6.0 - x**3 / 24.0, -jnp.expm1(-x_safe) / x_safe)
    # F = 1/4 + (F0 - 1/4)(T/dt)(1 - e^{-dt/T}) (Nielsen & Chuang, Eq. 8.102, integrated over uniform ages)
    return 0.25 + (f0 - 0.25) * mean_decay


def intercept_resend_pair_fidelity(f: ArrayLike, tap_fraction: ArrayLike) -> jax.Array:
    """Fidelity of a Werner pair one of whose photons Eve measures in a random Z/X basis and resends.

    With probability `tap_fraction` the pair is tapped; a tapped pair is Bell-diagonal but not Werner.
    """
    f = _fidelity("f", f)
    check_range("tap_fraction", tap_fraction, 0.0, 1.0)
    tap = jnp.asarray(tap_fraction, f.dtype)
    # Random Z/X measure-resend = mean of full Z, X dephasing = I/2 + X/4 + Z/4 (Nielsen & Chuang 8.3): F' = (2F+1)/6
    return (1.0 - tap) * f + tap * (2.0 * f + 1.0) / 6.0


def bbpssw_purify(f: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """(output fidelity, success probability) of one BBPSSW round on two Werner pairs of fidelity f."""
    f = _fidelity("f", f)
    g = (1.0 - f) / 3.0
    # p = F^2 + 2F(1-F)/3 + 5((1-F)/3)^2, F' = (F^2 + ((1-F)/3)^2) / p (Bennett et al., PRL 76, 722, 1996, Eq. 2)
    p_success = f * f + 2.0 * f * g + 5.0 * g * g
    return (f * f + g * g) / p_success, p_success


def chsh_value(f: ArrayLike) -> jax.Array:
    """Largest CHSH value a Werner pair reaches with optimal measurement settings."""
    f = _fidelity("f", f)
    # Werner visibility p = (4F-1)/3; S_max = 2 sqrt(2) p (Horodecki^3, PLA 200, 340, 1995)
    return 2.0 * jnp.sqrt(2.0).astype(f.dtype) * (4.0 * f - 1.0) / 3.0


def teleportation_fidelity(f: ArrayLike) -> jax.Array:
    """Average fidelity of a qubit state teleported over a Werner pair of fidelity f."""
    f = _fidelity("f", f)
    # f_tel = (2F + 1)/3 (Horodecki^3, PRA 60, 1888, 1999, Eq. 4 with d = 2)
    return (2.0 * f + 1.0) / 3.0


def superdense_capacity(f: ArrayLike) -> jax.Array:
    """Classical bits per sent qubit of superdense coding (Pauli encoding) over a Werner pair.

    The Holevo rate 2 - S(rho_W); below F ~ 0.811 it drops under 1, where sending the bit on a
    plain qubit is better. A Bell-measurement decoder reaches exactly this rate for Werner pairs.
    """
    f = _fidelity("f", f)
    g = (1.0 - f) / 3.0
    tiny = jnp.finfo(f.dtype).tiny

    def plogp(x: jax.Array) -> jax.Array:
        return jnp.where(x > 0.0, x * jnp.log2(jnp.maximum(x, tiny)), 0.0)

    # C = log2 d + S(rho_B) - S(rho_AB) = 2 - S(rho_W) (Bowen, PRA 63, 022302, 2001; Hiroshima, J. Phys. A 34, 6907)
    return 2.0 + plogp(f) + 3.0 * plogp(g)
