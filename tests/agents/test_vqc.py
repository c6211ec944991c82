"""The variational-circuit actor-critic: PennyLane and fused backends agree, differentiate and batch."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from qin_env.agents.networks import param_count
from qin_env.agents.vqc import circuit_expectations, eager_qnode, encoding_angles, vqc_actor_critic

# PennyLane's default.qubit asks for complex128 states; without x64 JAX truncates them to complex64 and warns.
# PennyLane 0.45 still calls jax.core.is_concrete, deprecated in jax 0.10.
pytestmark = [pytest.mark.filterwarnings("ignore:Explicitly requested dtype complex128:UserWarning"),
              pytest.mark.filterwarnings("ignore:jax.core.is_concrete is deprecated:DeprecationWarning")]

OBS_DIM, N_LOGITS = 6, 5
AGREE = 1e-5


def _random_params(ac, rng: np.random.Generator, *leading: int, dtype: type = np.float32):
    """Parameters shaped like `ac.init`'s, every entry standard normal, so no gradient is trivially zero or one."""
    # Drawn with numpy: compiling JAX's random-number kernels would cost more than these tests compute.
    shapes = jax.eval_shape(ac.init, jax.random.PRNGKey(0))
    return jax.tree.map(lambda s: rng.standard_normal((*leading, *s.shape)).astype(dtype), shapes)


def _batch_loss(apply, weights: jax.Array):
    """A scalar of logits and values over a batch that every parameter influences nonlinearly."""

    def loss(params, obs):
        logits, values = jax.vmap(apply, in_axes=(None, 0))(params, obs)
        return jnp.sum(jnp.tanh(logits) * weights) + jnp.sum(jnp.sin(values))

    return loss


def test_config_kind_and_default_parameter_count() -> None:
    ac = vqc_actor_critic(32, 54)
    assert ac.kind == "vqc"
    assert ac.config == {"obs_dim": 32, "n_logits": 54, "n_qubits": 4, "n_layers": 3, "backend": "fused"}
    # circuit 3*4*32 + 3*4 + 3*4*2, actor 4*54 + 54 + 54, critic 4 + 1
    assert param_count(ac.init(jax.random.PRNGKey(0))) == 420 + 324 + 5


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="backend"):
        vqc_actor_critic(4, 2, backend="qiskit")


def test_eager_jitted_and_vmapped_qnode_agree() -> None:
    qnode = eager_qnode(4, 3)
    rng = np.random.default_rng(0)
    rot = jnp.asarray(rng.uniform(0.0, 2 * np.pi, (3, 4, 2)), jnp.float32)
    angles = jnp.asarray(rng.standard_normal((5, 3, 4)), jnp.float32)
    eager = np.stack([np.stack(qnode(rot, a)) for a in angles])
    jitted_qnode = jax.jit(qnode)
    jitted = np.stack([np.stack(jitted_qnode(rot, a)) for a in angles])
    vmapped = np.stack(jax.jit(jax.vmap(qnode, in_axes=(None, 0)))(rot, angles), axis=-1)
    np.testing.assert_allclose(jitted, eager, atol=AGREE)
    np.testing.assert_allclose(vmapped, eager, atol=AGREE)
    assert np.all(np.abs(eager) <= 1.0 + 1e-6)


def test_qnode_is_built_once_per_shape() -> None:
    assert eager_qnode(3, 2) is eager_qnode(3, 2)
    assert eager_qnode(3, 2) is not eager_qnode(3, 1)


@pytest.mark.parametrize("n_qubits", [2, 4])
@pytest.mark.parametrize("n_layers", [1, 3])
def test_fused_backends_agree_with_default_qubit_in_outputs_and_gradients(n_qubits: int, n_layers: int) -> None:
    n_draws, batch = 3, 8  # several random parameter sets, each on a batch of random observations
    backends = {b: vqc_actor_critic(OBS_DIM, N_LOGITS, n_qubits=n_qubits, n_layers=n_layers, backend=b)
                for b in ("fused", "pennylane", *(("pennylane-fused",) if (n_qubits, n_layers) == (4, 3) else ()))}
    rng = np.random.default_rng(10 * n_qubits + n_layers)
    params = _random_params(backends["fused"], rng, n_draws)
    obs = rng.standard_normal((n_draws, batch, OBS_DIM)).astype(np.float32)
    loss_weights = rng.standard_normal((batch, N_LOGITS)).astype(np.float32)
    results = {}
    for name, ac in backends.items():
        def outputs_and_grad(p, o, ac=ac):
            return jax.vmap(ac.apply, in_axes=(None, 0))(p, o), jax.grad(_batch_loss(ac.apply, loss_weights))(p, o)

        results[name] = jax.jit(jax.vmap(outputs_and_grad))(params, obs)
    penny_out, penny_grad = results["pennylane"]
    for backend in set(backends) - {"pennylane"}:
        fused_out, fused_grad = results[backend]
        for got, want in zip(fused_out, penny_out, strict=True):  # logits, then values
            np.testing.assert_allclose(got, want, atol=AGREE, err_msg=backend)
        for (path, got), want in zip(jax.tree_util.tree_leaves_with_path(fused_grad), jax.tree.leaves(penny_grad),
                                     strict=True):
            name = f"{backend}{jax.tree_util.keystr(path)}"
            np.testing.assert_allclose(got, want, atol=AGREE, rtol=AGREE, err_msg=name)
            assert np.all(np.any(np.reshape(got, (n_draws, -1)) != 0.0, axis=1)), f"gradient of {name} is zero"


@pytest.mark.parametrize("backend", ["fused", "pennylane"])
def test_gradients_match_central_finite_differences_in_float64(backend: str) -> None:
    # Runs with x64 switched on, so PennyLane and the fused statevector both compute in complex128;
    # the reverse-mode gradient is checked along random directions through all parameters at once.
    eps, n_directions = 1e-6, 6
    ac = vqc_actor_critic(OBS_DIM, N_LOGITS, n_qubits=3, n_layers=2, backend=backend)
    rng = np.random.default_rng(0)
    params = _random_params(ac, rng, dtype=np.float64)
    directions = _random_params(ac, rng, n_directions, dtype=np.float64)
    obs = rng.standard_normal((4, OBS_DIM))
    loss = _batch_loss(ac.apply, rng.standard_normal((4, N_LOGITS)))

    def analytic_and_numeric(direction):
        grad = jax.grad(loss)(params, obs)
        analytic = sum(jnp.vdot(g, d) for g, d in zip(jax.tree.leaves(grad), jax.tree.leaves(direction), strict=True))
        up, down = (jax.tree.map(lambda p, d, s=s: p + s * eps * d, params, direction) for s in (1.0, -1.0))
        return analytic, (loss(up, obs) - loss(down, obs)) / (2 * eps)

    with jax.enable_x64(True):
        analytic, numeric = jax.jit(jax.vmap(analytic_and_numeric))(directions)
    assert analytic.dtype == numeric.dtype == jnp.float64
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("backend", ["fused", "pennylane"])
def test_stacked_agent_parameters_run_in_one_vmap(backend: str) -> None:
    ac = vqc_actor_critic(OBS_DIM, N_LOGITS, n_qubits=3, n_layers=2, backend=backend)
    n_agents = 4
    stacked = jax.vmap(ac.init)(jax.random.split(jax.random.PRNGKey(0), n_agents))
    obs = np.random.default_rng(1).standard_normal((n_agents, OBS_DIM)).astype(np.float32)
    logits, values = jax.jit(jax.vmap(ac.apply))(stacked, obs)
    apply = jax.jit(ac.apply)
    assert logits.shape == (n_agents, N_LOGITS) and values.shape == (n_agents,)
    for i in range(n_agents):
        own_logits, own_value = apply(jax.tree.map(lambda x, i=i: x[i], stacked), obs[i])
        np.testing.assert_allclose(logits[i], own_logits, atol=AGREE)
        np.testing.assert_allclose(values[i], own_value, atol=AGREE)
    assert not np.allclose(logits[0], logits[1])  # the agents really are different


def test_circuit_expectations_are_pauli_z_means_of_the_encoding() -> None:
    ac = vqc_actor_critic(OBS_DIM, N_LOGITS, n_qubits=2, n_layers=1)
    params = ac.init(jax.random.PRNGKey(0))
    params["circuit"]["rot"] = jnp.zeros_like(params["circuit"]["rot"])
    obs = np.random.default_rng(1).standard_normal(OBS_DIM).astype(np.float32)
    angles = encoding_angles(params["circuit"], obs)
    z = circuit_expectations(params["circuit"]["rot"], angles)
    # RX(a) RX(b) |00> gives independent bits x0, x1 with <Z> = cos a, cos b; CNOT(0,1) then CNOT(1,0)
    # map (x0, x1) to (x1, x0 ^ x1), so <Z0> = cos b and <Z1> = cos a cos b.
    cos_a, cos_b = jnp.cos(angles[0, 0]), jnp.cos(angles[0, 1])
    np.testing.assert_allclose(z, [cos_b, cos_a * cos_b], atol=AGREE)


def test_adam_fits_the_value_head_to_a_smooth_target() -> None:
    ac = vqc_actor_critic(2, 3, n_qubits=2, n_layers=2)
    xs = np.random.default_rng(0).uniform(-1.0, 1.0, (64, 2)).astype(np.float32)
    targets = 0.5 * np.sin(np.pi * xs[:, 0]) + 0.3 * xs[:, 1]

    def loss(params):
        values = jax.vmap(ac.apply, in_axes=(None, 0))(params, xs)[1]
        return jnp.mean((values - targets) ** 2)

    optimiser = optax.adam(0.05)

    @jax.jit
    def train(params):
        def step(carry, _):
            params, opt_state = carry
            value, grad = jax.value_and_grad(loss)(params)
            updates, opt_state = optimiser.update(grad, opt_state)
            return (optax.apply_updates(params, updates), opt_state), value

        return jax.lax.scan(step, (params, optimiser.init(params)), length=300)

    (params, _), losses = train(ac.init(jax.random.PRNGKey(1)))
    start, end = float(losses[0]), float(jax.jit(loss)(params))
    assert end < start / 100, (start, end)
    assert end < 0.01 * np.var(targets), end  # explains over 99 % of the target's variance


@pytest.mark.parametrize(("overrides", "qubits"), [
    ({}, 4),  # metro_qkd: the operator computes on 4 of a node's 8 qubits, the rest is memory
    ({"hardware.qubit_budget": 3}, 3),  # the budget caps the share
    ({"actions.model_qubits": [2, 6, 8]}, 6),
    ({"actions.model_qubits": [5]}, 5),
])
def test_circuit_width_is_the_scenarios_computation_share(overrides: dict, qubits: int) -> None:
    from qin_env import load_params
    from qin_env.agents.ppo import PPOConfig, resolved_n_qubits
    from qin_env.agents.vqc import circuit_qubits

    assert circuit_qubits(load_params("metro_qkd", overrides)) == qubits
    config = PPOConfig(network="vqc", overrides=tuple(overrides.items()))
    assert resolved_n_qubits(config) == qubits
    assert resolved_n_qubits(PPOConfig(network="vqc", n_qubits=2, overrides=tuple(overrides.items()))) == 2


def test_vqc_checkpoint_template_builds_under_eval_shape() -> None:
    # load_trained builds its template with jax.eval_shape, where the scenario's Params are traced.
    import functools

    from qin_env.agents.ppo import PPOConfig, init_params

    shapes = jax.eval_shape(functools.partial(init_params, PPOConfig(network="vqc")), jax.random.key(0))
    assert shapes["net"]["circuit"]["rot"].shape[-2:] == (4, 2)
