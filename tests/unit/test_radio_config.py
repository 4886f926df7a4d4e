"""DEVICE_DIR/radio.toml (tools/radio_config.py): the Pi's pod and group radios."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device.config import ConfigError
from tools.radio_config import RadioConfig, load_radio_config, parse_radio_config


def test_absent_means_no_radios(tmp_path):
    assert load_radio_config(str(tmp_path)) == RadioConfig()


def test_a_full_config_is_read(tmp_path):
    (tmp_path / "radio.toml").write_text('pod_listen = "0.0.0.0:4770"\ngroup_listen = "0.0.0.0:4771"\n'
                                         'group_peers = ["192.168.4.255:4771", "10.0.0.2:4771"]\n')
    assert load_radio_config(str(tmp_path)) == RadioConfig("0.0.0.0:4770", "0.0.0.0:4771",
                                                           ("192.168.4.255:4771", "10.0.0.2:4771"))


@pytest.mark.parametrize("text, key", [
    ('pod_listen = 4770', "pod_listen"), ('pod_listen = "host"', "pod_listen"),
    ('group_peers = ["1.2.3.4:1"]', "group_listen"), ('group_listen = "1.2.3.4:1"\ngroup_peers = "a:1"', "group_peers"),
    ('group_listen = "1.2.3.4:1"\ngroup_peers = [""]', "group_peers"), ('podlisten = "h:1"', "podlisten"),
    ('pod_listen = "1.2.3.4:99999"', "pod_listen"), ('pod_listen = "camera.local:4770"', "pod_listen"),
])
def test_a_wrong_config_is_one_line_naming_the_key(text, key):
    with pytest.raises(ConfigError) as exc:
        parse_radio_config(text, "radio.toml")
    assert key in str(exc.value) and "\n" not in str(exc.value)


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_any_text_is_read_or_refused_clearly(text):
    try:
        config = parse_radio_config(text, "radio.toml")
    except ConfigError as exc:
        assert str(exc).startswith("radio.toml") and "\n" not in str(exc)
        return
    for address in (config.pod_listen, config.group_listen, *config.group_peers):
        assert address == "" or address.rpartition(":")[2].isdigit()
