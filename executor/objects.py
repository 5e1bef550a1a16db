"""Objects in S3-compatible stores (`s3://bucket/key`), through obstore.

The service and the job submitter's client hold store credentials and use `ObjectStore`:
put (multipart above one part, with progress), bounded get (the size is checked before any
byte is read; a dropped transfer resumes with a range request on the same object version),
size, list, delete, and presigned GET and PUT URLs that cars use without credentials
(`executor.transfer`). Cars never import this module.

Every failure is a `StoreError` whose one-line reason names the object, never a credential:
obstore's retries (5xx, connection errors, timeouts; `StoreConfig.tries` in all, with
exponential backoff) run first, and the error left at the end is translated here.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

import obstore
from obstore.exceptions import (
    PermissionDeniedError,
    PreconditionError,
    UnauthenticatedError,
)
from obstore.store import S3Store

from executor.errors import StoreError

#: S3's smallest multipart part (except the last) [bytes].
MIN_PART_BYTES = 5 * 1024 * 1024
#: Longest lifetime S3 accepts for a SigV4 presigned URL.
MAX_PRESIGN_LIFETIME = timedelta(days=7)
_SCHEME = "s3"


@dataclass(frozen=True)
class StoreConfig:
    """How to reach an S3-compatible store.

    `endpoint_url` None means AWS S3 in `region` (virtual-hosted-style requests); any other
    endpoint (MinIO, Ceph, the embedded moto server) gets path-style requests, and plain
    `http://` is allowed only when the endpoint says so. Credentials left None come from the
    standard AWS environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    `AWS_SESSION_TOKEN`, web identity, container or instance credentials), as obstore reads it.
    """

    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    tries: int = 4
    backoff_s: float = 0.5
    max_backoff_s: float = 10.0
    connect_timeout_s: float = 5.0
    timeout_s: float = 120.0
    part_bytes: int = 8 * 1024 * 1024
    max_concurrency: int = 4

    def __post_init__(self) -> None:
        if self.endpoint_url is not None:
            parts = urlsplit(self.endpoint_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(
                    f"store endpoint {self.endpoint_url!r} is not an http(s)://host[:port] URL"
                )
        if self.tries < 1:
            raise ValueError(f"tries must be at least 1, not {self.tries}")
        if self.part_bytes < MIN_PART_BYTES:
            raise ValueError(f"part_bytes must be at least {MIN_PART_BYTES} (S3's smallest part)")

    @property
    def allow_http(self) -> bool:
        """True when the endpoint is plain `http://` (a lab store)."""
        return self.endpoint_url is not None and self.endpoint_url.startswith("http://")

    @property
    def where(self) -> str:
        """The store as messages name it: its endpoint, or AWS S3 and the region."""
        return self.endpoint_url or f"AWS S3 ({self.region})"


def parse_uri(uri: str) -> tuple[str, str]:
    """(bucket, key) of `s3://bucket/key`; StoreError for anything else.

    The key may be empty (a bucket, or a prefix for `list`), must not contain empty, `.` or
    `..` segments, and the URI must not carry a query or fragment.
    """
    parts = urlsplit(uri)
    if parts.scheme != _SCHEME or not parts.netloc:
        raise StoreError(f"invalid object URI {uri!r}: expected s3://bucket/key")
    if parts.query or parts.fragment or "\x00" in uri:
        raise StoreError(f"invalid object URI {uri!r}: a query, fragment or NUL byte")
    key = parts.path.lstrip("/")
    segments = key.rstrip("/").split("/") if key else []
    if any(segment in ("", ".", "..") for segment in segments):
        raise StoreError(f"invalid object URI {uri!r}: empty, '.' or '..' path segments")
    return parts.netloc, key


def object_uri(bucket: str, key: str) -> str:
    """`s3://bucket/key`."""
    return f"{_SCHEME}://{bucket}/{key}"


def _object_key(uri: str) -> tuple[str, str]:
    bucket, key = parse_uri(uri)
    if not key or key.endswith("/"):
        raise StoreError(f"invalid object URI {uri!r}: names no object (no key)")
    return bucket, key


_RETRIES = re.compile(r"retries: (\d+)")
_OS_MESSAGE = re.compile(r'message: "([^"]+)"')
_STATUS = re.compile(r"status code: (\d{3}[^:\n]*)")


class ObjectStore:
    """Objects in one S3-compatible store, named by `s3://bucket/key` URIs.

    One obstore client per bucket, made on first use and kept; safe to share between
    threads.
    """

    def __init__(self, config: StoreConfig) -> None:
        self.config = config
        self._stores: dict[str, S3Store] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ObjectStore({self.config!r})"

    def put(self, uri: str, data: bytes, *, progress: Callable[[int], None] | None = None) -> None:
        """Store `data` at `uri`, replacing any object there (atomically: readers see the old
        or the new object). Above `config.part_bytes` a multipart upload in parts of that
        size; `progress` gets the bytes [bytes] handed to the upload so far after each part
        (at most `config.max_concurrency` parts ahead of those acknowledged) and the total
        once the object is complete."""
        bucket, key = _object_key(uri)
        store = self._store(bucket)
        part_bytes = self.config.part_bytes
        view = memoryview(data)

        def parts() -> Iterator[memoryview]:
            for start in range(0, len(view), part_bytes):
                yield view[start : start + part_bytes]
                if progress is not None:
                    progress(min(start + part_bytes, len(view)))

        try:
            if len(data) > part_bytes:
                obstore.put(
                    store,
                    key,
                    parts(),
                    chunk_size=part_bytes,
                    max_concurrency=self.config.max_concurrency,
                )
            else:
                obstore.put(store, key, data, use_multipart=False)
        except Exception as exc:
            raise self._error(exc, uri, "write") from exc
        if progress is not None:
            progress(len(data))

    def get(self, uri: str, max_bytes: int) -> bytes:
        """The bytes of the object at `uri`, refused (StoreError) before any is read when the
        object holds more than `max_bytes` [bytes] (a HEAD first).

        A transfer that breaks off resumes from the bytes already received with a range
        request: obstore does so itself within its tries, and when those run out after some
        progress this asks for the rest again, up to `config.tries` times, always of the same
        version (by ETag), so an object replaced meanwhile is a StoreError, never a mix."""
        bucket, key = _object_key(uri)
        store = self._store(bucket)
        try:
            meta = obstore.head(store, key)
        except Exception as exc:
            raise self._error(exc, uri, "read") from exc
        size_bytes = int(meta["size"])
        if size_bytes > max_bytes:
            raise StoreError(
                f"object {uri} is {size_bytes} bytes, more than the {max_bytes} allowed"
            )
        received = bytearray()
        failures: list[str] = []
        while len(failures) < self.config.tries:
            options: dict[str, Any] = {}
            if meta.get("e_tag"):
                options["if_match"] = meta["e_tag"]
            if received:
                options["range"] = {"offset": len(received)}
            before_bytes = len(received)
            try:
                result = obstore.get(store, key, options=options)  # type: ignore[arg-type]
                for chunk in result.stream(min_chunk_size=1024 * 1024):
                    received += memoryview(chunk)
                    if len(received) > max_bytes:
                        raise StoreError(f"object {uri} is more than the {max_bytes} bytes allowed")
            except StoreError:
                raise
            except (FileNotFoundError, PermissionDeniedError, UnauthenticatedError) as exc:
                raise self._error(exc, uri, "read") from exc
            except PreconditionError as exc:
                raise StoreError(f"object {uri} changed while being read") from exc
            except Exception as exc:
                error = self._error(exc, uri, "read")
                if len(received) == before_bytes:  # obstore's own tries got nothing more
                    raise error from exc
                failures.append(error.reason)  # broke off after progress: ask for the rest
                continue
            if len(received) != size_bytes:
                raise StoreError(
                    f"object {uri} ended after {len(received)} of its {size_bytes} bytes"
                )
            return bytes(received)
        raise StoreError(
            f"reading {uri} broke off {len(failures)} times "
            f"({len(received)} of {size_bytes} bytes received): {failures[-1]}"
        )

    def size(self, uri: str) -> int:
        """The size of the object at `uri` [bytes]."""
        bucket, key = _object_key(uri)
        try:
            return int(obstore.head(self._store(bucket), key)["size"])
        except Exception as exc:
            raise self._error(exc, uri, "read") from exc

    def list(self, prefix_uri: str) -> list[str]:
        """URIs of every object under `prefix_uri` (`s3://bucket/prefix`, whole path
        segments: `a/b` lists `a/b/x`, not `a/bc`), sorted."""
        bucket, prefix = parse_uri(prefix_uri)
        try:
            chunks = obstore.list(self._store(bucket), prefix.rstrip("/") or None)
            return sorted(object_uri(bucket, meta["path"]) for chunk in chunks for meta in chunk)
        except Exception as exc:
            raise self._error(exc, prefix_uri, "list") from exc

    def delete(self, uri: str) -> None:
        """Delete the object at `uri`; deleting a missing object is not an error (S3)."""
        bucket, key = _object_key(uri)
        try:
            obstore.delete(self._store(bucket), key)
        except FileNotFoundError:
            return
        except Exception as exc:
            raise self._error(exc, uri, "delete") from exc

    def presign_get(self, uri: str, expires_in: timedelta) -> str:
        """A URL anyone holding it may GET the object at `uri` with, for `expires_in`.

        The URL's query is a bearer credential: pass it only to whom it is for, and log it
        only through `executor.transfer.redact`."""
        return self._sign("GET", uri, expires_in)

    def presign_put(self, uri: str, expires_in: timedelta) -> str:
        """A URL anyone holding it may PUT one object at `uri` with, for `expires_in` (a
        bearer credential, as `presign_get`)."""
        return self._sign("PUT", uri, expires_in)

    def _sign(self, method: Literal["GET", "PUT"], uri: str, expires_in: timedelta) -> str:
        bucket, key = _object_key(uri)
        if not timedelta(seconds=1) <= expires_in <= MAX_PRESIGN_LIFETIME:
            raise StoreError(
                f"a presigned URL for {uri} must live between 1 s and 7 days, not {expires_in}"
            )
        try:
            return obstore.sign(self._store(bucket), method, key, expires_in)
        except Exception as exc:
            raise self._error(exc, uri, "sign") from exc

    def _store(self, bucket: str) -> S3Store:
        with self._lock:
            store = self._stores.get(bucket)
            if store is None:
                store = self._stores[bucket] = self._make_store(bucket)
            return store

    def _make_store(self, bucket: str) -> S3Store:
        config = self.config
        s3: dict[str, Any] = {"region": config.region}
        if config.endpoint_url is not None:
            s3["endpoint"] = config.endpoint_url
            s3["virtual_hosted_style_request"] = False
        else:
            s3["virtual_hosted_style_request"] = True
        if config.access_key_id is not None:
            s3["access_key_id"] = config.access_key_id
        if config.secret_access_key is not None:
            s3["secret_access_key"] = config.secret_access_key
        client: dict[str, Any] = {
            "allow_http": config.allow_http,
            "connect_timeout": timedelta(seconds=config.connect_timeout_s),
            "timeout": timedelta(seconds=config.timeout_s),
        }
        retry: dict[str, Any] = {
            "max_retries": config.tries - 1,
            "backoff": {
                "init_backoff": timedelta(seconds=config.backoff_s),
                "max_backoff": timedelta(seconds=config.max_backoff_s),
                "base": 2,
            },
            "retry_timeout": timedelta(
                seconds=config.tries * (config.timeout_s + config.max_backoff_s)
            ),
        }
        try:
            return S3Store(bucket, config=s3, client_options=client, retry_config=retry)  # type: ignore[arg-type]
        except Exception as exc:
            raise StoreError(f"cannot configure store {config.where} for bucket {bucket}") from exc

    def _error(self, exc: BaseException, uri: str, action: str) -> StoreError:
        """The one-line StoreError for obstore's `exc` while `action`-ing `uri`."""
        text = str(exc)
        if isinstance(exc, FileNotFoundError):
            if "NoSuchBucket" in text:
                return StoreError(f"bucket of {uri} not found in store {self.config.where}")
            return StoreError(f"object {uri} not found")
        if isinstance(exc, PermissionDeniedError | UnauthenticatedError):
            return StoreError(f"access denied to {uri}")
        match = _RETRIES.search(text)
        tries = int(match.group(1)) + 1 if match else 1
        if "kind: Connect" in text or "error sending request" in text:
            os_message = _OS_MESSAGE.search(text)
            reason = os_message.group(1).lower() if os_message else "cannot connect"
            return StoreError(
                f"store {self.config.where} unreachable after {tries} tries: {reason}"
            )
        status = _STATUS.search(text)
        if status:
            return StoreError(
                f"cannot {action} {uri}: store {self.config.where} answered "
                f"{status.group(1).strip()} after {tries} tries"
            )
        first_line = text.splitlines()[0] if text else type(exc).__name__
        detail = first_line.rsplit(" - ", 1)[-1]
        return StoreError(f"cannot {action} {uri} in store {self.config.where}: {detail}")
