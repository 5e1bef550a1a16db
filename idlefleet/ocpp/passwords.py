"""Station passwords (OCPP security profiles 1 and 2): given in the clear, or as a scrypt hash.

A hash is `scrypt:N:r:p:SALT:KEY` (N, r, p the scrypt costs; SALT and KEY hex), made with
`python -m idlefleet.ocpp.passwords`, which reads the password from the terminal (or one line
of stdin) and prints the hash. Checking one costs about 16 MiB and 50 ms (N = 2^14, r = 8),
so `CentralSystem` checks it off the event loop and remembers a station's last good password
by its SHA-256. Nothing here ever logs or prints a password.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import os
import sys
from dataclasses import dataclass, field

from pydantic import SecretStr

SCHEME = "scrypt"
N_COST = 2**14
R_COST = 8
P_COST = 1
KEY_BYTES = 32
SALT_BYTES = 16
#: Costs a hash may name: more would let a stations file make every check take seconds.
MAX_N, MAX_R, MAX_P = 2**20, 32, 16


class PasswordHashError(ValueError):
    """A password hash that cannot be read; the message says why, never the hash's bytes."""


@dataclass(frozen=True)
class PasswordHash:
    """A scrypt hash of a station's password."""

    n: int
    r: int
    p: int
    salt: bytes = field(repr=False)
    key: bytes = field(repr=False)

    @classmethod
    def make(
        cls, password: str, *, n: int = N_COST, r: int = R_COST, p: int = P_COST
    ) -> PasswordHash:
        """Hash `password` with a fresh random salt."""
        salt = os.urandom(SALT_BYTES)
        return cls(n, r, p, salt, _scrypt(password, salt, n, r, p, KEY_BYTES))

    @classmethod
    def parse(cls, text: str) -> PasswordHash:
        """`scrypt:N:r:p:SALT:KEY`; PasswordHashError when it is not one."""
        parts = text.split(":")
        if len(parts) != 6 or parts[0] != SCHEME:
            raise PasswordHashError("a password hash is scrypt:N:r:p:SALT:KEY")
        try:
            n, r, p = (int(part) for part in parts[1:4])
            salt, key = bytes.fromhex(parts[4]), bytes.fromhex(parts[5])
        except ValueError:
            raise PasswordHashError("scrypt: N, r and p are integers, SALT and KEY hex") from None
        if n < 2 or n & (n - 1) or n > MAX_N:
            raise PasswordHashError(f"scrypt: N must be a power of 2 from 2 to {MAX_N}")
        if not (1 <= r <= MAX_R and 1 <= p <= MAX_P):
            raise PasswordHashError(f"scrypt: r must be 1 to {MAX_R} and p 1 to {MAX_P}")
        if len(salt) < 8 or len(key) < 16:
            raise PasswordHashError("scrypt: SALT needs 8 bytes or more, KEY 16 or more")
        return cls(n, r, p, salt, key)

    def text(self) -> str:
        """The form `parse` reads."""
        return f"{SCHEME}:{self.n}:{self.r}:{self.p}:{self.salt.hex()}:{self.key.hex()}"

    def matches(self, password: str) -> bool:
        """Whether `password` hashes to this hash (slow on purpose: see the module's doc)."""
        derived = _scrypt(password, self.salt, self.n, self.r, self.p, len(self.key))
        return hmac.compare_digest(derived, self.key)


Password = SecretStr | PasswordHash
"""What the operator declares for a station: its password, or a hash of it."""


def is_hashed(password: Password) -> bool:
    """Whether checking `password` is slow (a hash) rather than a comparison."""
    return isinstance(password, PasswordHash)


def password_matches(expected: Password, given: str) -> bool:
    """Whether `given` is the station's password; constant time for a clear one."""
    if isinstance(expected, PasswordHash):
        return expected.matches(given)
    return hmac.compare_digest(given.encode(), expected.get_secret_value().encode())


def digest(password: str) -> bytes:
    """SHA-256 of a password that was checked: remembered to skip the next slow check."""
    return hashlib.sha256(password.encode()).digest()


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    memory = 128 * r * (n + p + 2) + 1024 * 1024
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=memory, dklen=length)


def main() -> int:
    """Print the hash of a password read from the terminal, or from one line of stdin."""
    if sys.stdin.isatty():
        password = getpass.getpass("station password: ")
        if getpass.getpass("again: ") != password:
            print("the two passwords differ", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("an empty password is refused", file=sys.stderr)
        return 2
    print(PasswordHash.make(password).text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
