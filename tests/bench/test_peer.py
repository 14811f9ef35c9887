"""The pure parts of `make bench-peer`: the peer's configuration and the comparison it prints."""

import tomllib

from bench import peer


def test_config_binds_loopback_records_at_once_and_sends_no_analytics():
    keys = {"redis": "r" * 32, "encryption": "e" * 32, "client": "c" * 32, "root": "Peer-x1!"}
    config = tomllib.loads(peer.fides_config(5432, 6379, 8080, keys))
    assert config["database"]["port"] == "5432" and config["database"]["server"] == "127.0.0.1"
    assert config["redis"] == {"host": "127.0.0.1", "port": 6379, "password": "r" * 32, "db_index": 0,
                               "enabled": True}
    assert len(config["security"]["app_encryption_key"]) == 32
    assert config["user"]["analytics_opt_out"] is True
    assert config["execution"]["subject_identity_verification_required"] is False
    assert config["execution"]["disable_consent_identity_verification"] is True


def _side(record: float, revoke: float) -> dict:
    return {op: {"per_s": v, "p50_s": 0.01, "p99_s": 0.02} for op, v in (("record", record), ("revoke", revoke))}


def test_ratio_is_ours_over_the_peer_and_the_table_says_which_target_is_met():
    ours, fides = _side(1000.0, 400.0), _side(40.0, 80.0)
    assert peer.ratios(ours, fides) == {"record": 25.0, "revoke": 5.0}
    rows = peer.table(ours, fides).splitlines()
    assert rows[1].startswith("record") and rows[1].endswith("yes") and "25.0x" in rows[1]
    assert rows[2].startswith("revoke") and rows[2].endswith("no") and "5.0x" in rows[2]


def test_a_peer_that_recorded_nothing_has_no_ratio():
    assert peer.ratios(_side(10.0, 10.0), _side(0.0, 5.0))["record"] is None
    assert peer.table(_side(10.0, 10.0), _side(0.0, 5.0)).splitlines()[1].endswith("-")
