from pathlib import Path

import pytest

from foundation.settings import Settings, SettingsError, env_documentation


def test_defaults_match_the_documented_ports():
    settings = Settings.from_env({})
    ports = (
        settings.gateway_port,
        settings.gateway_ops_port,
        settings.sandbox_port,
        settings.worker_web_port,
    )
    assert ports == (8080, 8082, 8081, 6066)
    assert settings.topic_partitions == 6
    assert settings.topic("sessions") == "parkstream.sessions.v1"


def test_topic_prefix_is_prepended_to_every_topic_and_the_app_id():
    settings = Settings.from_env({"PARKSTREAM_TOPIC_PREFIX": "staging."})
    assert settings.topic("commands") == "staging.parkstream.commands.v1"
    assert settings.app_id == "staging.parkstream-worker"


def test_vendor_tokens_are_parsed_into_names():
    settings = Settings.from_env({"PARKSTREAM_VENDOR_TOKENS": "hotspot=abc, banner=def"})
    assert settings.vendor_tokens == {"hotspot": "abc", "banner": "def"}


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("PARKSTREAM_GATEWAY_PORT", "99999", "PARKSTREAM_GATEWAY_PORT='99999': must be a TCP port"),
        ("PARKSTREAM_GATEWAY_PORT", "http", "PARKSTREAM_GATEWAY_PORT='http'"),
        (
            "PARKSTREAM_TOPIC_PARTITIONS",
            "0",
            "PARKSTREAM_TOPIC_PARTITIONS='0': must be a whole number",
        ),
        ("PARKSTREAM_CONTROLLER_URL", "controller:80", "PARKSTREAM_CONTROLLER_URL='controller:80'"),
        ("PARKSTREAM_KAFKA_BOOTSTRAP_SERVERS", "broker", "must be host:port"),
        ("PARKSTREAM_LOG_FORMAT", "xml", "must be one of text, json"),
        ("PARKSTREAM_CONTROLLER_TIMEOUT_SECONDS", "-1", "must be a number above 0"),
        ("PARKSTREAM_GATEWAY_READ_TIMEOUT_SECONDS", "0", "must be a number above 0"),
        ("PARKSTREAM_JOURNAL_RETENTION_DAYS", "0.5", "must be a number of days, at least 1"),
        ("PARKSTREAM_JOURNAL_RETENTION_DAYS", "nan", "must be a number of days, at least 1"),
        ("PARKSTREAM_TOPIC_REPLICATION_FACTOR", "0", "PARKSTREAM_TOPIC_REPLICATION_FACTOR='0'"),
        ("PARKSTREAM_RECONCILE_BY_PERMIT_NO", "maybe", "must be true or false"),
        # 2 in-sync replicas of 1 could never acknowledge a write.
        ("PARKSTREAM_TOPIC_REPLICATION_FACTOR", "1", "PARKSTREAM_TOPIC_MIN_INSYNC_REPLICAS=2"),
        # A healthy worker in an outage is quiet for up to timeout + the longest cooldown.
        (
            "PARKSTREAM_WORKER_STALL_SECONDS",
            "40",
            "PARKSTREAM_WORKER_STALL_SECONDS=40: must exceed",
        ),
        (
            "PARKSTREAM_DEFAULT_CURRENCY",
            "DOGECOIN-XL",
            "PARKSTREAM_DEFAULT_CURRENCY='DOGECOIN-XL': must be a currency code of 1 to 10",
        ),
        ("PARKSTREAM_DEFAULT_CURRENCY", "   ", "must be a currency code of 1 to 10"),
    ],
)
def test_a_bad_value_is_refused_with_one_line_naming_the_variable(variable, value, says):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({variable: value})
    message = str(caught.value)
    assert says in message
    assert "\n" not in message


@pytest.mark.parametrize(("raw", "value"), [("EUR", "EUR"), ("usd", "USD"), (" chf ", "CHF")])
def test_the_default_currency_is_any_code_the_controller_takes_in_upper_case(raw, value):
    # The contract's currency rule (schemas.controller: at most 10 characters), no list.
    assert Settings.from_env({"PARKSTREAM_DEFAULT_CURRENCY": raw}).default_currency == value


def test_the_gateway_ops_port_must_differ_from_the_vendor_port():
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(
            {"PARKSTREAM_GATEWAY_PORT": "9000", "PARKSTREAM_GATEWAY_OPS_PORT": "9000"}
        )
    message = str(caught.value)
    assert message.startswith("PARKSTREAM_GATEWAY_OPS_PORT=9000: must differ from")
    assert "\n" not in message


def test_a_malformed_secret_is_refused_without_echoing_it():
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"PARKSTREAM_VENDOR_TOKENS": "hotspot-secret-token"})
    assert "PARKSTREAM_VENDOR_TOKENS" in str(caught.value)
    assert "hotspot-secret-token" not in str(caught.value)


def test_repr_never_shows_tokens():
    settings = Settings.from_env(
        {
            "PARKSTREAM_VENDOR_TOKENS": "a=vendor-secret",
            "PARKSTREAM_CONTROLLER_API_TOKEN": "ctl-secret",
        }
    )
    assert "vendor-secret" not in repr(settings)
    assert "ctl-secret" not in repr(settings)


def test_every_setting_is_documented_in_the_readme():
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for variable, default in env_documentation():
        assert f"`{variable}`" in readme, variable
        if default:
            assert f"`{default}`" in readme, (variable, default)


def test_production_defaults_keep_three_replicas_and_two_in_sync():
    settings = Settings.from_env({})
    assert (settings.topic_replication_factor, settings.topic_min_insync_replicas) == (3, 2)
    assert settings.reconcile_by_permit_no is False  # never rely on permitNo being unique


def test_a_replication_factor_the_cluster_cannot_meet_is_one_line_naming_the_variable():
    from foundation.kafka import replication_problems

    settings = Settings.from_env({})
    error, _ = replication_problems(settings, brokers=1, replicas={})
    assert error is not None and error.startswith("PARKSTREAM_TOPIC_REPLICATION_FACTOR=3")
    assert "\n" not in error


def test_an_existing_topic_with_fewer_replicas_is_named_with_how_many_it_lacks():
    from foundation.kafka import replication_problems

    settings = Settings.from_env({})
    error, missing = replication_problems(
        settings, brokers=5, replicas={"parkstream.sessions.v1": 1, "parkstream.dlq.v1": 3}
    )
    assert error is None and missing == {"parkstream.sessions.v1": 2}


# --- vendor grants: the pass-through endpoints each vendor may call --------------------------


def test_vendor_grants_name_endpoints_per_vendor():
    settings = Settings.from_env(
        {
            "PARKSTREAM_VENDOR_TOKENS": "hotspot=a,banner=b",
            "PARKSTREAM_VENDOR_GRANTS": "hotspot=permits/stats + validate/plate, banner=",
        }
    )
    assert settings.grants == {"hotspot": ("permits/stats", "validate/plate"), "banner": ()}
    assert Settings.from_env({}).grants == {}


def test_vendor_grants_file_adds_vendors_one_a_line(tmp_path):
    grants = tmp_path / "vendor-grants"
    grants.write_text("# mounted beside the tokens file\nhonk=profiles/types/list\n\n")
    settings = Settings.from_env(
        {
            "PARKSTREAM_VENDOR_GRANTS": "hotspot=permits/stats",
            "PARKSTREAM_VENDOR_GRANTS_FILE": str(grants),
        }
    )
    assert settings.grants == {"hotspot": ("permits/stats",), "honk": ("profiles/types/list",)}
    assert [variable for variable, _ in settings.grant_sources()] == [
        "PARKSTREAM_VENDOR_GRANTS",
        "PARKSTREAM_VENDOR_GRANTS_FILE",
    ]


@pytest.mark.parametrize(
    ("environ", "says"),
    [
        ({"PARKSTREAM_VENDOR_GRANTS": "hotspot"}, "PARKSTREAM_VENDOR_GRANTS='hotspot': must be"),
        (
            {"PARKSTREAM_VENDOR_GRANTS": "hotspot=permits/stats,hotspot=validate/plate"},
            "names vendor 'hotspot' twice",
        ),
        (
            {"PARKSTREAM_VENDOR_GRANTS": "hotspot=permits/stats++validate/plate"},
            "PARKSTREAM_VENDOR_GRANTS=",
        ),
        ({"PARKSTREAM_VENDOR_GRANTS_FILE": "/nonexistent/grants"}, "cannot read the file"),
    ],
)
def test_a_malformed_grant_stops_the_start_with_one_line_naming_the_variable(environ, says):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(environ)
    message = str(caught.value)
    assert says in message
    assert message.startswith(next(iter(environ)))
    assert "\n" not in message


def test_a_vendor_granted_in_the_variable_and_the_file_stops_the_start(tmp_path):
    grants = tmp_path / "vendor-grants"
    grants.write_text("hotspot=validate/plate\n")
    with pytest.raises(
        SettingsError, match=r"^PARKSTREAM_VENDOR_GRANTS_FILE: names vendor 'hotspot'"
    ):
        Settings.from_env(
            {
                "PARKSTREAM_VENDOR_GRANTS": "hotspot=permits/stats",
                "PARKSTREAM_VENDOR_GRANTS_FILE": str(grants),
            }
        )
