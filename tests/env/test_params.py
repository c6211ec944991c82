"""Scenario loading: every scenario loads, and bad input says what is wrong and what is allowed."""

import pytest

import qin_env
from qin_env.params import load_config, load_params
from qin_env.schema import SCHEMA

REQUIRED = {"metro_qkd", "device_surge", "eavesdropper_burst", "repeater_chain", "satellite_leo",
            "teacher_student", "many_to_one_fusion", "adversarial_eve", "large_scale"}


def test_every_required_scenario_is_listed_with_a_description():
    listed = qin_env.list_scenarios()
    assert set(listed) >= REQUIRED
    assert all(listed[name].strip() for name in REQUIRED)


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_every_scenario_loads(name):
    params = load_params(name)
    assert params.n_pus >= params.n_aggregators >= 1


def test_large_scale_has_at_least_a_thousand_nodes():
    params = load_params("large_scale")
    assert 1 + params.n_aggregators + params.n_pus >= 1000


def test_unknown_scenario_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"valid scenarios: .*metro_qkd"):
        load_params("metro_qdk")


def test_unknown_override_names_itself_and_the_nearest_keys():
    with pytest.raises(ValueError, match=r"'eve.intercept_fractoin'.*nearest valid keys: eve.intercept_fraction"):
        load_params("metro_qkd", {"eve.intercept_fractoin": 0.5})


def test_out_of_range_value_names_field_value_and_range():
    with pytest.raises(ValueError, match=r"eve.intercept_fraction=1.5 .*\[0, 1\]"):
        load_params("metro_qkd", {"eve.intercept_fraction": 1.5})


def test_wrong_type_is_refused():
    with pytest.raises(ValueError, match=r"topology.n_aggregators.*integer"):
        load_params("metro_qkd", {"topology.n_aggregators": 2.5})
    with pytest.raises(ValueError, match=r"eve.mode.*allowed values are none, stationary"):
        load_params("metro_qkd", {"eve.mode": "sometimes"})


def test_index_lists_must_name_existing_aggregators():
    with pytest.raises(ValueError, match=r"eve.links lists aggregator 7, allowed range \[0, 2\]"):
        load_params("metro_qkd", {"eve.links": [7]})


def test_malformed_toml_names_the_file_and_line(tmp_path):
    bad = tmp_path / "broken.toml"
    bad.write_text('[scenario]\ndescription = "x"\n[eve]\nmode = = "none"\n')
    with pytest.raises(ValueError, match=r"broken.toml.*line 4"):
        load_params(str(bad))


def test_unknown_key_in_a_file_names_the_file(tmp_path):
    bad = tmp_path / "typo.toml"
    bad.write_text("[traffic]\ndevice_rate = 2.0\n")
    with pytest.raises(ValueError, match=r"traffic.device_rate.*typo.toml.*traffic.device_rate_hz"):
        load_params(str(bad))


def test_overrides_reach_the_params():
    params = load_params("metro_qkd", {"eve.intercept_fraction": 0.9, "topology.n_aggregators": 5,
                                       "topology.classical_aggregators": [], "topology.quantum_aggregators": []})
    assert float(params.eve["intercept_fraction"]) == pytest.approx(0.9)
    assert params.n_aggregators == 5


def test_config_defaults_cover_the_whole_schema():
    config = load_config("metro_qkd")
    assert set(SCHEMA) <= set(config)


def test_every_schema_field_documents_its_meaning():
    assert all(field.doc for key, field in SCHEMA.items() if key != "scenario.description")


@pytest.mark.parametrize("value", [10**400, -(10**5000), [1, 10**5000]], ids=["400-digits", "5000-digits", "in-a-list"])
def test_an_integer_of_any_size_out_of_range_is_refused_naming_the_key_and_range(value):
    key = "episode.max_steps" if not isinstance(value, list) else "actions.episodes"
    with pytest.raises(ValueError, match=rf"{key}=<an? .*(integer|list).* outside the allowed range \["):
        load_params("metro_qkd", {key: value})


def test_a_scenario_file_nested_too_deep_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "deep.toml"
    path.write_text("[scenario]\nname = 'deep'\n[episode]\nmax_steps = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(ValueError, match=rf"malformed scenario file {path}: .*nested deeper"):
        load_params(str(path))
