"""Kafka settings from IDLEFLEET_KAFKA_* variables; secrets reach the clients and nothing else."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from streams.clients import KafkaSettings

SECRET = "s3cret-pa55"


def test_settings_come_from_the_environment_and_hide_secrets(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name, value in {
        "BOOTSTRAP_SERVERS": "kafka-1:9093,kafka-2:9093",
        "SECURITY_PROTOCOL": "SASL_SSL",
        "SASL_MECHANISM": "SCRAM-SHA-512",
        "SASL_USERNAME": "planner",
        "SASL_PASSWORD": SECRET,
        "SSL_CAFILE": "/etc/idlefleet/ca.pem",
        "SSL_PASSWORD": SECRET,
    }.items():
        monkeypatch.setenv(f"IDLEFLEET_KAFKA_{name}", value)
    settings = KafkaSettings()
    config = settings.common_config()
    assert config["bootstrap_servers"] == ["kafka-1:9093", "kafka-2:9093"]
    assert config["security_protocol"] == "SASL_SSL"
    assert config["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (config["sasl_plain_username"], config["sasl_plain_password"]) == ("planner", SECRET)
    assert (config["ssl_cafile"], config["ssl_password"]) == ("/etc/idlefleet/ca.pem", SECRET)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("idlefleet").info("kafka: %s %r", settings, settings)
    for shown in (str(settings), repr(settings), settings.model_dump_json(), caplog.text):
        assert SECRET not in shown


def test_a_bad_setting_in_the_environment_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDLEFLEET_KAFKA_SECURITY_PROTOCOL", "TLS")
    with pytest.raises(ValidationError, match="security_protocol"):
        KafkaSettings(bootstrap_servers="localhost:9092")
