"""Bounded calls, so that health checks always find a server thread.

Every call but a health check holds one of `max_workers - HEALTH_CHECK_WORKERS` permits
while it runs, and a stream (reflection, plan and health watches) also one of `max_streams`:
a call that finds none free ends RESOURCE_EXHAUSTED at once instead of waiting for a thread.
Permits are taken in the server thread that runs the call, so a call cancelled before it
runs holds none.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import grpc
from grpc_health.v1 import health_pb2

from idlefleet.settings import HEALTH_CHECK_WORKERS

log = logging.getLogger(__name__)

HEALTH_CHECK_METHOD = f"/{health_pb2.DESCRIPTOR.services_by_name['Health'].full_name}/Check"

_FACTORIES: dict[tuple[bool, bool], Callable[..., grpc.RpcMethodHandler]] = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


class CallLimits(grpc.ServerInterceptor):
    """RESOURCE_EXHAUSTED for a call beyond the bounds; health checks are never bounded."""

    def __init__(self, max_workers: int, max_streams: int) -> None:
        self._calls = threading.BoundedSemaphore(max_workers - HEALTH_CHECK_WORKERS)
        self._streams = threading.BoundedSemaphore(max_streams)
        self._max_streams = max_streams

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(details)
        if handler is None or details.method == HEALTH_CHECK_METHOD:
            return handler
        method: str = details.method
        streaming = handler.request_streaming or handler.response_streaming
        kind = (handler.request_streaming, handler.response_streaming)
        behaviour = {
            (False, False): handler.unary_unary,
            (False, True): handler.unary_stream,
            (True, False): handler.stream_unary,
            (True, True): handler.stream_stream,
        }[kind]

        def unary_response(request: Any, context: grpc.ServicerContext) -> Any:
            with self._held(method, streaming, context):
                return behaviour(request, context)

        def stream_response(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            with self._held(method, streaming, context):
                yield from behaviour(request, context)

        return _FACTORIES[kind](
            stream_response if handler.response_streaming else unary_response,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    @contextmanager
    def _held(self, method: str, streaming: bool, context: grpc.ServicerContext) -> Iterator[None]:
        """The call's permits while the block runs; the call ends if there are none."""
        if streaming and not self._streams.acquire(blocking=False):
            _refuse(method, context, f"{self._max_streams} streams are open")
        try:
            if not self._calls.acquire(blocking=False):
                _refuse(method, context, "every server thread is busy")
            try:
                yield
            finally:
                self._calls.release()
        finally:
            if streaming:
                self._streams.release()


def _refuse(method: str, context: grpc.ServicerContext, reason: str) -> None:
    log.warning("refused %s: %s (RESOURCE_EXHAUSTED)", method, reason)
    context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, f"{reason}; try again later")
