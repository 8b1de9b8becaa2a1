"""The command line: serve, demo, and audit verify."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import uvicorn

from summitry.config import Config, ConfigError
from summitry.domain.errors import SummitryError
from summitry.domain.model import SideDraft, SummitDraft
from summitry.media.supervisor import JanusNotFound
from summitry.runtime import build_app, offline
from summitry.security import audit
from summitry.web.links import WebLinks

DEMO_TITLE = "Russia – United States video summit"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="summitry", description="Secure video summits.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("serve", "run the server"),
        ("demo", "run the server with a demo summit"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--host", default="127.0.0.1")
        command.add_argument("--port", type=int, default=8000)
        command.add_argument("--data-dir", type=Path, default=None)
    audit_parser = commands.add_parser("audit", help="the audit log")
    audit_commands = audit_parser.add_subparsers(dest="audit_command", required=True)
    verify = audit_commands.add_parser("verify", help="check a summit's audit chain")
    verify.add_argument("summit")
    verify.add_argument("--data-dir", type=Path, default=None)
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    for chatty in ("alembic", "httpx"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        if args.command == "audit":
            return asyncio.run(verify_audit(config_for(args), args.summit))
        config = config_for(args)
        if args.command == "demo":
            asyncio.run(create_demo(config))
        uvicorn.run(build_app(config), host=args.host, port=args.port, log_level="info")
        return 0
    except SummitryError as error:
        print(f"summitry: {error.message}", file=sys.stderr)
        return 2
    except (ConfigError, JanusNotFound) as error:
        print(f"summitry: {error}", file=sys.stderr)
        return 2


def config_for(args: argparse.Namespace) -> Config:
    public_url = None
    if getattr(args, "port", None) is not None:
        public_url = os.environ.get("SUMMITRY_PUBLIC_URL") or f"http://{args.host}:{args.port}"
    return Config.from_environ(os.environ, data_dir=args.data_dir, public_url=public_url)


def demo_start(now: datetime) -> datetime:
    """The next day on which 18:00 in Moscow is 10:00 in New York (as on the seed's day)."""
    day = (now + timedelta(days=1)).date()
    while True:
        start = datetime(day.year, day.month, day.day, 18, tzinfo=ZoneInfo("Europe/Moscow"))
        if start.astimezone(ZoneInfo("America/New_York")).hour == 10:
            return start.astimezone(UTC)
        day += timedelta(days=1)


async def create_demo(config: Config) -> None:
    async with offline(config) as services:
        starts_at = demo_start(datetime.now(UTC))
        summit, invites = await services.catalog.create(
            SummitDraft(
                title=DEMO_TITLE,
                agenda="Strategic stability; regional security; the bilateral channel.",
                starts_at=starts_at,
                planned_length=timedelta(hours=2),
                public_length=timedelta(minutes=10),
                sides=(
                    SideDraft("Russian Federation", "Europe/Moscow", "Yuri Ushakov"),
                    SideDraft("United States", "America/New_York", "Jake Sullivan"),
                ),
            )
        )
        # Open the lobby now, so the demo can be tried at once rather than tomorrow.
        opener = await services.catalog.authenticate(invites[0].token)
        summit = await services.phases.act(opener, summit.id, "open_lobby", summit.version)
    people = {side.id: side for side in summit.sides}
    print(f"\n{summit.title}")
    for side in summit.sides:
        print(f"  {side.name}: {side.local_start:%Y-%m-%d %H:%M %Z} ({side.time_zone})")
    print(f"  phase: {summit.phase} (the lobby is open)")
    print(f"  public page: {WebLinks(config.public_url).public_page(summit.slug)}")
    print(f"  operator token: {config.operator_token}")
    for invite in invites:
        side = people[invite.participant.side_id]
        print(f"  invite {invite.participant.name} ({invite.participant.role}, {side.name}):")
        print(f"    {invite.link}")
    print(flush=True)


async def verify_audit(config: Config, summit_id: str) -> int:
    async with offline(config) as services:
        verdict = audit.verify(await services.catalog.audit_trail(summit_id))
    if verdict.ok:
        print(f"OK: {verdict.records} records, chain intact")
        return 0
    print(f"BROKEN at record {verdict.broken_seq}: {verdict.problem}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
