"""Pure JAX models of quantum and classical links; no environment state.

Every function works on scalars and broadcast arrays, under `jax.jit`, `jax.vmap` and
`jax.grad`, in float32 and float64; eager calls with out-of-range arguments raise ValueError.
"""

from qin_env.physics.classical import queueing_delay_s, served_bits, transmission_delay_s
from qin_env.physics.entanglement import (
    age_averaged_fidelity,
    bbpssw_purify,
    chsh_value,
    decohered_fidelity,
    intercept_resend_pair_fidelity,
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
    heralded_pair_rate_from_transmittance,
)
from qin_env.physics.free_space import (
    free_space_transmittance,
    leo_elevation_rad,
    leo_orbital_period_s,
    leo_pass_duration_s,
    leo_slant_range_km,
    leo_visible_fraction,
)
from qin_env.physics.qkd import (
    SHOR_PRESKILL_QBER_THRESHOLD,
    asymptotic_key_length,
    bb84_gain,
    bb84_qber,
    binary_entropy,
    decoy_bb84_key_rate,
    decoy_bb84_key_rate_from_transmittance,
    decoy_single_photon,
    entanglement_qber,
    eve_detection_probability,
    finite_key_length,
    finite_key_length_from_counts,
    intercept_resend_qber,
    plob_bound,
    shor_preskill_rate,
)
from qin_env.physics.repeater import repeater_chain_rate

__all__ = [
    "SHOR_PRESKILL_QBER_THRESHOLD",
    "SPEED_OF_LIGHT_IN_FIBER_KM_PER_S",
    "age_averaged_fidelity",
    "asymptotic_key_length",
    "bb84_gain",
    "bb84_qber",
    "bbpssw_purify",
    "binary_entropy",
    "chsh_value",
    "decohered_fidelity",
    "decoy_bb84_key_rate",
    "decoy_bb84_key_rate_from_transmittance",
    "decoy_single_photon",
    "detected_count_rate",
    "entanglement_qber",
    "eve_detection_probability",
    "fiber_delay_s",
    "fiber_transmittance",
    "finite_key_length",
    "finite_key_length_from_counts",
    "free_space_transmittance",
    "heralded_pair_rate",
    "heralded_pair_rate_from_transmittance",
    "intercept_resend_pair_fidelity",
    "intercept_resend_qber",
    "leo_elevation_rad",
    "leo_orbital_period_s",
    "leo_pass_duration_s",
    "leo_slant_range_km",
    "leo_visible_fraction",
    "plob_bound",
    "queueing_delay_s",
    "repeater_chain_rate",
    "served_bits",
    "shor_preskill_rate",
    "superdense_capacity",
    "teleportation_fidelity",
    "transmission_delay_s",
    "werner_swap_fidelity",
]
