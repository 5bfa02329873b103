"""Vendors from PARKSTREAM_VENDOR_TOKENS and a mounted PARKSTREAM_VENDOR_TOKENS_FILE."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from aiohttp.test_utils import TestClient, TestServer

from foundation.settings import Settings, SettingsError
from producers.gateway import create_app
from schemas.avro import codec
from tests.conftest import CLIENT, VENDOR_TOKEN
from tests.support.examples import PERMIT_PUSH_EXAMPLE
from tests.support.kafka import topic_messages


async def test_a_vendor_from_the_tokens_file_is_let_in_and_named_on_its_events(stack_env, tmp_path):
    tokens = tmp_path / "vendor-tokens"
    tokens.write_text(
        "# mounted from a Kubernetes Secret\nhonk=honk-token-0003\n\npaybyphone=pbp-0004\n"
    )
    settings = Settings.from_env({**stack_env, "PARKSTREAM_VENDOR_TOKENS_FILE": str(tokens)})
    async with TestClient(TestServer(create_app(settings))) as gateway:
        for token in ("honk-token-0003", "pbp-0004", VENDOR_TOKEN):
            answer = await gateway.post(
                f"/api/{CLIENT}/v1/permits/push",
                json={"apiToken": token, **PERMIT_PUSH_EXAMPLE, "permitNo": token[:4]},
            )
            assert answer.status == 200
    vendors = sorted(
        codec().decode(m.value())[1]["vendor"]
        for m in topic_messages(settings.kafka_bootstrap_servers, settings.topic("sessions"))
    )
    assert vendors == ["honk", "hotspot", "paybyphone"]


def test_a_malformed_tokens_file_stops_the_start_without_showing_a_token(tmp_path):
    tokens = tmp_path / "vendor-tokens"
    tokens.write_text("honk honk-token-0003\n")
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"PARKSTREAM_VENDOR_TOKENS_FILE": str(tokens)})
    assert "PARKSTREAM_VENDOR_TOKENS_FILE" in str(caught.value)
    assert "honk-token-0003" not in str(caught.value)


def test_a_vendor_named_in_both_places_stops_the_start(tmp_path):
    tokens = tmp_path / "vendor-tokens"
    tokens.write_text("hotspot=another-token\n")
    with pytest.raises(SettingsError, match="names vendor 'hotspot'"):
        Settings.from_env(
            {
                "PARKSTREAM_VENDOR_TOKENS": "hotspot=abc",
                "PARKSTREAM_VENDOR_TOKENS_FILE": str(tokens),
            }
        )


def test_a_missing_tokens_file_stops_the_start(tmp_path):
    with pytest.raises(SettingsError, match="cannot read"):
        Settings.from_env({"PARKSTREAM_VENDOR_TOKENS_FILE": str(tmp_path / "absent")})


def test_a_short_reference_secret_is_refused_without_echoing_it():
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"PARKSTREAM_REFERENCE_SECRET": "short-secret"})
    assert "at least 16" in str(caught.value)
    assert "short-secret" not in str(caught.value)
    assert Settings.from_env({}).uses_dev_reference_secret


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PARKSTREAM_VENDOR_GRANTS", "hotspot=permits/stats+violations/send_everything"),
        ("PARKSTREAM_VENDOR_GRANTS", "honk=permits/stats"),
    ],
)
def test_parkstream_gateway_with_a_bad_grant_exits_with_one_line_naming_it(
    stack_env, variable, value
):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARKSTREAM_")}
    done = subprocess.run(
        [sys.executable, "-m", "parkstream.cli", "gateway"],
        env={**env, **stack_env, variable: value},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"parkstream: bad setting: {variable}: ")
