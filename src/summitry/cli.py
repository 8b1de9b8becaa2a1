"""The command line: serve, demo, check, and audit verify."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import re
import socket
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import uvicorn

from summitry.check import check, report
from summitry.config import Config, ConfigError
from summitry.domain.errors import SummitryError
from summitry.domain.model import SideDraft, SummitDraft
from summitry.media.supervisor import JanusNotFound, find_janus
from summitry.media.turn import TurnNotFound, find_coturn
from summitry.runtime import build_app, offline
from summitry.security import audit
from summitry.security.local_ca import local_tls
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
        command.add_argument(
            "--tls-cert", type=Path, help="serve HTTPS with this certificate (PEM)"
        )
        command.add_argument("--tls-key", type=Path, help="the certificate's private key (PEM)")
        command.add_argument(
            "--trusted-proxy",
            action="append",
            default=[],
            metavar="ADDRESS",
            help="a reverse proxy whose X-Forwarded-* headers are believed (repeatable)",
        )
    preflight = commands.add_parser(
        "check",
        help="preflight a deployment: certificate, HSTS, clock, a relayed TURN round trip",
    )
    preflight.add_argument(
        "url", nargs="?", help="its public URL (default: this server's SUMMITRY_PUBLIC_URL)"
    )
    preflight.add_argument("--operator-token", help="the operator's token (default: this server's)")
    preflight.add_argument("--ca", type=Path, help="trust this CA (PEM) for HTTPS and TURN")
    preflight.add_argument("--data-dir", type=Path, default=None)
    audit_parser = commands.add_parser("audit", help="the audit log")
    audit_commands = audit_parser.add_subparsers(dest="audit_command", required=True)
    verify = audit_commands.add_parser(
        "verify", help="check a summit's audit trail: chain, signatures, head and receipts"
    )
    verify.add_argument("summit")
    verify.add_argument("--data-dir", type=Path, default=None)
    verify.add_argument(
        "--receipt",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="a receipt a coordinator downloaded; the trail must still hold its record",
    )
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    for chatty in ("alembic", "httpx"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        if args.command == "audit":
            receipts = [receipt_from(path, args.summit) for path in args.receipt]
            return asyncio.run(verify_audit(config_for(args), args.summit, receipts))
        if args.command == "check":
            return asyncio.run(preflight_check(args))
        # The data folder holds the database, secrets, keys and the recordings: only
        # this user reads what the server and its children (Janus, coturn) write.
        os.umask(0o077)
        logging.getLogger("uvicorn.access").addFilter(TicketsOutOfLogs())
        config = config_for(args)
        if config.media == "local":  # what the media plane runs, found before anything
            find_janus()
            if config.turn == "local":
                find_coturn()
        if args.command == "demo" and not config.tls and not loopback(args.host):
            made = local_tls(config.data_dir / "tls", demo_names(args.host, config.media_address))
            args.tls_cert, args.tls_key = made.cert, made.key
            config = config_for(args)
            print(trust_note(made.ca), flush=True)
        if args.command == "demo":
            asyncio.run(create_demo(config))
        uvicorn.run(
            build_app(config),
            host=args.host,
            port=args.port,
            log_level="info",
            ssl_certfile=config.tls_cert,
            ssl_keyfile=config.tls_key,
            proxy_headers=bool(config.trusted_proxies),
            # Beyond this many connections at once, 503 at once: the event streams and
            # the API keep their file descriptors (LimitNOFILE in deploy/).
            limit_concurrency=CONNECTIONS,
            forwarded_allow_ips=list(config.trusted_proxies) or None,
        )
        return 0
    except SummitryError as error:
        print(f"summitry: {error.message}", file=sys.stderr)
        return 2
    except (ConfigError, JanusNotFound, TurnNotFound, audit.BadReceipt) as error:
        print(f"summitry: {error}", file=sys.stderr)
        return 2


async def preflight_check(args: argparse.Namespace) -> int:
    """On the server, what it is not told comes from its own settings."""
    url, token = args.url, args.operator_token or os.environ.get("SUMMITRY_OPERATOR_TOKEN")
    if url is None or token is None:
        config = config_for(args)
        url, token = url or config.public_url, token or config.operator_token
    findings = await check(url, token, args.ca)
    print(f"summitry check {url}\n\n{report(findings)}")
    return 0 if all(finding.ok for finding in findings) else 1


def config_for(args: argparse.Namespace) -> Config:
    """The settings of the environment, with the command line's flags over them."""
    environ = dict(os.environ)
    for flag, name in (("tls_cert", "SUMMITRY_TLS_CERT"), ("tls_key", "SUMMITRY_TLS_KEY")):
        if getattr(args, flag, None) is not None:
            environ[name] = str(getattr(args, flag))
    if getattr(args, "trusted_proxy", None):
        environ["SUMMITRY_TRUSTED_PROXIES"] = ",".join(args.trusted_proxy)
    public_url = None
    if getattr(args, "port", None) is not None:
        scheme = "https" if environ.get("SUMMITRY_TLS_CERT") else "http"
        public_url = environ.get("SUMMITRY_PUBLIC_URL") or f"{scheme}://{args.host}:{args.port}"
    return Config.from_environ(environ, data_dir=args.data_dir, public_url=public_url)


def loopback(host: str) -> bool:
    """Whether only this machine can reach `host`: browsers treat it as secure."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


CONNECTIONS = 8192


class TicketsOutOfLogs(logging.Filter):
    """Event-stream tickets travel in the URL (EventSource sends no header): the access
    log keeps the request, not the ticket."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) > 2:
            path = str(record.args[2])
            if "ticket=" in path:
                hidden = re.sub(r"ticket=[^&]*", "ticket=…", path)
                record.args = (*record.args[:2], hidden, *record.args[3:])
        return True


def demo_names(host: str, media_address: str | None = None) -> list[str]:
    """The names the demo's certificate carries: the address it is bound to (for every
    address, this machine's name and addresses), the media address (where TURN over TLS
    answers), and localhost."""
    if host in ("0.0.0.0", "::"):
        own = socket.gethostname()
        addresses = {info[4][0] for info in socket.getaddrinfo(own, None)}
        names = [own, *sorted(str(a) for a in addresses)]
    else:
        names = [host]
    if media_address and media_address not in names:
        names.append(media_address)
    return [*names, "localhost", "127.0.0.1"]


def trust_note(ca: Path) -> str:
    return (
        "\nThe demo is reachable from other machines, so it serves HTTPS (browsers give the "
        "camera and microphone only to secure pages), with a certificate from a CA made on "
        f"this machine. Trust that CA once in each browser that joins:\n  {ca}\n"
        "  Chromium or Chrome on Linux: certutil -d sql:$HOME/.pki/nssdb -A -t C,, "
        f"-n summitry-demo -i {ca}\n"
        "  Firefox: Settings > Privacy & Security > Certificates > Import (trust for websites)\n"
        "  macOS: open it in Keychain Access and set it to Always Trust\n"
        "  Windows: certutil -addstore -user Root ca.pem"
    )


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


def receipt_from(path: Path, summit_id: str) -> audit.Receipt:
    try:
        return audit.read_receipt(path.read_text(encoding="utf-8"), summit_id)
    except (OSError, UnicodeDecodeError) as error:
        raise audit.BadReceipt(f"cannot read the receipt {path}: {error}") from error
    except audit.BadReceipt as error:
        raise audit.BadReceipt(f"{path} is not a usable receipt: {error}") from error


async def verify_audit(config: Config, summit_id: str, receipts: list[audit.Receipt]) -> int:
    async with offline(config) as services:
        checked = await services.audit.check(summit_id, receipts)
    verdict = checked.verdict
    if verdict.ok:
        held = f", {len(receipts)} receipt(s) held" if receipts else ""
        print(
            f"OK: {verdict.records} records, chain intact, signed with {checked.public_key}, "
            f"head at record {checked.head.seq}{held}"
        )
        return 0
    for problem in verdict.problems:
        print(
            f"BROKEN at record {problem.seq} ({problem.check}): {problem.message}", file=sys.stderr
        )
    return 1


if __name__ == "__main__":
    sys.exit(main())
