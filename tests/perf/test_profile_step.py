"""`python -m qin_env.bench.profile_step`: kernels sorted into random-number generation and model arithmetic."""

import json

import jax
import jax.numpy as jnp
import pytest

from qin_env.bench import profile_step


def _compiled_hlo(fn, *args) -> str:
    return jax.jit(fn).lower(*args).compile().as_text()


def test_a_normal_draw_is_random_and_plain_arithmetic_is_model():
    key = jax.random.PRNGKey(0)
    random_kinds = set(profile_step.kernel_kinds(_compiled_hlo(lambda k: jax.random.normal(k, (64,)), key)).values())
    model_kinds = set(profile_step.kernel_kinds(_compiled_hlo(lambda x: jnp.exp(x) * 2.0 + 1.0, jnp.ones(64))).values())
    assert profile_step.RANDOM in random_kinds
    assert model_kinds == {profile_step.MODEL}


def test_profile_of_a_small_batch_splits_all_kernel_time(tmp_path, capsys):
    out = tmp_path / "profile.json"
    result = profile_step.main(["--batch", "16", "--steps", "2", "--json", str(out)])
    assert sum(result["share"].values()) == pytest.approx(1.0)
    assert result["share"][profile_step.RANDOM] > 0 and result["share"][profile_step.MODEL] > 0
    assert json.loads(out.read_text())["batch"] == 16
    assert "random numbers" in capsys.readouterr().out


def test_batch_below_one_is_refused_naming_the_flag(capsys):
    with pytest.raises(SystemExit):
        profile_step.main(["--batch", "0"])
    assert "--batch=0" in capsys.readouterr().err
