"""The embedded broker starts on a free loopback port, answers Kafka, and stops."""

from __future__ import annotations

from streams.broker import EmbeddedBroker, broker_answers


def test_embedded_broker_answers_then_stops() -> None:
    broker = EmbeddedBroker().start()
    try:
        assert broker.bootstrap_servers.startswith("127.0.0.1:")
        assert broker_answers(broker.bootstrap_servers)
    finally:
        broker.stop()
    assert not broker_answers(broker.bootstrap_servers, timeout_s=0.5)


def test_nothing_answers_on_a_closed_port() -> None:
    assert not broker_answers("127.0.0.1:1", timeout_s=0.5)
