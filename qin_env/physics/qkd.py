"""BB84 quantum key distribution: entropy, secret fractions, eavesdropping, key-rate bounds."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import betainc
from jax.typing import ArrayLike

from qin_env.physics._validate import as_float, check_range
from qin_env.physics.fiber import fiber_transmittance

SHOR_PRESKILL_QBER_THRESHOLD = 0.110027864  # root of 1 - 2 h(Q) = 0


def binary_entropy(p: ArrayLike) -> jax.Array:
    """Shannon entropy h(p) in bits; 0 at p = 0 and p = 1 with finite gradients everywhere."""
    check_range("p", p, 0.0, 1.0)
    p = as_float(p)
    tiny = jnp.finfo(p.dtype).tiny
    q = jnp.clip(p, tiny, 1.0 - jnp.finfo(p.dtype).eps)
    # h(p) = -p log2 p - (1-p) log2 (1-p) (Shannon 1948, Sec. 6)
    h = -(q * jnp.log2(q) + (1.0 - q) * jnp.log2(1.0 - q))
    return jnp.where((p <= 0.0) | (p >= 1.0), 0.0, h)


def shor_preskill_rate(qber: ArrayLike) -> jax.Array:
    """Asymptotic BB84 secret fraction per sifted bit, max(0, 1 - 2 h(Q)); 0 for Q >= 1/2."""
    check_range("qber", qber, 0.0, 1.0)
    qber = as_float(qber)
    # r = 1 - 2 h(Q) (Shor & Preskill, PRL 85, 441, 2000, Eq. 1 and text)
    rate = jnp.maximum(0.0, 1.0 - 2.0 * binary_entropy(jnp.minimum(qber, 0.5)))
    return jnp.where(qber < 0.5, rate, 0.0)


def intercept_resend_qber(eve_fraction: ArrayLike, base_qber: ArrayLike = 0.0) -> jax.Array:
    """QBER when Eve intercepts and resends (random basis) a fraction of the BB84 qubits.

    An intercepted qubit is measured in the wrong basis half the time and then reads wrong half
    the time, so it errs with 1/4; the channel's own error `base_qber` acts on top of Eve's.
    """
    check_range("eve_fraction", eve_fraction, 0.0, 1.0)
    check_range("base_qber", base_qber, 0.0, 0.5)
    f = as_float(eve_fraction)
    e = jnp.asarray(base_qber, f.dtype)
    # Intercepted: 1/4 (1 - e) + 3/4 e; untouched: e (Bennett & Brassard 1984; Gisin et al., RMP 74, 145, Sec. VI.A)
    return e + f * (0.25 - 0.5 * e)


def eve_detection_probability(
    qber: ArrayLike, n_test: ArrayLike, threshold: ArrayLike
) -> jax.Array:
    """Probability that `n_test` sacrificed bits show an error rate strictly above `threshold`.

    Errors in the test sample are Binomial(n_test, qber); the tail P(X > floor(t n)) is the
    regularised incomplete beta function, which is smooth in `qber`.
    """
    check_range("qber", qber, 0.0, 1.0)
    check_range("n_test", n_test, 0.0, float("inf"))
    check_range("threshold", threshold, 0.0, 1.0)
    qber = as_float(qber)
    n = jnp.floor(jnp.asarray(n_test, qber.dtype))
    k = jnp.floor(jnp.asarray(threshold, qber.dtype) * n)
    possible = (k < n) & (n > 0)
    a = jnp.where(possible, k + 1.0, 1.0)
    b = jnp.where(possible, n - k, 1.0)
    # Binomial tail P(X >= k+1) = I_q(k+1, n-k) (Abramowitz & Stegun, Eq. 26.5.24)
    return jnp.where(possible, betainc(a, b, qber), 0.0)


def decoy_bb84_key_rate(
    length_km: ArrayLike,
    *,
    mu: ArrayLike = 0.48,
    alpha_db_per_km: ArrayLike = 0.21,
    eta_bob: ArrayLike = 0.045,
    y0: ArrayLike = 1.7e-6,
    e_detector: ArrayLike = 0.033,
    f_ec: ArrayLike = 1.22,
    sifting: ArrayLike = 0.5,
) -> jax.Array:
    """Secret bits per pulse of asymptotic decoy-state BB84 with weak coherent pulses over fiber.

    GLLP with infinitely many decoys (single-photon yield and error known exactly); the defaults
    are the GYS experiment's parameters used by Lo, Ma and Chen (Gobby, Yuan, Shields 2004).
    """
    check_range("length_km", length_km, 0.0, float("inf"))
    eta_channel = fiber_transmittance(length_km, alpha_db_per_km)
    return decoy_bb84_key_rate_from_transmittance(
        eta_channel, mu=mu, eta_bob=eta_bob, y0=y0, e_detector=e_detector, f_ec=f_ec, sifting=sifting
    )


def decoy_bb84_key_rate_from_transmittance(
    eta_channel: ArrayLike,
    *,
    mu: ArrayLike = 0.48,
    eta_bob: ArrayLike = 0.045,
    y0: ArrayLike = 1.7e-6,
    e_detector: ArrayLike = 0.033,
    f_ec: ArrayLike = 1.22,
    sifting: ArrayLike = 0.5,
) -> jax.Array:
    """Decoy-state BB84 secret bits per pulse for any channel transmittance (fiber, free space)."""
    check_range("eta_channel", eta_channel, 0.0, 1.0)
    check_range("mu", mu, 0.0, float("inf"), low_open=True)
    check_range("eta_bob", eta_bob, 0.0, 1.0)
    check_range("y0", y0, 0.0, 1.0)
    check_range("e_detector", e_detector, 0.0, 0.5)
    check_range("f_ec", f_ec, 1.0, float("inf"))
    check_range("sifting", sifting, 0.0, 1.0)
    eta_channel = as_float(eta_channel)
    dt = eta_channel.dtype
    mu, eta_bob, y0 = (jnp.asarray(v, dt) for v in (mu, eta_bob, y0))
    e_detector, f_ec = jnp.asarray(e_detector, dt), jnp.asarray(f_ec, dt)
    e0 = 0.5
    eta = eta_bob * eta_channel
    # Gain, QBER, single-photon yield and error (Ma, Qi, Zhao, Lo, PRA 72, 012326, 2005, Eqs. 2-9)
    q_mu = y0 - jnp.expm1(-eta * mu)
    e_mu = (e0 * y0 - e_detector * jnp.expm1(-eta * mu)) / jnp.maximum(q_mu, jnp.finfo(dt).tiny)
    y1 = y0 + eta - y0 * eta
    q1 = y1 * mu * jnp.exp(-mu)
    e1 = jnp.clip((e0 * y0 + e_detector * eta) / jnp.maximum(y1, jnp.finfo(dt).tiny), 0.0, 0.5)
    # GLLP: R >= q {-Q_mu f H2(E_mu) + Q_1 [1 - H2(e_1)]} (Lo, Ma, Chen, PRL 94, 230504, 2005, Eq. 1)
    rate = sifting * (-q_mu * f_ec * binary_entropy(jnp.clip(e_mu, 0.0, 0.5))
                      + q1 * (1.0 - binary_entropy(e1)))
    return jnp.maximum(rate, 0.0)


def bb84_gain(eta_total: ArrayLike, mu: ArrayLike = 0.48, y0: ArrayLike = 1.7e-6) -> jax.Array:
    """Detection probability per weak coherent pulse: Q_mu = Y0 + 1 - exp(-eta mu)."""
    check_range("eta_total", eta_total, 0.0, 1.0)
    eta_total = as_float(eta_total)
    # Q_mu (Ma, Qi, Zhao, Lo, PRA 72, 012326, 2005, Eq. 3)
    return jnp.asarray(y0, eta_total.dtype) - jnp.expm1(-eta_total * mu)


def entanglement_qber(f: ArrayLike) -> jax.Array:
    """Bit error rate of BBM92 key measured on a Werner pair of fidelity f: 2(1-F)/3."""
    check_range("f", f, 0.25, 1.0)
    # Two of the three non-Phi+ Bell states flip a Z (or X) outcome (Bennett, Brassard, Mermin, PRL 68, 557, 1992)
    return 2.0 * (1.0 - as_float(f)) / 3.0


def plob_bound(eta: ArrayLike) -> jax.Array:
    """Repeaterless secret-key capacity of a pure-loss channel, bits per channel use."""
    check_range("eta", eta, 0.0, 1.0)
    eta = as_float(eta)
    # -log2(1 - eta) (Pirandola, Laurenza, Ottaviani, Banchi, Nat. Commun. 8, 15043, 2017, Eq. 19)
    return -jnp.log1p(-eta) / jnp.log(2.0).astype(eta.dtype)
