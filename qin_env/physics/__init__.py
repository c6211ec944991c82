"""Pure JAX models of quantum and classical links; no environment state.

Every function works on scalars and broadcast arrays, under `jax.jit`, `jax.vmap` and
`jax.grad`, in float32 and float64; eager calls with out-of-range arguments raise ValueError.
"""

from qin_env.physics.classical import queueing_delay_s, served_bits, transmission_delay_s
from qin_env.physics.entanglement import (
    bbpssw_purify,
    chsh_value,
    decohered_fidelity,
    superdense_capacity,
    teleportation_fidelity,
    werner_swap_fidelity,
)
from qin_env.physics.fiber import (
    SPEED_OF_LIGHT_IN_FIBER_KM_PER_S,
    detected_count_rate,
    fiber_delay_s,
    fiber_transmittance,
    heralded_pair_rate,
)
from qin_env.physics.free_space import (
    free_space_transmittance,
    leo_elevation_rad,
    leo_orbital_period_s,
    leo_slant_range_km,
)
from qin_env.physics.qkd import (
    SHOR_PRESKILL_QBER_THRESHOLD,
    bb84_gain,
    binary_entropy,
    decoy_bb84_key_rate,
    decoy_bb84_key_rate_from_transmittance,
    entanglement_qber,
    eve_detection_probability,
    intercept_resend_qber,
    plob_bound,
    shor_preskill_rate,
)

__all__ = [
    "SHOR_PRESKILL_QBER_THRESHOLD",
    "SPEED_OF_LIGHT_IN_FIBER_KM_PER_S",
    "bb84_gain",
    "bbpssw_purify",
    "binary_entropy",
    "chsh_value",
    "decohered_fidelity",
    "decoy_bb84_key_rate",
    "decoy_bb84_key_rate_from_transmittance",
    "detected_count_rate",
    "entanglement_qber",
    "eve_detection_probability",
    "fiber_delay_s",
    "fiber_transmittance",
    "free_space_transmittance",
    "heralded_pair_rate",
    "intercept_resend_qber",
    "leo_elevation_rad",
    "leo_orbital_period_s",
    "leo_slant_range_km",
    "plob_bound",
    "queueing_delay_s",
    "served_bits",
    "shor_preskill_rate",
    "superdense_capacity",
    "teleportation_fidelity",
    "transmission_delay_s",
    "werner_swap_fidelity",
]
