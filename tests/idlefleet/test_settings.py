"""StoreSettings (idlefleet.settings): read from IDLEFLEET_STORE_* variables, checked, and
never showing their secrets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from idlefleet.settings import StoreSettings

SECRET = "store-secret-7e1d2c3b4a59"
KEY_ID = "AKIDSTORE0A1B2C3D"


def test_settings_come_from_the_environment_and_hide_their_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IDLEFLEET_STORE_URL", "s3://fleet-data/jobs/")
    monkeypatch.setenv("IDLEFLEET_STORE_ENDPOINT", "http://127.0.0.1:9000")
    monkeypatch.setenv("IDLEFLEET_STORE_REGION", "eu-central-1")
    monkeypatch.setenv("IDLEFLEET_STORE_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("IDLEFLEET_STORE_SECRET_ACCESS_KEY", SECRET)

    settings = StoreSettings()
    config = settings.store_config()

    assert (settings.bucket, settings.prefix) == ("fleet-data", "jobs")
    assert config.endpoint_url == "http://127.0.0.1:9000" and config.allow_http
    assert config.region == "eu-central-1"
    assert (config.access_key_id, config.secret_access_key) == (KEY_ID, SECRET)
    for shown in (repr(settings), str(settings), repr(config), str(settings.model_dump())):
        assert SECRET not in shown and KEY_ID not in shown


def test_no_url_means_no_store_and_no_credentials_means_the_aws_environment() -> None:
    settings = StoreSettings()
    config = settings.store_config()
    assert settings.url is None and settings.bucket is None
    assert config.endpoint_url is None and config.access_key_id is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"url": "https://bucket/key"}, "is not an s3://bucket"),
        ({"url": "s3://b", "endpoint": "ftp://host"}, "is not an http(s)://host"),
        ({"endpoint": "http://127.0.0.1:9000"}, "no url: name the bucket"),
    ],
)
def test_bad_settings_are_refused_naming_what_is_wrong(
    fields: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        StoreSettings(**fields)  # type: ignore[arg-type]
