"""The demo's console tokens: an operator's and one per car's owner, private to this user,
new on every run."""

from __future__ import annotations

import stat
from pathlib import Path

from idlefleet.demo.console import write_console_tokens
from idlefleet.tokens import Role, TokenTable


def test_every_run_writes_fresh_private_tokens(tmp_path: Path) -> None:
    first = write_console_tokens(tmp_path, ["car-0001", "car-0002"]).read_text()
    path = write_console_tokens(tmp_path, ["car-0001", "car-0002"])  # a second run, same dir
    assert path.read_text() != first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    table = TokenTable.load(path)
    tokens = [line.split()[0] for line in path.read_text().splitlines()]
    operator = table.principal_of(tokens[0])
    assert operator is not None and operator.role is Role.ADMIN
    owners = [table.principal_of(token) for token in tokens[1:]]
    assert [o.vehicle_id for o in owners if o is not None] == ["car-0001", "car-0002"]
    assert table.principal_of(first.split()[0]) is None
    assert [p.name for p in tmp_path.iterdir()] == [path.name], "no temporary file left"
