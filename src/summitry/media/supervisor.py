"""Runs the local Janus: a generated configuration (API on 127.0.0.1 only, random
secrets, ICE on the chosen address, no sample mountpoints), start, readiness, restart
when it dies, stop on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
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
    public_address: str | None = None  # behind a 1:1 NAT: what Janus offers instead
    # Below the kernel's ephemeral ports (32768 and up), from which the broadcast chain
    # takes its forwarding ports: the two never compete for a port.
    rtp_ports: tuple[int, int] = (20000, 32000)
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
    if settings.public_address:
        ice += f'\tnat_1_1_mapping = "{settings.public_address}"\n'
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
WATCH_SECONDS = 0.2
UNANSWERED_LIMIT = 3


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):  # a zombie has exited even though its pid exists
        if Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z"):
            return False
    return True


async def terminate(pid: int, process: asyncio.subprocess.Process | None) -> None:
    """Stop `pid` (SIGTERM, SIGKILL after 5 s) and reap it if it is our `process`."""
    if not alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    for _ in range(50):
        if not alive(pid):
            break
        await asyncio.sleep(0.1)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if process is not None and process.pid == pid:
        await process.wait()


async def answers(endpoint: JanusEndpoint) -> bool:
    janus = Janus(endpoint.url, endpoint.api_secret)
    try:
        async with asyncio.timeout(2):
            return (await janus.info()).get("janus") == "server_info"
    except (TimeoutError, JanusUnavailable, ValueError):
        return False
    finally:
        await janus.close()


class JanusSupervisor:
    """One local Janus. `generation` counts the Janus processes it has run; `on_restart`
    runs after each restart (the media plane recreates its rooms there).

    Janus runs in a session of its own and its endpoint is kept in the work folder, so
    when summitry itself crashes the calls go on, and the next summitry adopts the same
    Janus (`adopted`) instead of starting another. A clean stop stops Janus too."""

    def __init__(self, settings: JanusSettings) -> None:
        self.settings = settings
        self.endpoint: JanusEndpoint | None = None
        self.generation = 0
        self.adopted = False
        self.on_restart: list[Restarted] = []
        self._process: asyncio.subprocess.Process | None = None
        self._pid: int | None = None
        self._watcher: asyncio.Task[None] | None = None

    @property
    def state_path(self) -> Path:
        return self.settings.work_dir / "janus.state.json"

    @property
    def pid(self) -> int | None:
        return self._pid

    async def start(self) -> JanusEndpoint:
        version = await asyncio.to_thread(janus_version, self.settings.binary)
        if version < MIN_VERSION:
            raise JanusNotFound(
                f"{self.settings.binary} is Janus {version}; summitry needs "
                f"{MIN_VERSION} or newer (run scripts/build-janus.sh)"
            )
        endpoint = await self._adopt() or await self._launch()
        self._watcher = asyncio.create_task(self._watch(), name="janus-supervisor")
        return endpoint

    async def _adopt(self) -> JanusEndpoint | None:
        """The Janus a previous summitry left running, if it still answers."""
        try:
            state = json.loads(self.state_path.read_text())
            pid = int(state["pid"])
            endpoint = JanusEndpoint(**state["endpoint"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not alive(pid) or not await answers(endpoint):
            return None
        self._pid, self.endpoint, self.adopted = pid, endpoint, True
        self.generation += 1
        log.info("adopted the running Janus (pid %s) at %s", pid, endpoint.url)
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
                start_new_session=True,
            )
        self._pid, self.adopted = self._process.pid, False
        try:
            async with asyncio.timeout(READY_TIMEOUT):
                while not await answers(endpoint):
                    if self._process.returncode is not None:
                        raise JanusUnavailable(f"Janus exited at start; see {log_path}")
                    await asyncio.sleep(0.05)
        except TimeoutError as error:
            self._process.kill()
            raise JanusUnavailable(
                f"Janus did not answer within {READY_TIMEOUT:.0f} s; see {log_path}"
            ) from error
        self.generation += 1
        self.endpoint = endpoint
        state = {"pid": self._pid, "endpoint": dataclasses.asdict(endpoint)}
        self.state_path.write_text(json.dumps(state))
        self.state_path.chmod(0o600)
        log.info("Janus %s ready at %s (pid %s)", self.generation, endpoint.url, self._pid)
        return endpoint

    async def _watch(self) -> None:
        """Restarts Janus when it exits or stops answering."""
        unanswered = 0
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            assert self._pid is not None and self.endpoint is not None
            if alive(self._pid):
                unanswered = 0 if await answers(self.endpoint) else unanswered + 1
                if unanswered < UNANSWERED_LIMIT:
                    continue
                log.warning("Janus (pid %s) stopped answering; restarting it", self._pid)
                await self._terminate()
            else:
                log.warning("Janus (pid %s) exited; restarting it", self._pid)
            unanswered = 0
            await self._relaunch()

    async def _relaunch(self) -> None:
        for attempt in itertools.count():
            await asyncio.sleep(RESTART_BACKOFF[min(attempt, len(RESTART_BACKOFF) - 1)])
            try:
                endpoint = await self._launch()
                break
            except JanusUnavailable:
                log.exception("Janus restart failed")
        for callback in self.on_restart:
            try:
                await callback(endpoint, self.generation)
            except Exception:  # one failing listener must not stop the supervisor
                log.exception("after-restart step failed")

    async def _terminate(self) -> None:
        if self._pid is not None:
            await terminate(self._pid, self._process)

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        await self._terminate()
        self.state_path.unlink(missing_ok=True)
