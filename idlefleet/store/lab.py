"""How a lab's clients find the store a lab `idlefleet serve` started: a settings file beside
the lab token, in the state directory (mode 0600; the embedded store's lab credentials).

Clients take a store from `IDLEFLEET_STORE_*` first; the lab file only when none is set.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from pydantic import SecretStr, ValidationError

from idlefleet.credentials import state_dir
from idlefleet.settings import StoreSettings
from streams.identity import write_private

LAB_STORE_FILE = "lab-store.json"


class StoreNotConfiguredError(ValueError):
    """No store is configured and no lab store is running here."""


def lab_store_path() -> Path:
    """`<state dir>/lab-store.json`."""
    return state_dir() / LAB_STORE_FILE


def write_lab_store(settings: StoreSettings, path: Path | None = None) -> Path:
    """Leave `settings` for this machine's clients (replacing an older lab's)."""
    path = path or lab_store_path()
    document = {
        "url": settings.url,
        "endpoint": settings.endpoint,
        "region": settings.region,
        "access_key_id": _plain(settings.access_key_id),
        "secret_access_key": _plain(settings.secret_access_key),
    }
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    write_private(temporary, json.dumps(document).encode())
    temporary.replace(path)
    return path


def _plain(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()


def client_store_settings(path: Path | None = None) -> StoreSettings:
    """The store a client uses: `IDLEFLEET_STORE_*` when it names one, else the lab file;
    StoreNotConfiguredError naming both when there is neither."""
    configured = StoreSettings()
    if configured.url is not None:
        return configured
    path = path or lab_store_path()
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise StoreNotConfiguredError(
            "no store: set IDLEFLEET_STORE_URL (and IDLEFLEET_STORE_ENDPOINT for a store other "
            f"than AWS S3), or start `idlefleet serve` here (it leaves {path})"
        ) from None
    except (OSError, ValueError) as exc:
        raise StoreNotConfiguredError(f"{path} cannot be read: {exc}") from exc
    try:
        return StoreSettings.model_validate(document)
    except ValidationError as exc:
        raise StoreNotConfiguredError(f"{path} is not a store settings file: {exc}") from exc
