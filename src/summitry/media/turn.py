"""TURN for callers behind NATs and firewalls: coturn, started and watched by summitry
like Janus, accepting the time-limited credentials of `security/turn.py` (its
`use-auth-secret` mode). coturn relays only to the media server: never to loopback,
link-local or private addresses, so TURN cannot reach the server's network."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from summitry.media.supervisor import WATCH_SECONDS, alive, terminate

log = logging.getLogger(__name__)

# Relay ports above the kernel's ephemeral range (32768-60999, where the broadcast chain
# takes its forwarding ports) and Janus's media range (20000-32000).
RELAY_PORTS = (61000, 65535)
# Peers coturn never relays to, whatever a client asks: the allowed media address is let
# through before these apply (`allowed-peer-ip`).
DENIED_PEERS = (
    "0.0.0.0-0.255.255.255",
    "10.0.0.0-10.255.255.255",
    "100.64.0.0-100.127.255.255",
    "127.0.0.0-127.255.255.255",
    "169.254.0.0-169.254.255.255",
    "172.16.0.0-172.31.255.255",
    "192.0.0.0-192.0.0.255",
    "192.168.0.0-192.168.255.255",
    "198.18.0.0-198.19.255.255",
    "224.0.0.0-255.255.255.255",
    "::1",
    "::ffff:0.0.0.0-::ffff:255.255.255.255",
    "fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
)


class TurnNotFound(RuntimeError):
    """coturn is not installed."""


@dataclass(frozen=True)
class TurnSettings:
    work_dir: Path
    # Where callers reach it and it relays from: the media address; every interface when
    # None. The media address is also the one private address it relays to (Janus's).
    media_address: str | None
    port: int = 3478
    public_address: str | None = None  # behind a 1:1 NAT, the address callers see
    realm: str = "summitry"
    # TURN over TLS on this port with this certificate and key, for networks that let
    # only TCP 443 out; none without a certificate.
    tls: tuple[Path, Path] | None = None
    tls_port: int = 5349


def find_coturn() -> Path:
    found = shutil.which("turnserver")
    if found is None:
        raise TurnNotFound("coturn is not installed (apt-get install coturn)")
    return Path(found)


def turn_config(settings: TurnSettings, secret: str) -> str:
    """coturn's configuration for these settings."""
    folder = settings.work_dir
    address = settings.media_address
    bound = [f"listening-ip={address}", f"relay-ip={address}"] if address else []
    external = (
        [f"external-ip={settings.public_address}" + (f"/{address}" if address else "")]
        if settings.public_address
        else []
    )
    allowed = [f"allowed-peer-ip={address}"] if address else []
    tls = (
        [
            f"tls-listening-port={settings.tls_port}",
            f"cert={settings.tls[0]}",
            f"pkey={settings.tls[1]}",
            "no-tlsv1",
            "no-tlsv1_1",
        ]
        if settings.tls
        else ["no-tls"]
    )
    lines = [
        *bound,
        f"listening-port={settings.port}",
        *tls,
        *external,
        f"min-port={RELAY_PORTS[0]}",
        f"max-port={RELAY_PORTS[1]}",
        "use-auth-secret",
        f"static-auth-secret={secret}",
        f"realm={settings.realm}",
        "fingerprint",
        "no-cli",
        "no-dtls",
        "no-multicast-peers",
        "no-software-attribute",
        "stale-nonce=600",
        *allowed,
        *(f"denied-peer-ip={peers}" for peers in DENIED_PEERS),
        f"pidfile={folder / 'turnserver.pid'}",
        "log-file=stdout",
        "simple-log",
    ]
    return "\n".join(lines) + "\n"


def write_turn_config(settings: TurnSettings, secret: str) -> Path:
    """coturn's configuration for one run, readable by its owner only."""
    settings.work_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = settings.work_dir / "turnserver.conf"
    path.touch(mode=0o600)
    path.write_text(turn_config(settings, secret))
    return path


class TurnSupervisor:
    """coturn beside summitry: started, restarted when it dies, stopped at the end.

    Like Janus, coturn runs in a session of its own, so relayed calls go on when summitry
    itself crashes; the next summitry adopts that coturn if it runs the configuration this
    one would write, and stops it otherwise (a coturn nobody supervises, with an old
    secret or port, must not linger)."""

    def __init__(self, settings: TurnSettings, secret: str) -> None:
        self.settings = settings
        self.secret = secret
        self.process: asyncio.subprocess.Process | None = None
        self.pid: int | None = None
        self.adopted = False
        self._watcher: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def _config_path(self) -> Path:
        return self.settings.work_dir / "turnserver.conf"

    @property
    def _pid_path(self) -> Path:
        return self.settings.work_dir / "turnserver.pid"

    async def start(self) -> None:
        if not await self._adopt():
            await self._launch()
        self._watcher = asyncio.create_task(self._watch())

    def _leftover(self) -> int | None:
        """The coturn a previous summitry started here, if it still runs."""
        try:
            pid = int(self._pid_path.read_text().strip())
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        ours = str(self._config_path).encode() in command
        return pid if ours and alive(pid) else None

    async def _adopt(self) -> bool:
        pid = self._leftover()
        if pid is None:
            return False
        try:
            same = self._config_path.read_text() == turn_config(self.settings, self.secret)
        except OSError:
            same = False
        if same and await self._answers():
            self.pid, self.adopted = pid, True
            log.info("adopted the running coturn (pid %s)", pid)
            return True
        log.info("stopping the coturn (pid %s) a previous run left with other settings", pid)
        await terminate(pid, self.process)
        return False

    async def _launch(self) -> None:
        config = write_turn_config(self.settings, self.secret)
        logfile = (self.settings.work_dir / "turnserver.log").open("ab")
        self.process = await asyncio.create_subprocess_exec(
            str(find_coturn()),
            "-c",
            str(config),
            stdout=logfile,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        logfile.close()
        self.pid, self.adopted = self.process.pid, False
        deadline = asyncio.get_running_loop().time() + 10
        while not await self._answers():
            if self.process.returncode is not None:
                log_file = self.settings.work_dir / "turnserver.log"
                raise TurnNotFound(f"coturn exited at start (see {log_file})")
            if asyncio.get_running_loop().time() > deadline:
                raise TurnNotFound("coturn did not listen within 10 s")
            await asyncio.sleep(0.05)
        tls = f", over TLS on {self.settings.tls_port}" if self.settings.tls else ""
        log.info("TURN on %s:%d%s", self.settings.media_address or "*", self.settings.port, tls)

    async def _answers(self) -> bool:
        """Whether coturn accepts TCP on its ports (it listens on UDP and TCP alike)."""
        ports = [self.settings.port] + ([self.settings.tls_port] if self.settings.tls else [])
        for port in ports:
            try:
                _, writer = await asyncio.open_connection(
                    self.settings.media_address or "127.0.0.1", port
                )
            except OSError:
                return False
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        return True

    async def _watch(self) -> None:
        while not self._stopping:
            if self.process is not None and self.process.pid == self.pid:
                await self.process.wait()
            else:  # adopted: not our child, so watched by its pid
                await self._gone()
            if self._stopping:
                return
            log.warning("coturn (pid %s) exited: starting it again", self.pid)
            await asyncio.sleep(0.5)
            with contextlib.suppress(TurnNotFound):
                await self._launch()

    async def _gone(self) -> None:
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            if self.pid is None or not alive(self.pid):
                return

    async def stop(self) -> None:
        self._stopping = True
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        if self.pid is not None:
            await terminate(self.pid, self.process)
