"""`idlefleet jobs`: inference jobs through the fleet's API.

jobs list                 every job, its state and executions
jobs status JOB           one job in full
jobs watch JOB            a progress bar of accepted executions until the job settles
jobs cancel JOB           stop planning its open work (needs the operator role)
jobs submit MODEL --inputs ARRAY.npy|DIR --deadline WHEN
                          cut, seal and upload the data, then submit the job
jobs results JOB --out OUT.npy
                          fetch, check and open every shard's output, joined in order

Each action is one `add_view_action` call in `register` and one handler here.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from idlefleet.client.calls import EXIT_BAD_INPUT, add_view_action, run_with_client, show
from idlefleet.settings import StoreSettings

if TYPE_CHECKING:
    from idlefleet.client.fleet import FleetClient, JobStatus

PROG = "idlefleet jobs"
#: Exit status of a watch the user stopped (Ctrl-C), as shells report SIGINT.
EXIT_INTERRUPTED = 130


def register(commands: Any) -> None:
    parser = commands.add_parser("jobs", help="list, watch and cancel inference jobs")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add_view_action(
        actions, "list", "every job and its executions", "idlefleet jobs list", list_jobs
    )
    status = add_view_action(
        actions, "status", "one job in full", "idlefleet jobs status embed-1", job_status
    )
    status.add_argument("job_id", metavar="JOB")
    watch = add_view_action(
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
    cancel = add_view_action(
        actions,
        "cancel",
        "stop planning and dispatching the job's open work (role: operator)",
        "idlefleet jobs cancel embed-1",
        cancel_job,
    )
    cancel.add_argument("job_id", metavar="JOB")
    submit = add_view_action(
        actions,
        "submit",
        "cut the inputs into shards along their first axis, check them against the model's "
        "input, seal them under a fresh job key (wrapped to the service's key; kept here to "
        "open the results), upload them with the model to the store, and submit the job "
        "(role: operator)",
        "idlefleet jobs submit model.onnx --inputs features.npy --rows-per-shard 64 \\\n"
        "      --deadline +6h --replicas 2",
        submit_job,
    )
    submit.add_argument("model", type=Path, metavar="MODEL.onnx")
    submit.add_argument(
        "--inputs",
        type=Path,
        required=True,
        metavar="ARRAY.npy|DIR",
        help="a .npy array, or a directory whose .npy arrays are joined in name order",
    )
    submit.add_argument("--rows-per-shard", type=int, default=256, help="(default 256)")
    submit.add_argument(
        "--deadline",
        required=True,
        metavar="WHEN",
        help="ISO 8601 time with offset, or +DURATION from the service's now (+6h, +90m, +2d)",
    )
    submit.add_argument("--release", metavar="WHEN", help="earliest start (default: now)")
    submit.add_argument("--replicas", type=int, default=1, help="cars each shard runs on")
    submit.add_argument("--sites", nargs="+", default=[], metavar="SITE", help="residency")
    submit.add_argument(
        "--value-per-shard", type=float, default=1.0, help="penalty per shard left undone"
    )
    submit.add_argument("--job-id", help="(default: job-<UTC time>-<random>)")
    submit.add_argument(
        "--public-model", action="store_true", help="upload the model plain (sha256 checked)"
    )
    submit.add_argument(
        "--no-encryption",
        action="store_true",
        help="upload inputs plain: the store and the cars' owners can read them",
    )
    submit.add_argument(
        "--store", help="s3://bucket[/prefix] (default IDLEFLEET_STORE_URL, else the lab store)"
    )
    submit.add_argument("--keys-dir", type=Path, help="where job keys are kept")
    results = add_view_action(
        actions,
        "results",
        "download every shard's accepted output, check its sha256, open it with the job's "
        "key (kept where it was submitted) and write the outputs joined in shard order",
        "idlefleet jobs results job-20261205T101500Z-1a2b3c4d --out labels.npy",
        job_results,
    )
    results.add_argument("job_id", metavar="JOB")
    results.add_argument("--out", type=Path, required=True, metavar="OUT.npy")
    results.add_argument("--store", help="s3://bucket[/prefix] (as for submit)")
    results.add_argument("--keys-dir", type=Path, help="where job keys are kept")


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


def parse_when(text: str, now: datetime) -> datetime:
    """An ISO 8601 time with an offset, or `+N` `m`/`h`/`d` after `now`; ValueError."""
    match = re.fullmatch(r"\+(\d+(?:\.\d+)?)([mhd])", text.strip())
    if match:
        unit = {"m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
        return now + timedelta(**{unit: float(match.group(1))})
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset (add Z or +00:00)")
    return moment.astimezone(UTC)


def _store_of(args: argparse.Namespace) -> StoreSettings | None:
    """The store `--store` names, with the endpoint and keys of the environment or lab."""
    from idlefleet.store.lab import client_store_settings

    if args.store is None:
        return None
    base = client_store_settings()
    return base.model_copy(update={"url": StoreSettings.model_validate({"url": args.store}).url})


def _bytes_to_upload(model: Path, inputs: Path) -> int | None:
    """About what an upload sends [bytes]: the model and the input files (None: unknown)."""
    try:
        files = sorted(inputs.glob("*.npy")) if inputs.is_dir() else [inputs]
        return model.stat().st_size + sum(file.stat().st_size for file in files)
    except OSError:
        return None  # the submit itself says what is wrong


def submit_job(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from idlefleet.client.tables import job_text

    def action(client: FleetClient) -> int:
        now = client.fleet_status().as_of
        try:
            deadline = parse_when(args.deadline, now)
            release = now if args.release is None else parse_when(args.release, now)
        except ValueError as exc:
            print(f"{PROG}: --deadline/--release: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        with tqdm(
            total=_bytes_to_upload(args.model, args.inputs),
            unit="B",
            unit_scale=True,
            file=sys.stderr,
            desc="upload",
        ) as bar:
            submitted = client.submit(
                args.model,
                args.inputs,
                deadline=deadline,
                release=release,
                rows_per_shard=args.rows_per_shard,
                replicas=args.replicas,
                sites=args.sites,
                value_per_shard=args.value_per_shard,
                job_id=args.job_id,
                seal=not args.no_encryption,
                public_model=args.public_model,
                store=_store_of(args),
                keys_dir=args.keys_dir,
                progress=bar.update,
            )
            bar.total = bar.n  # the shards' headers and seals add a little
            bar.refresh()
        status = submitted.status
        if args.json:
            from idlefleet.client.tables import as_json

            sys.stdout.write(as_json(status))
        else:
            sys.stdout.write(job_text(status))
        sealed = f"sealed; key in {submitted.key_path}" if submitted.key_path else "NOT sealed"
        print(
            f"{'submitted' if submitted.created else 'already known'}: {status.job_id} "
            f"({status.shards} shards, {submitted.bytes_sent / 1e6:.1f} MB uploaded, {sealed})",
            file=sys.stderr,
        )
        return 0

    return _with_data_errors(args, action)


def job_results(args: argparse.Namespace) -> int:
    import numpy as np
    from tqdm import tqdm

    def action(client: FleetClient) -> int:
        total = client.job_status(args.job_id).shards
        with tqdm(total=total, unit="shard", file=sys.stderr, desc="download") as bar:
            outputs = client.results(
                args.job_id, store=_store_of(args), keys_dir=args.keys_dir, progress=bar.update
            )
        np.save(args.out, outputs, allow_pickle=False)
        print(
            f"{args.out}: {outputs.dtype}{list(outputs.shape)} from {total} shards",
            file=sys.stderr,
        )
        return 0

    return _with_data_errors(args, action)


def _with_data_errors(args: argparse.Namespace, action: Callable[[FleetClient], int]) -> int:
    """`run_with_client`, with the job data's own errors as one line and exit code 2."""
    from executor.errors import ExecutionError
    from idlefleet.client.inputs import InputsError
    from idlefleet.client.jobdata import JobDataError
    from idlefleet.store.lab import StoreNotConfiguredError

    def guarded(client: FleetClient) -> int:
        try:
            return action(client)
        except (InputsError, JobDataError, StoreNotConfiguredError) as exc:
            print(f"{PROG}: {exc}", file=sys.stderr)
        except ExecutionError as exc:
            print(f"{PROG}: {exc.reason}", file=sys.stderr)
        except ValidationError as exc:
            print(f"{PROG}: {exc.errors()[0]['msg']}", file=sys.stderr)
        except OSError as exc:
            print(f"{PROG}: {exc.filename or ''}: {exc.strerror}", file=sys.stderr)
        return EXIT_BAD_INPUT

    return run_with_client(args, PROG, guarded)
