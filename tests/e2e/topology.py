"""A small internet in network namespaces, shaped like the real one between two ministries:
a server on a public segment; two homes, each behind a NAT (MASQUERADE) on a router of its
own; one ministry whose firewall lets out nothing but TCP to port 443. The test's own
namespace joins the public segment, as an operator on the internet would. Every address
comes from 198.18.0.0/15 (the public segment is 198.19.0.0/24)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

SEGMENT = "198.19.0"
WEB_ADDRESS = f"{SEGMENT}.1"  # summitry over HTTPS on 443
MEDIA_ADDRESS = f"{SEGMENT}.2"  # Janus, and coturn (TURN over TLS on 443 too)
OPERATOR_ADDRESS = f"{SEGMENT}.99"  # the test process


def run(*command: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip()}")


@dataclass(frozen=True)
class Site:
    """A network behind a router: a NAT, and maybe a firewall."""

    name: str
    number: int  # its router's address on the public segment, and its inside subnet
    only_tcp_443: bool = False

    @property
    def inside(self) -> str:
        return f"198.19.{self.number}.2"


@dataclass
class Topology:
    prefix: str
    sites: list[Site]
    namespaces: list[str] = field(default_factory=list)

    def namespace(self, role: str) -> str:
        return f"{self.prefix}-{role}"

    def exec_in(self, role: str) -> tuple[str, ...]:
        """The command prefix that runs a program in `role`'s network."""
        return ("ip", "netns", "exec", self.namespace(role))

    def build(self) -> None:
        server = self._add(self.namespace("srv"))
        run("ip", "-n", server, "link", "add", "wan", "type", "bridge")
        for address in (WEB_ADDRESS, MEDIA_ADDRESS):
            run("ip", "-n", server, "addr", "add", f"{address}/24", "dev", "wan")
        run("ip", "-n", server, "link", "set", "wan", "up")
        # The operator: this process's namespace, on the public segment.
        run("ip", "link", "add", "op0", "type", "veth", "peer", "name", "op", "netns", server)
        run("ip", "addr", "add", f"{OPERATOR_ADDRESS}/24", "dev", "op0")
        run("ip", "link", "set", "op0", "up")
        self._attach(server, "op")
        for site in self.sites:
            self._site(server, site)

    def _add(self, name: str) -> str:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
        run("ip", "netns", "add", name)
        self.namespaces.append(name)
        run("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def _attach(self, server: str, port: str) -> None:
        run("ip", "-n", server, "link", "set", port, "master", "wan")
        run("ip", "-n", server, "link", "set", port, "up")

    def _site(self, server: str, site: Site) -> None:
        router = self._add(self.namespace(f"{site.name}-gw"))
        host = self._add(self.namespace(site.name))
        run("ip", "-n", router, "link", "add", "out", "type", "veth", "peer", "name",
            f"s{site.number}", "netns", server)  # fmt: skip
        self._attach(server, f"s{site.number}")
        run("ip", "-n", router, "addr", "add", f"{SEGMENT}.{site.number}/24", "dev", "out")
        run("ip", "-n", router, "link", "set", "out", "up")
        run("ip", "-n", router, "link", "add", "in", "type", "veth", "peer", "name", "eth0",
            "netns", host)  # fmt: skip
        run("ip", "-n", router, "addr", "add", f"198.19.{site.number}.1/24", "dev", "in")
        run("ip", "-n", router, "link", "set", "in", "up")
        run("ip", "-n", host, "addr", "add", f"{site.inside}/24", "dev", "eth0")
        run("ip", "-n", host, "link", "set", "eth0", "up")
        run("ip", "-n", host, "route", "add", "default", "via", f"198.19.{site.number}.1")
        inside = self.exec_in(f"{site.name}-gw")
        run(*inside, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        run(*inside, "iptables", "-t", "nat", "-A", "POSTROUTING", "-o", "out", "-j",
            "MASQUERADE")  # fmt: skip
        if site.only_tcp_443:
            run(*inside, "iptables", "-P", "FORWARD", "DROP")
            run(*inside, "iptables", "-A", "FORWARD", "-m", "conntrack", "--ctstate",
                "ESTABLISHED,RELATED", "-j", "ACCEPT")  # fmt: skip
            run(*inside, "iptables", "-A", "FORWARD", "-i", "in", "-p", "tcp", "--dport",
                "443", "-j", "ACCEPT")  # fmt: skip

    def chromium(self, site: Site, folder: Path, binary: str) -> Path:
        """A Chromium that runs inside `site`'s network (Playwright keeps its pipes)."""
        wrapper = folder / f"chromium-{site.name}"
        wrapper.write_text(f'#!/bin/sh\nexec {" ".join(self.exec_in(site.name))} {binary} "$@"\n')
        wrapper.chmod(0o755)
        return wrapper

    def tear_down(self) -> None:
        for name in reversed(self.namespaces):
            pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
            for pid in pids.stdout.split():
                subprocess.run(["kill", "-9", pid], capture_output=True)
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
        self.namespaces.clear()


def topology(sites: list[Site]) -> Topology:
    return Topology(f"i{os.getpid() % 100000}", sites)
