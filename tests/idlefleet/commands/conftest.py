"""The client tests' server, tokens and environment, for the commands that use them."""

from tests.idlefleet.client.conftest import (  # noqa: F401  (fixtures)
    own_environment,
    pki,
    target,
)
