"""Every scenario parameter: dotted name, default, allowed range and unit.

Scenario TOML files and `load_params(..., overrides=...)` may set only the keys listed here; the
table is the single place where a figure of the model gets its name, unit and range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

INF = math.inf
EVE_MODES = ("none", "stationary", "bursty", "targeted", "agent")
LEARNING_MODELS = ("surrogate", "federated")  # qin_env.learning; qin_env.federated


@dataclass(frozen=True)
class Field:
    """One scenario parameter: its default, kind and allowed range, and what it means."""

    default: Any
    kind: str  # "float", "int", "bool", "str", "float_list", "int_list"
    low: float = -INF
    high: float = INF
    doc: str = ""
    choices: tuple[str, ...] = ()
    min_len: int = 0


F = Field
SCHEMA: dict[str, Field] = {
    # [scenario]
    "scenario.description": F("", "str", doc="one line shown by list_scenarios()"),
    "scenario.version": F(1, "int", 0, 1_000, "environment version the scenario is written for (must be this one)"),
    # [episode]
    "episode.dt_s": F(1.0, "float", 1e-3, 3600.0, "slot length, seconds"),
    "episode.max_steps": F(200, "int", 1, 100_000, "episode length in slots (truncation)"),
    # [topology]
    "topology.n_aggregators": F(3, "int", 1, 256, "aggregators, one long-haul link each to the orchestrator"),
    "topology.pus_per_aggregator": F(3, "int", 1, 10_000, "processing units (learners) under each aggregator"),
    "topology.link_length_min_km": F(10.0, "float", 0.0, 5000.0, "shortest aggregator-orchestrator fiber, km"),
    "topology.link_length_max_km": F(50.0, "float", 0.0, 5000.0, "longest aggregator-orchestrator fiber, km"),
    "topology.pu_link_length_km": F(2.0, "float", 0.0, 500.0, "processing unit to aggregator fiber, km"),
    "topology.quantum_aggregators": F([], "int_list", 0, 255, "aggregators whose payload is fully quantum"),
    "topology.classical_aggregators": F([], "int_list", 0, 255, "legacy classical aggregators (no qubits)"),
    "topology.repeater_links": F([], "int_list", 0, 255, "links that need entanglement swapping"),
    "topology.repeater_segments": F(4, "int", 1, 64, "elementary segments of a repeater link"),
    "topology.satellite_links": F([], "int_list", 0, 255, "links that are free-space LEO downlinks"),
    # [hardware]
    "hardware.alpha_db_per_km": F(0.2, "float", 0.0, 10.0, "fiber attenuation, dB/km"),
    "hardware.pulse_rate_hz": F(1.0e6, "float", 1.0, 1e11, "QKD source pulse rate, Hz"),
    "hardware.mu": F(0.5, "float", 1e-3, 5.0, "mean photon number of the signal state"),
    "hardware.eta_bob": F(0.2, "float", 0.0, 1.0, "receiver transmittance times detector efficiency"),
    "hardware.y0": F(1.0e-6, "float", 0.0, 0.1, "dark-count probability per pulse"),
    "hardware.e_detector": F(0.015, "float", 0.0, 0.5, "misalignment error probability"),
    "hardware.f_ec": F(1.16, "float", 1.0, 3.0, "error-correction inefficiency"),
    "hardware.pair_attempt_rate_hz": F(1.0e5, "float", 1.0, 1e10, "entanglement attempts per second"),
    "hardware.p_source": F(0.2, "float", 0.0, 1.0, "pair emission probability per attempt"),
    "hardware.eta_detector": F(0.8, "float", 0.0, 1.0, "heralding detector efficiency"),
    "hardware.source_fidelity": F(0.97, "float", 0.25, 1.0, "Werner fidelity of a fresh pair"),
    "hardware.memory_coherence_s": F(2.0, "float", 1e-6, 1e6, "depolarising memory time constant, seconds"),
    "hardware.memory_modes_per_qubit": F(50, "int", 1, 1_000_000, "pairs one multimode memory qubit holds"),
    "hardware.swap_success": F(0.5, "float", 0.0, 1.0, "Bell-measurement success probability at a repeater"),
    "hardware.bsm_success": F(0.5, "float", 0.0, 1.0, "success of the linear-optics Bell measurement heralding a pair"),
    "hardware.herald_modes": F(10, "int", 1, 1_000_000, "multiplexed modes per herald round trip (caps attempts)"),
    "hardware.pair_test_fraction": F(0.05, "float", 0.0, 1.0, "share of fresh pairs measured to estimate fidelity"),
    "hardware.qubit_budget": F(8, "int", 0, 1024, "qubits per quantum aggregator: memory plus computation"),
    "hardware.classical_bandwidth_bps": F(2.0e5, "float", 1.0, 1e12, "aggregator-orchestrator classical link, bit/s"),
    "hardware.pqc_overhead": F(0.3, "float", 0.0, 10.0, "post-quantum encryption size overhead, fraction"),
    "hardware.pqc_handshake_s": F(0.05, "float", 0.0, 10.0, "post-quantum key exchange time per round, s"),
    "hardware.satellite_altitude_km": F(500.0, "float", 100.0, 40_000.0, "LEO altitude, km"),
    "hardware.satellite_min_elevation_deg": F(15.0, "float", 0.0, 90.0, "lowest usable elevation, degrees"),
    # [qkd]
    "qkd.alarm_qber": F(0.06, "float", 0.0, 0.5, "estimated QBER above which a link raises an alarm"),
    "qkd.abort_qber": F(0.11, "float", 0.0, 0.5, "estimated QBER above which the slot's key is discarded"),
    "qkd.key_pool_max_bits": F(1.0e5, "float", 0.0, 1e12, "secret key a link can store, bits"),
    "qkd.initial_key_bits": F(2.0e4, "float", 0.0, 1e12, "secret key in each pool at reset, bits"),
    "qkd.block_bits": F(1.0e4, "float", 1.0, 1e12, "sifted bits collected before a block is distilled into key"),
    "qkd.eps_sec": F(1.0e-9, "float", 1e-30, 0.1, "secrecy parameter of the finite-key bound"),
    "qkd.eps_cor": F(1.0e-15, "float", 1e-30, 0.1, "correctness parameter of the finite-key bound"),
    # [traffic]
    "traffic.device_rate_hz": F(1.0, "float", 0.0, 1e6, "device arrivals per processing unit per second"),
    "traffic.device_bits": F(4.0e3, "float", 0.0, 1e12, "bits each arriving device sends"),
    "traffic.buffer_bits": F(4.0e5, "float", 1.0, 1e13, "aggregator buffer size, bits"),
    "traffic.surge_factor": F(1.0, "float", 1.0, 1000.0, "device rate multiplier during a surge"),
    "traffic.surge_start_prob": F(0.01, "float", 0.0, 1.0, "per-slot probability a surge starts under an aggregator"),
    "traffic.surge_stop_prob": F(0.05, "float", 0.0, 1.0, "per-slot probability a surge ends"),
    # [learning]
    "learning.model": F("surrogate", "str", doc="learner model", choices=LEARNING_MODELS),
    "learning.initial_quality": F(0.1, "float", 0.0, 1.0, "model quality of every learner at reset"),
    "learning.rate": F(0.2, "float", 0.0, 1.0, "fraction of the gap to the ceiling closed per round"),
    "learning.episodes_scale": F(4.0, "float", 1e-3, 1e6, "episodes for a 63 % saturated round"),
    "learning.capacity_qubits": F(4.0, "float", 1e-3, 1e6, "model width scale of the quality ceiling, qubits"),
    "learning.episode_time_s": F(0.02, "float", 0.0, 1e4, "compute time of one episode at 4 qubits, s"),
    "learning.data_need_bits": F(4.0e3, "float", 0.0, 1e12, "device data a learner needs per round, bits"),
    "learning.drift_per_step": F(0.004, "float", 0.0, 1.0, "relative quality lost per slot (data drift)"),
    "learning.poison_damage": F(0.1, "float", 0.0, 1.0, "backdoor share one accepted poisoned update plants"),
    "learning.poison_repair": F(0.2, "float", 0.0, 1.0, "share of a backdoor one clean delivered round removes"),
    "learning.aggregation_weight": F(0.5, "float", 0.0, 1.0, "weight of a delivered update in the global model"),
    "learning.payload_scale_bits": F(8.0e3, "float", 1.0, 1e12, "bits of an update carrying 63 % of its information"),
    "learning.payload_scale_qubits": F(200.0, "float", 1.0, 1e12, "quantum update size carrying 63 % of it"),
    "learning.distill_teacher": F(-1, "int", -1, 255, "aggregator whose model the others distil from (-1: none)"),
    # the federated model (qin_env.federated); the surrogate ignores these
    "learning.dirichlet_alpha": F(0.5, "float", 1e-3, 1e3, "Dirichlet concentration of the label split over units "
                                  "(small: non-IID)"),
    "learning.data_seed": F(0, "int", 0, 2**31 - 1, "seed of the train/test split and the shards"),
    "learning.ridge": F(1e-2, "float", 1e-6, 1e3, "ridge penalty of each unit's least-squares loss"),
    "learning.local_lr": F(0.1, "float", 1e-3, 1.0, "local gradient step, in units of 1/lambda_max of the shard's "
                           "Hessian"),
    "learning.local_steps": F(1, "int", 1, 10_000, "local gradient steps per training episode"),
    "learning.features_per_qubit": F(4, "int", 1, 32, "features a model sees per computation qubit (at most 32)"),
    "learning.bits_per_entry": F(48.0, "float", 1.0, 1e6, "bits one kept entry of a top-k update costs "
                                 "(value and index)"),
    "learning.poison_scale": F(3.0, "float", 0.0, 1e3, "a poisoned update is the true one sign-flipped and scaled "
                               "by this"),
    "learning.max_update_norm": F(10.0, "float", 1e-3, 1e6, "the orchestrator scales an arrived update longer "
                                  "than this (L2 norm of its weights) down to it"),
    "learning.distill_efficiency": F(0.9, "float", 0.0, 1.0, "surrogate: share of the teacher's quality a "
                                     "student can reach; federated: weight of the distillation loss"),
    # [actions]
    "actions.episodes": F([0, 1, 2, 4, 8], "int_list", 0, 10_000, "training episodes per round", min_len=2),
    "actions.model_qubits": F([2, 4, 6], "int_list", 0, 1024, "computation qubits of a learner's model", min_len=1),
    "actions.payload_bits": F([2.0e3, 8.0e3, 2.0e4], "float_list", 1.0, 1e12, "classical update size, bits",
                             min_len=1),
    "actions.payload_qubits": F([50, 200, 500], "int_list", 1, 10**9, "quantum update size, qubits", min_len=1),
    "actions.keygen_share": F([0.0, 0.25, 0.5, 0.75], "float_list", 0.0, 1.0,
                              "share of quantum-channel time for QKD (rest: entanglement)", min_len=1),
    "actions.test_fraction": F([0.02, 0.05, 0.1, 0.25], "float_list", 0.0, 1.0,
                               "share of sifted bits sacrificed to estimate the QBER", min_len=1),
    "actions.throttle": F([1.0, 0.9, 0.75], "float_list", 0.0, 1.0, "share of device traffic admitted",
                         min_len=1),
    # [eve]
    "eve.mode": F("none", "str", doc="eavesdropper model", choices=EVE_MODES),
    "eve.intercept_fraction": F(0.5, "float", 0.0, 1.0, "share of qubits Eve intercepts and resends on a tap"),
    "eve.links": F([], "int_list", 0, 255, "links a stationary Eve taps (empty: all)"),
    "eve.burst_start_prob": F(0.03, "float", 0.0, 1.0, "per-slot probability a bursty tap starts on a link"),
    "eve.burst_stop_prob": F(0.15, "float", 0.0, 1.0, "per-slot probability a bursty tap ends"),
    "eve.impersonation_prob": F(0.0, "float", 0.0, 1.0, "per-slot chance a tapped link gets a poisoned update"),
    "eve.flood_bits": F(0.0, "float", 0.0, 1e12, "flood traffic Eve injects per slot on a tapped link, bits"),
    # [reward]
    "reward.slo_s": F(0.5, "float", 1e-6, 1e6, "latency target of a learning round, s"),
    "reward.w_quality": F(2.0, "float", 0.0, 1e6, "weight of the model quality held each slot, over the initial one"),
    "reward.w_latency": F(0.3, "float", 0.0, 1e6, "weight of latency over the SLO (in SLO units)"),
    "reward.w_leak": F(0.5, "float", 0.0, 1e6, "weight of leaked bits (per largest payload)"),
    "reward.w_budget": F(0.2, "float", 0.0, 1e6, "weight of qubit-budget over-allocation (share of budget)"),
    "reward.w_drop": F(0.3, "float", 0.0, 1e6, "weight of dropped traffic (share of arrivals)"),
    "reward.w_eve_leak": F(1.0, "float", 0.0, 1e6, "eve: reward per largest payload leaked"),
    "reward.w_eve_detected": F(0.5, "float", 0.0, 1e6, "eve: penalty per detected tap"),
}


# Keys of an earlier environment version, with what replaced them (named in the loader's error)
REMOVED = {
    "hardware.satellite_pass_period_s": "since version 1 passes repeat every orbital period of the altitude",
    "traffic.surge_start_min_frac": "since version 1 surges start at random: traffic.surge_start_prob",
    "traffic.surge_start_max_frac": "since version 1 surges start at random: traffic.surge_start_prob",
    "traffic.surge_duration_frac": "since version 1 surges end at random: traffic.surge_stop_prob",
    "reward.w_progress": "since version 1 the quality held each slot is rewarded: reward.w_quality",
}


def sections() -> list[str]:
    """TOML tables that scenario files may contain."""
    return sorted({key.split(".")[0] for key in SCHEMA})
