import argparse

import pytest

from pipeline import InputError, config


def parse(argv, monkeypatch=None):
    parser = argparse.ArgumentParser()
    config.add_arguments(parser)
    return config.from_args(parser.parse_args(argv))


def test_defaults_flags_and_environment(monkeypatch):
    assert parse([]).port == 7860 and parse([]).host == "127.0.0.1"
    monkeypatch.setenv("CCTV_PORT", "9000")
    monkeypatch.setenv("CCTV_READ_ONLY_WATCHLIST", "yes")
    settings = parse([])
    assert settings.port == 9000 and settings.read_only_watchlist is True
    assert parse(["--port", "9100"]).port == 9100  # the flag wins


def test_bad_environment_value_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("CCTV_PORT", "seventy")
    with pytest.raises(InputError, match="CCTV_PORT"):
        parse([])


@pytest.mark.parametrize("argv, message", [
    (["--port", "0"], "port"), (["--detect-threshold", "1.5"], "threshold"), (["--device", "tpu"], "device"),
    (["--auth", "alice"], "user:password"), (["--stages", "lowlight"], "NAME=on"),
])
def test_invalid_settings(argv, message):
    with pytest.raises(InputError, match=message):
        parse(argv)


def test_credentials_from_flag_and_file(tmp_path):
    auth_file = tmp_path / "users.txt"
    auth_file.write_text("# admins\ncarol:pw:with:colons\n\n")
    settings = parse(["--auth", "alice:a1,bob:b2", "--auth-file", str(auth_file), "--admins", "alice, carol"])
    assert settings.credentials() == [("alice", "a1"), ("bob", "b2"), ("carol", "pw:with:colons")]
    assert settings.admin_names() == {"alice", "carol"}


def test_stage_toggles():
    assert parse(["--stages", "lowlight=auto,deblur=off,superres=on"]).stage_toggles() == {
        "lowlight": "auto", "deblur": False, "superres": True}


def test_table_lists_every_option():
    table = config.settings_table()
    for option in config.OPTIONS.values():
        assert option.flag in table and option.env in table
