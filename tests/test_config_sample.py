"""The shipped configuration files stay in sync with ``myservice/conf.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

from myservice import conf

ETC = Path(__file__).resolve().parent.parent / "etc"


def test_shipped_sample_equals_generated_sample():
    shipped = (ETC / "myservice.conf.sample").read_text(encoding="utf-8")
    assert shipped == conf.generate_sample(), (
        "etc/myservice.conf.sample is stale; regenerate it with "
        "'python -m myservice.conf > etc/myservice.conf.sample'"
    )


def test_sample_mentions_every_option():
    shipped = (ETC / "myservice.conf.sample").read_text(encoding="utf-8")
    for section, opts in conf.OPTIONS.items():
        assert f"[{section}]" in shipped
        for opt in opts:
            assert f"#{opt.name} =" in shipped


def test_shipped_config_loads_with_state_next_to_it():
    cfg = conf.load(ETC / "myservice.conf")
    assert cfg.storage.driver == "sqlite"
    assert cfg.state_path == ETC / "state"
    assert Path(cfg.auth.token_file).parent == ETC / "state"


def test_sample_with_every_option_uncommented_loads(tmp_path):
    # the sample's values are valid values: uncommenting them all must still load
    lines = []
    for line in conf.generate_sample().splitlines():
        if line.startswith("#") and " = " in line and not line.startswith("# "):
            line = line[1:]
        lines.append(line)
    path = tmp_path / "myservice.conf"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = conf.load(path)
    assert cfg.state_path == tmp_path / "state"


def test_a_mistyped_boolean_names_the_value_then_the_closest(tmp_path):
    path = tmp_path / "myservice.conf"
    path.write_text("[storage]\nauto_upgrade = ture\n")
    with pytest.raises(conf.ConfigError) as info:
        conf.load(path)
    assert str(info.value) == (
        f"{path.resolve()}: [storage] auto_upgrade: expected a boolean (true/false, yes/no, "
        "on/off, 1/0), got 'ture'; did you mean 'true'?"
    )
