"""`idlefleet forecast solar|carbon|publish`: PV and grid-intensity forecasts.

`solar` and `carbon` print CSV (`slot_start,pv_kw` and `slot_start,intensity_g_per_kwh`,
slot starts in UTC); `publish` sends a `SolarForecast` per site and a day-ahead
`GridSignal` per region to Kafka, once or on a schedule. Bad input exits with status 2 and
a message naming what is wrong; nothing is printed to stdout then.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from idlefleet.commands import EXIT_BAD_INPUT
from idlefleet.credentials import add_arguments as add_identity_arguments
from idlefleet.credentials import credentials_from_args
from idlefleet.lifecycle import bootstrap_or_embedded, stop_on_signals

if TYPE_CHECKING:
    from forecasting.timegrid import SlotGrid
    from streams.messages import Message
    from streams.topics import Stream

#: A TMY file must lie within this of the site, in latitude and in longitude [deg].
TMY_MAX_OFFSET_DEG = 1.0


def register(commands: Any) -> None:
    parser = commands.add_parser("forecast", help="PV and grid-intensity forecasts")
    kinds = parser.add_subparsers(dest="forecast", required=True, metavar="KIND")

    solar = kinds.add_parser("solar", help="mean AC PV power per slot as CSV")
    solar.add_argument("--lat", type=float, required=True, help="latitude [deg, north +]")
    solar.add_argument("--lon", type=float, required=True, help="longitude [deg, east +]")
    solar.add_argument("--peak-kw", type=float, required=True, help="DC nameplate [kW]")
    solar.add_argument("--tilt", type=float, default=20.0, help="module tilt [deg] (20)")
    solar.add_argument("--azimuth", type=float, default=180.0, help="facing [deg] (180 south)")
    solar.add_argument("--altitude", type=float, default=0.0, help="site altitude [m] (0)")
    solar.add_argument("--tz", default="UTC", help="site time zone, IANA name (UTC)")
    _grid_arguments(solar)
    source = solar.add_mutually_exclusive_group(required=True)
    source.add_argument("--clear-sky", action="store_true", help="pvlib clear sky (Ineichen)")
    source.add_argument("--weather", help="weather CSV: irradiance or cloud cover")
    source.add_argument("--tmy", help="TMY3 file, e.g. pvlib/data/723170TYA.CSV")
    solar.set_defaults(handler=run_solar)

    carbon = kinds.add_parser("carbon", help="average grid intensity per slot as CSV")
    carbon.add_argument("--region", required=True, help="DE, GB or FR")
    _grid_arguments(carbon)
    carbon.add_argument("--actual", action="store_true", help="the real series, no forecast")
    carbon.add_argument("--shared-data", help="directory with ger_ci.csv, gb_ci.csv, fr_ci.csv")
    carbon.set_defaults(handler=run_carbon)

    publish = kinds.add_parser("publish", help="publish forecasts to Kafka on a schedule")
    publish.add_argument("--bootstrap-servers", help="Kafka HOST:PORT; default: embedded")
    publish.add_argument("--topic-prefix", default="idlefleet")
    publish.add_argument("--sites", help="JSON list of sites (default: the shipped example)")
    publish.add_argument("--start", help="first issue time, ISO with offset (default: now)")
    publish.add_argument("--hours", type=int, default=24, help="forecast horizon [h] (24)")
    publish.add_argument("--slot-minutes", type=int, default=15, help="slot length [min] (15)")
    publish.add_argument("--every-minutes", type=int, default=60, help="period [min] (60)")
    publish.add_argument("--once", action="store_true", help="publish once and exit")
    publish.add_argument("--shared-data", help="directory with ger_ci.csv, gb_ci.csv, fr_ci.csv")
    add_identity_arguments(publish)
    publish.set_defaults(handler=run_publish)


def _grid_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--start", required=True, help="first slot, ISO 8601 with offset")
    parser.add_argument("--slots", type=int, required=True, help="number of slots")
    parser.add_argument("--slot-minutes", type=int, required=True, help="slot length [min]")


def _refuse(command: str, reason: object) -> int:
    print(f"idlefleet forecast {command}: {reason}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _instant(text: str, field: str) -> datetime:
    from forecasting.timegrid import parse_utc_times

    moment: datetime = parse_utc_times([text], field)[0].to_pydatetime()
    return moment


def _grid(args: argparse.Namespace) -> SlotGrid:
    from forecasting.timegrid import SlotGrid

    return SlotGrid(_instant(args.start, "--start"), args.slot_minutes, args.slots)


def _print_csv(grid: SlotGrid, column: str, values: Iterable[float], digits: int) -> None:
    lines = [f"slot_start,{column}"]
    lines += [
        f"{grid.slot_start(i):%Y-%m-%dT%H:%M:%SZ},{value:.{digits}f}"
        for i, value in enumerate(values)
    ]
    sys.stdout.write("\n".join(lines) + "\n")


def run_solar(args: argparse.Namespace) -> int:
    from forecasting.solar import PvSystemSpec, clear_sky_pv_kw
    from forecasting.weather import pv_kw_from_weather, read_tmy3, read_weather_csv

    try:
        grid = _grid(args)
        spec = PvSystemSpec(
            latitude_deg=args.lat,
            longitude_deg=args.lon,
            altitude_m=args.altitude,
            dc_peak_kw=args.peak_kw,
            tilt_deg=args.tilt,
            azimuth_deg=args.azimuth,
            timezone=args.tz,
        )
        if args.clear_sky:
            pv_kw = clear_sky_pv_kw(spec, grid)
        elif args.weather:
            weather = read_weather_csv(Path(args.weather))
            pv_kw = pv_kw_from_weather(spec, weather, grid, source=args.weather)
        else:
            weather, station = read_tmy3(Path(args.tmy), grid.start.year)
            offset_deg = max(
                abs(station.latitude_deg - spec.latitude_deg),
                abs(station.longitude_deg - spec.longitude_deg),
            )
            if offset_deg > TMY_MAX_OFFSET_DEG:
                raise ValueError(
                    f"{args.tmy} is for {station.name} at {station.latitude_deg}, "
                    f"{station.longitude_deg}, not within {TMY_MAX_OFFSET_DEG} deg of the site"
                )
            pv_kw = pv_kw_from_weather(spec, weather, grid, source=args.tmy)
    except (ValueError, TypeError, OSError, KeyError) as exc:
        return _refuse("solar", exc)
    _print_csv(grid, "pv_kw", pv_kw, 4)
    return 0


def run_carbon(args: argparse.Namespace) -> int:
    from forecasting.carbon import intensity_on_grid, intensity_source, load_intensity_series
    from forecasting.carbon_forecast import BEST, day_ahead

    data_dir = Path(args.shared_data) if args.shared_data else None
    try:
        grid = _grid(args)
        if args.actual:
            values = intensity_on_grid(args.region, grid, data_dir)
        else:
            history = load_intensity_series(args.region, data_dir)
            source = intensity_source(args.region, data_dir)
            forecast = day_ahead(history, grid, source=source)
            if forecast.forecaster != BEST.name:
                print(
                    f"note: too little history for {BEST.name}; used {forecast.forecaster}",
                    file=sys.stderr,
                )
            values = forecast.intensity_g_per_kwh
    except (ValueError, TypeError, OSError) as exc:
        return _refuse("carbon", exc)
    _print_csv(grid, "intensity_g_per_kwh", values, 3)
    return 0


def run_publish(args: argparse.Namespace) -> int:
    from forecasting.timegrid import SlotGrid
    from idlefleet.commands.serve import default_sites
    from idlefleet.forecast_messages import forecast_messages
    from idlefleet.sites import SitesFileError, load_sites
    from streams.clients import KafkaSettings, ensure_topics

    data_dir = Path(args.shared_data) if args.shared_data else None
    slot = timedelta(minutes=args.slot_minutes)
    slots = args.hours * 60 // args.slot_minutes

    def forecasts(issue: datetime) -> list[tuple[Stream, Message]]:
        return forecast_messages(sites, SlotGrid(issue, args.slot_minutes, slots), issue, data_dir)

    try:
        sites = load_sites(Path(args.sites)) if args.sites else default_sites()
        if args.start:
            issue = _instant(args.start, "--start")
        else:
            now = datetime.now(UTC)
            midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
            issue = midnight + (now - midnight) // slot * slot
        every = timedelta(minutes=args.every_minutes)
        if every <= timedelta(0) or every % slot:
            raise ValueError("--every-minutes must be a positive multiple of --slot-minutes")
        messages = forecasts(issue)  # the first batch is made before connecting
        credentials = credentials_from_args(
            args, ["forecast"], "adapter", lab=not args.bootstrap_servers
        )
    except (SitesFileError, ValueError, TypeError, OSError) as exc:  # CredentialsError too
        return _refuse("publish", exc)

    with stop_on_signals() as stop, bootstrap_or_embedded(args.bootstrap_servers) as bootstrap:
        kafka = KafkaSettings(bootstrap_servers=bootstrap, topic_prefix=args.topic_prefix)
        ensure_topics(kafka)
        trust = credentials.trust(kafka)
        publisher = trust.publisher()
        try:
            while True:
                for stream, message in messages:
                    publisher.publish(stream, message)
                publisher.flush()
                print(
                    f"published {len(messages)} forecasts for {issue.isoformat()} "
                    f"to {bootstrap} (topics {args.topic_prefix}.*)",
                    file=sys.stderr,
                    flush=True,
                )
                if args.once or stop.wait(every.total_seconds()):
                    return 0
                issue += every
                try:
                    messages = forecasts(issue)
                except (ValueError, OSError) as exc:
                    return _refuse("publish", exc)
        finally:
            publisher.close()
            trust.stop()
