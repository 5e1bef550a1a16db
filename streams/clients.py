"""Kafka connection settings and the client factories built from them.

Everything a deployment changes to reach a real Kafka cluster (bootstrap servers,
security protocol, SASL and TLS) is in `KafkaSettings`. The consumer timing defaults
are short on purpose: the embedded tansu broker holds a group join for the whole
rebalance timeout, which kafka-python derives from `max_poll_interval_ms`; about 3 s
keeps joins quick there and is safe on real Kafka because our poll loops never block.
"""

from __future__ import annotations

import contextlib
from typing import Any, Literal

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from streams.topics import STREAM_SPECS, Topics


class KafkaSettings(BaseModel):
    """How to reach Kafka. Secrets are SecretStr and never logged."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bootstrap_servers: str = Field(description="HOST:PORT[,HOST:PORT...]")
    topic_prefix: str = "idlefleet"
    client_id: str = "idlefleet"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    max_poll_interval_ms: int = Field(3000, gt=0)
    session_timeout_ms: int = Field(6000, gt=0)
    heartbeat_interval_ms: int = Field(500, gt=0)

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)

    def common_config(self) -> dict[str, Any]:
        """Options shared by producers, consumers and admin clients."""
        config: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            "client_id": self.client_id,
            "security_protocol": self.security_protocol,
        }
        if self.sasl_mechanism is not None:
            config["sasl_mechanism"] = self.sasl_mechanism
            config["sasl_plain_username"] = self.sasl_username
            config["sasl_plain_password"] = (
                self.sasl_password.get_secret_value() if self.sasl_password else None
            )
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            if getattr(self, name) is not None:
                config[name] = getattr(self, name)
        return config


def make_producer(settings: KafkaSettings) -> KafkaProducer:
    """An idempotent producer that waits for all in-sync replicas."""
    return KafkaProducer(
        **settings.common_config(),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        retries=5,
        max_in_flight_requests_per_connection=5,
    )


def make_consumer(settings: KafkaSettings, group_id: str, topics: list[str]) -> KafkaConsumer:
    """A group consumer that commits only when told to (after processing)."""
    consumer = KafkaConsumer(
        **settings.common_config(),
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_interval_ms=settings.max_poll_interval_ms,
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=settings.heartbeat_interval_ms,
    )
    consumer.subscribe(topics)
    return consumer


def ensure_topics(settings: KafkaSettings) -> list[str]:
    """Create every idlefleet topic that does not exist yet; return the created names."""
    topics = settings.topics
    admin = KafkaAdminClient(**settings.common_config())
    try:
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(topics.name(stream), spec.partitions, 1)
            for stream, spec in STREAM_SPECS.items()
            if topics.name(stream) not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(wanted)
        return [topic.name for topic in wanted]
    finally:
        admin.close()
