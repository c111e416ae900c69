"""``python -m app.worker``: the executor without a dashboard.

    python -m app.worker --demo                      # SQLite + paper broker + simulated market
    python -m app.worker --database-url postgresql://... --broker paper

SIGINT/SIGTERM stop it cleanly: the current tick finishes (every write is one committed unit of
work, so nothing is half-written), the leader lease is released and the broker closed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import signal
import sys

from app.runtime import build_runtime
from app.settings import AxionSettings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m app.worker", description=__doc__.split("\n")[0])
    p.add_argument(
        "--database-url",
        help="SQLAlchemy URL (default: $AXION_DATABASE_URL or sqlite:///./data/axion.db)",
    )
    p.add_argument("--broker", choices=["paper"], help="broker adapter (default paper)")
    p.add_argument("--account", help="account name (default paper-default)")
    p.add_argument(
        "--demo",
        action="store_true",
        help="scan the watchlist with the EMA-cloud engine (default mode leveraged_etf)",
    )
    p.add_argument("--speed", type=float, help="simulated market speed multiplier (default 60)")
    p.add_argument("--tick-ms", type=int, help="tick interval in milliseconds (default 250)")
    p.add_argument("--status-every", type=float, default=10.0, help="seconds between status lines")
    p.add_argument("--run-for", type=float, help="stop by itself after this many seconds")
    p.add_argument(
        "--lease-ttl", type=float, help="leader lease time-to-live in seconds (default 10)"
    )
    p.add_argument(
        "--pipeline",
        choices=["full", "pass_through"],
        help="full (router, sizer, risk gate; default) or pass_through (validate and submit)",
    )
    p.add_argument(
        "--mode",
        choices=["options", "leveraged_etf", "both"],
        help="instrument mode (default both; leveraged_etf with --demo)",
    )
    p.add_argument("--risk-profile", choices=["aggressive", "conservative"], help="risk profile")
    return p.parse_args(argv)


def settings_from(args: argparse.Namespace) -> AxionSettings:
    overrides = {
        "database_url": args.database_url,
        "broker": args.broker,
        "account": args.account,
        "market_speed": args.speed,
        "tick_ms": args.tick_ms,
        "lease_ttl_s": args.lease_ttl,
        "pipeline": args.pipeline,
        "instrument_mode": args.mode,
        "risk_profile": args.risk_profile,
    }
    return AxionSettings(**{k: v for k, v in overrides.items() if v is not None})


async def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    demo = args.demo or settings.demo is True
    runtime = build_runtime(settings, demo=demo)
    executor = runtime.make_executor()
    # Long-lived start-up objects (calendar, market caches) never need collecting again; keeping
    # them out of the collector's full passes removes its longest pauses from the order path.
    gc.collect()
    gc.freeze()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log = logging.getLogger("axion.worker")
    log.info(
        "worker %s starting: store=%s broker=%s account=%s demo=%s pipeline=%s mode=%s risk=%s",
        executor.holder_id,
        runtime.store.engine.url.render_as_string(hide_password=True),
        runtime.broker.name,
        runtime.config.account,
        demo,
        runtime.settings.pipeline,
        runtime.instrument_mode.value,
        runtime.settings.risk_profile,
    )

    async def stop_after(seconds: float) -> None:
        try:
            await asyncio.wait_for(stop.wait(), timeout=seconds)
        except TimeoutError:
            stop.set()

    async def status() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=args.status_every)
            s = executor.stats
            log.info(
                "status role=%s market_time=%s signals=%d orders=%d fills=%d rejected=%d errors=%d",
                "leader" if executor.is_leader else "standby",
                runtime.market.clock.now().isoformat(timespec="seconds"),
                s.signals_routed,
                s.orders_submitted,
                s.fills,
                s.signals_rejected + s.orders_rejected,
                s.errors,
            )

    status_task = asyncio.create_task(status())
    timer = asyncio.create_task(stop_after(args.run_for)) if args.run_for else None
    try:
        await executor.run(stop)
    finally:
        stop.set()
        await status_task
        if timer is not None:
            await timer
        runtime.store.engine.dispose()
    log.info("worker %s stopped cleanly", executor.holder_id)
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stdout,
    )
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
