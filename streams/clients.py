"""Kafka connection settings and the client factories built from them.

Everything a deployment changes to reach a real Kafka cluster (bootstrap servers,
security protocol, SASL and TLS) is in `KafkaSettings`, read from arguments or
`IDLEFLEET_KAFKA_<FIELD>` environment variables. Secrets are `SecretStr`: they show as
`**********` in reprs and logs and are unwrapped only when a client is built.

The consumer timing defaults are short on purpose: the embedded tansu broker holds a group
join for the whole rebalance timeout, which kafka-python derives from
`max_poll_interval_ms`; about 3 s keeps joins quick there and is safe on real Kafka because
our poll loops never block (a poll returns at most `max_poll_records`, processed in well
under a second). `fetch_max_wait_ms` is short too: a broker answers the requests of one
connection in order, so an offsets request (a reader's catch-up) waits behind a fetch that
is waiting for data.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, Literal

from kafka import ConsumerRebalanceListener, KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError
from kafka.structs import TopicPartition
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.errors import StreamsError
from streams.topics import STREAM_SPECS, Topics


class KafkaSettings(BaseSettings):
    """How to reach Kafka. Environment: IDLEFLEET_KAFKA_<NAME>; secrets are never logged."""

    model_config = SettingsConfigDict(env_prefix="IDLEFLEET_KAFKA_", extra="forbid", frozen=True)

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
    ssl_password: SecretStr | None = Field(None, description="password of ssl_keyfile")
    max_poll_interval_ms: int = Field(3000, gt=0)
    session_timeout_ms: int = Field(6000, gt=0)
    heartbeat_interval_ms: int = Field(500, gt=0)
    max_poll_records: int = Field(5000, gt=0, description="records one poll returns [count]")
    fetch_max_wait_ms: int = Field(
        50, gt=0, description="longest a fetch waits for data; requests behind it wait too [ms]"
    )
    max_partition_fetch_bytes: int = Field(8 * 1024 * 1024, gt=0, description="[bytes]")
    fetch_max_bytes: int = Field(64 * 1024 * 1024, gt=0, description="[bytes]")
    delivery_timeout_ms: int = Field(
        120_000, gt=0, description="how long a send may take, retries included [ms]"
    )

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)

    def common_config(self) -> dict[str, Any]:
        """Options shared by producers, consumers and admin clients (holds the secrets)."""
        config: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            "client_id": self.client_id,
            "security_protocol": self.security_protocol,
        }
        if self.sasl_mechanism is not None:
            config["sasl_mechanism"] = self.sasl_mechanism
            config["sasl_plain_username"] = self.sasl_username
            config["sasl_plain_password"] = _reveal(self.sasl_password)
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            if getattr(self, name) is not None:
                config[name] = getattr(self, name)
        if self.ssl_password is not None:
            config["ssl_password"] = _reveal(self.ssl_password)
        return config

    def consumer_config(self) -> dict[str, Any]:
        """Consumer options: big fetches, bounded polls, manual commits."""
        return {
            **self.common_config(),
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "max_poll_records": self.max_poll_records,
            "fetch_max_wait_ms": self.fetch_max_wait_ms,
            "max_partition_fetch_bytes": self.max_partition_fetch_bytes,
            "fetch_max_bytes": self.fetch_max_bytes,
        }


def _reveal(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()


#: Bytes a producer batches per partition before it sends. kafka-python's default (16 KB, a
#: few dozen records) wakes its I/O thread on nearly every send of a burst (a partition
#: holding a full batch and a new one counts as full): 9,000 assignments of a slot made
#: 8,400 wake-ups, a system call and a GIL hand-over each, in the process that also serves
#: the API. 256 KB makes it about 60, and stays far below Kafka's 1 MB message.max.bytes.
PRODUCER_BATCH_BYTES = 256 * 1024


def make_producer(settings: KafkaSettings) -> KafkaProducer:
    """An idempotent producer that waits for all in-sync replicas.

    kafka-python retries a send only on retriable errors (`KafkaError.retriable`), until
    `delivery_timeout_ms`; any other error fails the send's future at once.
    """
    return KafkaProducer(
        **settings.common_config(),
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        batch_size=PRODUCER_BATCH_BYTES,
        delivery_timeout_ms=settings.delivery_timeout_ms,
        max_in_flight_requests_per_connection=5,
    )


def make_group_consumer(
    settings: KafkaSettings,
    group_id: str,
    topics: Sequence[str],
    listener: ConsumerRebalanceListener,
) -> KafkaConsumer:
    """A group member that commits only when told to (after processing)."""
    consumer = KafkaConsumer(
        **settings.consumer_config(),
        group_id=group_id,
        max_poll_interval_ms=settings.max_poll_interval_ms,
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=settings.heartbeat_interval_ms,
    )
    consumer.subscribe(list(topics), listener=listener)
    return consumer


def make_replica_consumer(settings: KafkaSettings, topics: Sequence[str]) -> KafkaConsumer:
    """A consumer outside any group that reads every partition of `topics` from the start."""
    consumer = KafkaConsumer(**settings.consumer_config())
    partitions: list[TopicPartition] = []
    for topic in topics:
        ids = consumer.partitions_for_topic(topic)
        if not ids:
            consumer.close()
            raise StreamsError(f"topic {topic} does not exist on {settings.bootstrap_servers}")
        partitions.extend(TopicPartition(topic, partition) for partition in sorted(ids))
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    return consumer


def ensure_topics(settings: KafkaSettings) -> list[str]:
    """Create every idlefleet topic that does not exist yet; return the created names."""
    topics = settings.topics
    admin = KafkaAdminClient(**settings.common_config())
    try:
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(
                topics.name(stream),
                spec.partitions,
                1,
                topic_configs={"cleanup.policy": "compact"} if spec.compacted else {},
            )
            for stream, spec in STREAM_SPECS.items()
            if topics.name(stream) not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(wanted)
        return [topic.name for topic in wanted]
    finally:
        admin.close()
