"""`summitry check`: a deployment's preflight, run on the server or from anywhere outside.
It looks at what a participant's browser will meet: the certificate and HSTS, the
server's clock (grants and TURN credentials expire by it), ICE with Janus's media ports
over UDP, and a real relayed round trip through every TURN server the browsers are
handed (over UDP, TCP and TLS). Each finding is one line; any failure makes the exit
status non-zero."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from summitry.ice_probe import ice_with_janus
from summitry.turn_probe import relayed_round_trip

# Certificates this close to their end are reported: renewal has failed somewhere.
RENEW_WITHIN_DAYS = 14
# A clock this far off breaks grants, event tickets and TURN credentials at the edges.
CLOCK_SKEW_SECONDS = 5
HSTS_MINIMUM_SECONDS = 86_400


@dataclass(frozen=True)
class Finding:
    what: str
    ok: bool
    detail: str


def report(findings: list[Finding]) -> str:
    width = max(len(f.what) for f in findings)
    lines = [f"{'ok  ' if f.ok else 'FAIL'}  {f.what:<{width}}  {f.detail}" for f in findings]
    failed = sum(not f.ok for f in findings)
    lines.append(f"\n{len(findings) - failed} passed, {failed} failed")
    return "\n".join(lines)


def tls_context(ca: Path | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca) if ca else None)


async def check(url: str, operator_token: str | None, ca: Path | None) -> list[Finding]:
    """Every finding about the deployment at `url` (its public URL)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [Finding("URL", False, f"not an http(s) URL: {url!r}")]
    findings: list[Finding] = []
    trusted = tls_context(ca)
    if parts.scheme == "https":
        findings.append(await certificate(parts.hostname, parts.port or 443, trusted))
    else:
        findings.append(
            Finding("HTTPS", False, "plain HTTP: browsers give camera and microphone to HTTPS")
        )
    async with httpx.AsyncClient(base_url=url, verify=trusted, timeout=10) as http:
        try:
            sent = datetime.now(UTC)
            health = await http.get("/api/v1/health")
            received = datetime.now(UTC)
        except httpx.HTTPError as error:
            return [*findings, Finding("server", False, f"unreachable: {error}")]
        findings.append(served(health))
        if parts.scheme == "https":
            findings.append(hsts(health))
        findings.append(clock(health, sent, received))
        if operator_token is None:
            needs = "not checked: needs the operator token (--operator-token)"
            return [*findings, Finding("ICE", False, needs), Finding("TURN", False, needs)]
        direct, relayed = await asyncio.gather(
            media_ports(http, operator_token), relays(http, operator_token, trusted)
        )
    return [*findings, direct, *relayed]


async def certificate(host: str, port: int, context: ssl.SSLContext) -> Finding:
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context, server_hostname=host), 10
        )
    except ssl.SSLCertVerificationError as error:
        return Finding("certificate", False, f"not trusted: {error.verify_message}")
    except (OSError, TimeoutError) as error:
        return Finding("certificate", False, f"no TLS on {host}:{port}: {error}")
    peer = writer.get_extra_info("peercert") or {}
    writer.close()
    ends = datetime.fromtimestamp(ssl.cert_time_to_seconds(peer["notAfter"]), UTC)
    days = (ends - datetime.now(UTC)).days
    issuer = dict(item[0] for item in peer.get("issuer", ()))
    detail = (
        f"valid for {host}, {days} more days (until {ends:%Y-%m-%d}), "
        f"issued by {issuer.get('organizationName') or issuer.get('commonName', '?')}"
    )
    if days < RENEW_WITHIN_DAYS:
        return Finding(
            "certificate", False, detail + f": renew it (under {RENEW_WITHIN_DAYS} days)"
        )
    return Finding("certificate", True, detail)


def served(health: httpx.Response) -> Finding:
    if health.status_code != 200:
        return Finding("server", False, f"health answered {health.status_code}")
    body = health.json()
    media = body.get("media")
    detail = f"summitry {body.get('version')}, media {media}"
    return Finding("server", media != "down", detail)


def hsts(health: httpx.Response) -> Finding:
    header = health.headers.get("strict-transport-security", "")
    ages = [part.strip() for part in header.split(";") if part.strip().startswith("max-age=")]
    age = int(ages[0].removeprefix("max-age=")) if ages and ages[0][8:].isdigit() else 0
    if age < HSTS_MINIMUM_SECONDS:
        return Finding("HSTS", False, f"Strict-Transport-Security is {header or 'missing'!r}")
    return Finding("HSTS", True, header)


def clock(health: httpx.Response, sent: datetime, received: datetime) -> Finding:
    """The server's Date against this machine's clock, within the request's own time."""
    try:
        theirs = parsedate_to_datetime(health.headers["date"])
    except (KeyError, TypeError, ValueError):
        return Finding("clock", False, "the server sends no Date header")
    # Date has whole seconds: the server's clock read somewhere in [sent - 1 s, received].
    early = (sent - theirs).total_seconds() - 1
    late = (theirs - received).total_seconds()
    skew = max(early, late, 0)
    detail = f"within {skew:.1f} s of this machine's" if skew else "agrees with this machine's"
    return Finding("clock", skew <= CLOCK_SKEW_SECONDS, detail)


class PreflightRefused(Exception):
    """The server would not answer the preflight offer."""


async def media_ports(http: httpx.AsyncClient, operator_token: str) -> Finding:
    """ICE over UDP with Janus, as a browser here without TURN would connect."""

    async def exchange(offer: str) -> str:
        answer = await http.post(
            "/api/v1/preflight/media",
            content=offer,
            headers={
                "Authorization": f"Bearer {operator_token}",
                "Content-Type": "application/sdp",
            },
        )
        if answer.status_code != 201:
            raise PreflightRefused(f"{answer.status_code} {answer.text[:200]}")
        return answer.text

    try:
        result = await ice_with_janus(exchange)
    except PreflightRefused as error:
        return Finding("ICE", False, f"no preflight offer answered: {error}")
    janus = ", ".join(result.offered) or "no address"
    if result.ok:
        took = f"{result.milliseconds:.1f} ms"
        return Finding("ICE", True, f"UDP to Janus at {janus} in {took}: browsers here go direct")
    return Finding("ICE", False, f"{result.error} (Janus at {janus}): browsers here need TURN")


async def relays(
    http: httpx.AsyncClient, operator_token: str, trusted: ssl.SSLContext
) -> list[Finding]:
    answer = await http.get(
        "/api/v1/preflight/ice-servers", headers={"Authorization": f"Bearer {operator_token}"}
    )
    if answer.status_code != 200:
        return [Finding("TURN", False, f"no credential: {answer.status_code} {answer.text[:200]}")]
    servers = answer.json()["ice_servers"]
    if not servers:
        return [Finding("TURN", False, "the server hands out no TURN server (SUMMITRY_TURN=off)")]
    urls = [(server, url) for server in servers for url in server["urls"]]
    trips = await asyncio.gather(
        *(
            relayed_round_trip(url, server["username"], server["credential"], trusted)
            for server, url in urls
        )
    )
    findings = []
    for trip in trips:
        if trip.ok:
            assert trip.relayed is not None
            detail = f"relayed round trip in {trip.milliseconds:.1f} ms via {trip.relayed[0]}"
        else:
            detail = str(trip.error)
        findings.append(Finding(trip.url, trip.ok, detail))
    return findings
