"""Runs the local Janus: a generated configuration (API on 127.0.0.1 only, random
secrets, ICE on the chosen address, no sample mountpoints), start, readiness, restart
when it dies, stop on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import shutil
import signal
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from summitry.media.janus import Janus, JanusUnavailable

log = logging.getLogger(__name__)

MIN_VERSION = 1400
READY_TIMEOUT = 15.0
RESTART_BACKOFF = (0.2, 1.0, 3.0)


class JanusNotFound(Exception):
    pass


def cache_prefix() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.environ.get("SUMMITRY_JANUS_PREFIX") or Path(base) / "summitry" / "janus-1.4")


def find_janus() -> Path:
    """The Janus binary to run: $SUMMITRY_JANUS_BIN, the set-up's build, or one on PATH."""
    candidates = [
        os.environ.get("SUMMITRY_JANUS_BIN"),
        str(cache_prefix() / "bin" / "janus"),
        shutil.which("janus"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise JanusNotFound(
        "no Janus 1.4 found: run scripts/build-janus.sh (the README's "
        "commands do) or set SUMMITRY_JANUS_URL to an external Janus"
    )


def janus_version(binary: Path) -> int:
    import subprocess

    output = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, timeout=10
    ).stdout
    match = re.search(r"Janus version:\s*(\d+)", output)
    return int(match.group(1)) if match else 0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class JanusSettings:
    binary: Path
    work_dir: Path
    ice_address: str | None = None
    rtp_ports: tuple[int, int] = (20000, 40000)
    debug_level: int = 4


@dataclass(frozen=True)
class JanusEndpoint:
    url: str
    admin_url: str
    api_secret: str
    admin_key: str


def write_config(settings: JanusSettings, http_port: int, admin_port: int) -> JanusEndpoint:
    """The configuration folder for one run of Janus, readable by its owner only."""
    prefix = settings.binary.resolve().parent.parent
    folder = settings.work_dir
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    api_secret, admin_key = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    ice = ""
    interface = ""
    if settings.ice_address:
        interface = f'\tinterface = "{settings.ice_address}"\n'
        ice = f'\tice_enforce_list = "{settings.ice_address}"\n'
    low, high = settings.rtp_ports
    files = {
        "janus.jcfg": (
            "general: {\n"
            f'\tconfigs_folder = "{folder}"\n'
            f'\tplugins_folder = "{prefix}/lib/janus/plugins"\n'
            f'\ttransports_folder = "{prefix}/lib/janus/transports"\n'
            f'\tevents_folder = "{prefix}/lib/janus/events"\n'
            f'\tloggers_folder = "{prefix}/lib/janus/loggers"\n'
            f"\tdebug_level = {settings.debug_level}\n"
            f"{interface}"
            f'\tapi_secret = "{api_secret}"\n'
            f'\tadmin_secret = "{admin_key}"\n'
            "\tsession_timeout = 60\n"
            "}\n"
            f'media: {{\n\trtp_port_range = "{low}-{high}"\n}}\n'
            f"nat: {{\n{ice}}}\n"
            'plugins: {\n\tdisable = "libjanus_echotest.so"\n}\n'
            'transports: {\n\tdisable = "libjanus_websockets.so"\n}\n'
        ),
        "janus.transport.http.jcfg": (
            "general: {\n"
            f'\tbase_path = "/janus"\n\thttp = true\n\tport = {http_port}\n'
            '\tip = "127.0.0.1"\n\thttps = false\n}\n'
            "admin: {\n"
            f'\tadmin_base_path = "/admin"\n\tadmin_http = true\n\tadmin_port = {admin_port}\n'
            '\tadmin_ip = "127.0.0.1"\n\tadmin_https = false\n}\n'
        ),
        "janus.plugin.videoroom.jcfg": (
            f'general: {{\n\tadmin_key = "{admin_key}"\n\tlock_rtp_forward = true\n}}\n'
        ),
        # No mountpoints here: the sample ones open UDP ports on every interface.
        "janus.plugin.streaming.jcfg": f'general: {{\n\tadmin_key = "{admin_key}"\n}}\n',
    }
    for name, text in files.items():
        path = folder / name
        path.write_text(text)
        path.chmod(0o600)
    return JanusEndpoint(
        f"http://127.0.0.1:{http_port}/janus",
        f"http://127.0.0.1:{admin_port}/admin",
        api_secret,
        admin_key,
    )


Restarted = Callable[[JanusEndpoint, int], Awaitable[None]]


class JanusSupervisor:
    """One local Janus. `generation` counts its starts; `on_restart` runs after each
    restart (the media plane recreates its rooms there)."""

    def __init__(self, settings: JanusSettings) -> None:
        self.settings = settings
        self.endpoint: JanusEndpoint | None = None
        self.generation = 0
        self.on_restart: list[Restarted] = []
        self._process: asyncio.subprocess.Process | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    async def start(self) -> JanusEndpoint:
        version = await asyncio.to_thread(janus_version, self.settings.binary)
        if version < MIN_VERSION:
            raise JanusNotFound(
                f"{self.settings.binary} is Janus {version}; summitry needs "
                f"{MIN_VERSION} or newer (run scripts/build-janus.sh)"
            )
        endpoint = await self._launch()
        self._watcher = asyncio.create_task(self._watch(), name="janus-supervisor")
        return endpoint

    async def _launch(self) -> JanusEndpoint:
        http_port, admin_port = free_port(), free_port()
        endpoint = write_config(self.settings, http_port, admin_port)
        log_path = self.settings.work_dir / "janus.log"
        with log_path.open("ab") as log_file:
            self._process = await asyncio.create_subprocess_exec(
                str(self.settings.binary),
                "-F",
                str(self.settings.work_dir),
                "-C",
                str(self.settings.work_dir / "janus.jcfg"),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
            )
        janus = Janus(endpoint.url, endpoint.api_secret)
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                while True:
                    if self._process.returncode is not None:
                        raise JanusUnavailable(f"Janus exited at start; see {log_path}")
                    with contextlib.suppress(JanusUnavailable, ValueError):
                        if (await janus.info()).get("janus") == "server_info":
                            break
                    await asyncio.sleep(0.05)
        except TimeoutError as error:
            self._process.kill()
            raise JanusUnavailable(
                f"Janus did not answer within {READY_TIMEOUT:.0f} s; see {log_path}"
            ) from error
        finally:
            await janus.close()
        self.generation += 1
        self.endpoint = endpoint
        log.info("Janus %s ready at %s (pid %s)", self.generation, endpoint.url, self._process.pid)
        return endpoint

    async def _watch(self) -> None:
        attempt = 0
        while True:
            assert self._process is not None
            code = await self._process.wait()
            if self._stopping:
                return
            log.warning("Janus exited with %s; restarting", code)
            await asyncio.sleep(RESTART_BACKOFF[min(attempt, len(RESTART_BACKOFF) - 1)])
            try:
                endpoint = await self._launch()
            except JanusUnavailable:
                attempt += 1
                log.exception("Janus restart failed")
                continue
            attempt = 0
            for callback in self.on_restart:
                try:
                    await callback(endpoint, self.generation)
                except Exception:  # one failing listener must not stop the supervisor
                    log.exception("after-restart step failed")

    async def stop(self) -> None:
        self._stopping = True
        if self._process is not None and self._process.returncode is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self._process.wait(), 5)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
