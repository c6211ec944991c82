"""BB84 quantum key distribution: entropy, secret fractions, eavesdropping, key rates and finite-key lengths."""

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
    eta = jnp.asarray(eta_bob, eta_channel.dtype) * eta_channel
    fraction = _gllp_secret_fraction(eta, mu, y0, e_detector, f_ec)
    return jnp.maximum(jnp.asarray(sifting, eta.dtype) * bb84_gain(eta, mu, y0) * fraction, 0.0)


def asymptotic_key_length(
    n_sifted: ArrayLike, test_fraction: ArrayLike, *, eta: ArrayLike, mu: ArrayLike, y0: ArrayLike,
    e_detector: ArrayLike, f_ec: ArrayLike,
) -> jax.Array:
    """Secret bits of a block of `n_sifted` sifted signal bits in the GLLP limit, the test part disclosed.

    The key part times the secret fraction per sifted bit, i.e. `decoy_bb84_key_rate*` over the sifted gain.
    """
    n_key, _, eta = _key_block(n_sifted, test_fraction, eta, mu, y0, e_detector, f_ec)
    return jnp.maximum(n_key * _gllp_secret_fraction(eta, mu, y0, e_detector, f_ec), 0.0)


def finite_key_length(
    n_sifted: ArrayLike, test_fraction: ArrayLike, *, eta: ArrayLike, mu: ArrayLike, y0: ArrayLike,
    e_detector: ArrayLike, f_ec: ArrayLike, eps_sec: ArrayLike = 1e-9, eps_cor: ArrayLike = 1e-15,
) -> jax.Array:
    """Secret bits of a block of `n_sifted` sifted signal bits of decoy BB84 with finite-key bounds (Lim et al. 2014).

    Decoy estimates are asymptotic (their fluctuations and the vacuum term are left out), so it is optimistic.
    """
    n_key, n_test, eta = _key_block(n_sifted, test_fraction, eta, mu, y0, e_detector, f_ec)
    e_mu, share, e1 = _decoy_estimates(eta, mu, y0, e_detector)
    leak = n_key * jnp.asarray(f_ec, eta.dtype) * binary_entropy(jnp.clip(e_mu, 0.0, 0.5))
    return finite_key_length_from_counts(n_key * share, n_test * share, e1, leak, eps_sec=eps_sec, eps_cor=eps_cor)


def finite_key_length_from_counts(
    single_key: ArrayLike, single_test: ArrayLike, e1: ArrayLike, ec_bits: ArrayLike, *,
    eps_sec: ArrayLike = 1e-9, eps_cor: ArrayLike = 1e-15,
) -> jax.Array:
    """Secret bits of a block from its single-photon key and test bits, their error rate e1 and the EC leakage.

    The form the step uses, where a block collects slots of different channels: the counts add up.
    """
    check_range("single_key", single_key, 0.0, float("inf"))
    check_range("single_test", single_test, 0.0, float("inf"))
    check_range("e1", e1, 0.0, 0.5)
    check_range("eps_sec", eps_sec, 0.0, 1.0, low_open=True, high_open=True)
    check_range("eps_cor", eps_cor, 0.0, 1.0, low_open=True, high_open=True)
    s_key = as_float(single_key)
    dt = s_key.dtype
    s_test, e1, leak = (jnp.asarray(v, dt) for v in (single_test, e1, ec_bits))
    eps_sec, eps_cor = jnp.asarray(eps_sec, dt), jnp.asarray(eps_cor, dt)
    phase_error = jnp.minimum(e1 + _sampling_deviation(eps_sec, e1, s_key, s_test), 0.5)
    # l = s_1 (1 - h(phi_U)) - lambda_EC - 6 log2(21/eps_sec) - log2(2/eps_cor) (Lim et al., PRA 89, 022307, Eq. 1)
    ell = s_key * (1.0 - binary_entropy(phase_error)) - leak - 6.0 * jnp.log2(21.0 / eps_sec) - jnp.log2(2.0 / eps_cor)
    return jnp.maximum(ell, 0.0)


def decoy_single_photon(eta: ArrayLike, mu: ArrayLike, y0: ArrayLike, e_detector: ArrayLike
                        ) -> tuple[jax.Array, jax.Array]:
    """(share Q_1/Q_mu of detections from single photons, their error rate e_1): asymptotic decoy estimates."""
    check_range("eta", eta, 0.0, 1.0)
    check_range("e_detector", e_detector, 0.0, 0.5)
    _, share, e1 = _decoy_estimates(as_float(eta), mu, y0, e_detector)
    return share, e1


def bb84_gain(eta_total: ArrayLike, mu: ArrayLike = 0.48, y0: ArrayLike = 1.7e-6) -> jax.Array:
    """Detection probability per weak coherent pulse: Q_mu = Y0 + 1 - exp(-eta mu)."""
    check_range("eta_total", eta_total, 0.0, 1.0)
    eta_total = as_float(eta_total)
    # Q_mu (Ma, Qi, Zhao, Lo, PRA 72, 012326, 2005, Eq. 3)
    return jnp.asarray(y0, eta_total.dtype) - jnp.expm1(-eta_total * mu)


def bb84_qber(
    eta: ArrayLike, mu: ArrayLike = 0.48, y0: ArrayLike = 1.7e-6, e_detector: ArrayLike = 0.033
) -> jax.Array:
    """QBER E_mu of weak coherent pulses at total transmittance `eta`; 1/2 (a random bit) where the gain is 0.

    `eta` is the channel's times Bob's; the gain is 0 only with no dark counts and no light (eta = 0).
    """
    check_range("eta", eta, 0.0, 1.0)
    check_range("mu", mu, 0.0, float("inf"), low_open=True)
    check_range("y0", y0, 0.0, 1.0)
    check_range("e_detector", e_detector, 0.0, 0.5)
    eta = as_float(eta)
    mu, y0, e_detector = (jnp.asarray(v, eta.dtype) for v in (mu, y0, e_detector))
    gain = bb84_gain(eta, mu, y0)
    detected = gain > 0.0
    # E_mu = (e0 Y0 + e_d (1 - e^{-eta mu})) / Q_mu, e0 = 1/2 (Ma, Qi, Zhao, Lo, PRA 72, 012326, 2005, Eq. 9)
    e_mu = (0.5 * y0 - e_detector * jnp.expm1(-eta * mu)) / jnp.where(detected, gain, 1.0)
    return jnp.where(detected, e_mu, 0.5)


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


def _decoy_estimates(
    eta: jax.Array, mu: ArrayLike, y0: ArrayLike, e_detector: ArrayLike
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(E_mu, Q_1/Q_mu, e_1) of signal pulses: QBER, single-photon share of detections, its error (1/2 if none)."""
    dt = eta.dtype
    mu, y0, e_detector = (jnp.asarray(v, dt) for v in (mu, y0, e_detector))
    q_mu = bb84_gain(eta, mu, y0)
    y1 = y0 + eta - y0 * eta
    # Q_1 = Y_1 mu e^-mu, e_1 = (e0 Y0 + e_d eta) / Y_1 (Ma, Qi, Zhao, Lo, PRA 72, 012326, 2005, Eqs. 2-9)
    q1 = y1 * mu * jnp.exp(-mu)
    e1 = jnp.where(y1 > 0.0, (0.5 * y0 + e_detector * eta) / jnp.where(y1 > 0.0, y1, 1.0), 0.5)
    detected = q_mu > 0.0
    share = jnp.where(detected, q1 / jnp.where(detected, q_mu, 1.0), 0.0)
    e1 = jnp.clip(e1, 0.0, 0.5)
    return bb84_qber(eta, mu, y0, e_detector), share, e1


def _gllp_secret_fraction(
    eta: jax.Array, mu: ArrayLike, y0: ArrayLike, e_detector: ArrayLike, f_ec: ArrayLike
) -> jax.Array:
    """Asymptotic secret bits per sifted signal bit (may be negative: no key)."""
    e_mu, share, e1 = _decoy_estimates(eta, mu, y0, e_detector)
    leak = jnp.asarray(f_ec, eta.dtype) * binary_entropy(jnp.clip(e_mu, 0.0, 0.5))
    # GLLP per pulse R >= q {-Q_mu f H2(E_mu) + Q_1 [1 - H2(e_1)]}, over q Q_mu (Lo, Ma, Chen, PRL 94, 230504, Eq. 1)
    return share * (1.0 - binary_entropy(e1)) - leak


def _key_block(
    n_sifted: ArrayLike, test_fraction: ArrayLike, eta: ArrayLike, mu: ArrayLike, y0: ArrayLike,
    e_detector: ArrayLike, f_ec: ArrayLike,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Checked arguments of a key block: (key bits, test bits, eta) as arrays of one float dtype."""
    check_range("n_sifted", n_sifted, 0.0, float("inf"))
    check_range("test_fraction", test_fraction, 0.0, 1.0)
    check_range("eta", eta, 0.0, 1.0)
    check_range("mu", mu, 0.0, float("inf"), low_open=True)
    check_range("y0", y0, 0.0, 1.0)
    check_range("e_detector", e_detector, 0.0, 0.5)
    check_range("f_ec", f_ec, 1.0, float("inf"))
    n, eta = as_float(n_sifted), as_float(eta)
    dt = jnp.result_type(n, eta)
    n, eta, test = n.astype(dt), eta.astype(dt), jnp.asarray(test_fraction, dt)
    return (1.0 - test) * n, test * n, eta


def _sampling_deviation(a: jax.Array, b: jax.Array, c: jax.Array, d: jax.Array) -> jax.Array:
    """Lim et al.'s gamma(a, b, c, d): 1/2 (no bound) without samples, 0 in the limit b -> 0."""
    sampled = (c > 0.0) & (d > 0.0)
    ok = sampled & (b > 0.0)
    b, c, d = jnp.where(ok, b, 0.25), jnp.where(ok, c, 1.0), jnp.where(ok, d, 1.0)
    inv = 1.0 / c + 1.0 / d  # (c + d) / (c d), without overflow
    log_term = jnp.log2(inv) - jnp.log2((1.0 - b) * b) + 2.0 * jnp.log2(21.0 / a)
    # gamma = sqrt((c+d)(1-b)b/(c d ln2) log2((c+d)/(c d (1-b) b) 21^2/a^2)) (Lim et al., PRA 89, 022307, 2014, Eq. 2)
    gamma = jnp.sqrt(inv * (1.0 - b) * b / jnp.log(2.0) * jnp.maximum(log_term, 0.0))
    return jnp.where(ok, gamma, jnp.where(sampled, 0.0, 0.5))
