"""`idlefleet jobs`: inference jobs through the fleet's API.

jobs list                 every job, its state and executions
jobs status JOB           one job in full
jobs watch JOB            a progress bar of accepted executions until the job settles
jobs cancel JOB           stop planning its open work (needs the operator role)

Each action is one `_add_action` call in `register` and one handler here.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from idlefleet.client.calls import add_view_arguments, run_with_client, show

if TYPE_CHECKING:
    from idlefleet.client.fleet import FleetClient, JobStatus

PROG = "idlefleet jobs"
#: Exit status of a watch the user stopped (Ctrl-C), as shells report SIGINT.
EXIT_INTERRUPTED = 130


def register(commands: Any) -> None:
    parser = commands.add_parser("jobs", help="list, watch and cancel inference jobs")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    _add_action(actions, "list", "every job and its executions", "idlefleet jobs list", list_jobs)
    status = _add_action(
        actions, "status", "one job in full", "idlefleet jobs status embed-1", job_status
    )
    status.add_argument("job_id", metavar="JOB")
    watch = _add_action(
        actions,
        "watch",
        "a progress bar of accepted executions until the job settles "
        "(exit 0 when it is done, 1 when it failed, expired or was cancelled)",
        "idlefleet jobs watch embed-1 --interval 5",
        watch_job,
    )
    watch.add_argument("job_id", metavar="JOB")
    watch.add_argument(
        "--interval", type=float, default=2.0, help="seconds between polls (default 2)"
    )
    cancel = _add_action(
        actions,
        "cancel",
        "stop planning and dispatching the job's open work (role: operator)",
        "idlefleet jobs cancel embed-1",
        cancel_job,
    )
    cancel.add_argument("job_id", metavar="JOB")


def _add_action(
    actions: Any, name: str, description: str, example: str, handler: Any
) -> argparse.ArgumentParser:
    """A `jobs NAME` parser with the connection's options, --json and an example."""
    parser: argparse.ArgumentParser = actions.add_parser(
        name,
        help=description,
        description=description,
        epilog=f"example:\n  {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_view_arguments(parser)
    parser.set_defaults(handler=handler)
    return parser


def list_jobs(args: argparse.Namespace) -> int:
    from idlefleet.client.tables import jobs_text

    return show(args, PROG, lambda client: client.list_jobs(), jobs_text)


def job_status(args: argparse.Namespace) -> int:
    from idlefleet.client.tables import job_text

    return show(args, PROG, lambda client: client.job_status(args.job_id), job_text)


def cancel_job(args: argparse.Namespace) -> int:
    from idlefleet.client.tables import job_text

    return show(args, PROG, lambda client: client.cancel_job(args.job_id), job_text)


def watch_job(args: argparse.Namespace) -> int:
    if not args.interval > 0:
        print(f"{PROG}: --interval must be > 0 s", file=sys.stderr)
        return 2

    def action(client: FleetClient) -> int:
        updates = client.watch_job(args.job_id, args.interval)
        try:
            last = _print_json_lines(updates) if args.json else _progress_bar(updates)
        except KeyboardInterrupt:  # the user stops watching; the job runs on
            print(f"{PROG}: stopped watching {args.job_id}", file=sys.stderr)
            return EXIT_INTERRUPTED
        return 0 if last.state == "done" else 1

    return run_with_client(args, PROG, action)


def _print_json_lines(updates: Iterable[JobStatus]) -> JobStatus:
    """One JSON line per change; the last status."""
    from idlefleet.client.tables import as_json

    last: JobStatus | None = None
    for last in updates:
        print(json.dumps(json.loads(as_json(last))), flush=True)
    assert last is not None  # watch_job yields at least once
    return last


def _progress_bar(updates: Iterable[JobStatus]) -> JobStatus:
    """Accepted executions of the total on a tqdm bar (stderr); the settled status on stdout."""
    from tqdm import tqdm

    last: JobStatus | None = None
    with tqdm(unit="exec", dynamic_ncols=True, file=sys.stderr) as bar:
        for last in updates:
            bar.total = last.executions_total
            bar.n = last.executions_accepted
            bar.set_description(f"{last.job_id} {last.state}")
            bar.set_postfix(in_flight=last.executions_in_flight, refresh=False)
            bar.refresh()
    assert last is not None  # watch_job yields at least once
    print(
        f"{last.job_id} {last.state}: {last.executions_accepted} / {last.executions_total} "
        "executions accepted"
    )
    return last
