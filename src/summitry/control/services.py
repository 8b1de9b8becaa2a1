"""The control plane's services, built together on one unit of work: each command takes
the summit's lock and one transaction, applies the domain's rules, persists the change
with its audit record, then carries out the effects and announces them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from summitry.control.audit_trail import AuditTrail
from summitry.control.call import CallMedia
from summitry.control.catalog import Catalog
from summitry.control.consoles import Consoles
from summitry.control.events import EventHub
from summitry.control.keys import KeyExchange
from summitry.control.media import MediaPlane, MediaStatus
from summitry.control.phase_control import PhaseControl
from summitry.control.public import PublicSide
from summitry.control.readouts import Readouts
from summitry.control.roster import Roster
from summitry.control.unit import Clock, Spawn, SystemClock, UnitOfWork
from summitry.control.views import Links
from summitry.domain.sdp import PeerPolicy
from summitry.security.audit import AuditKey
from summitry.security.turn import TurnRelay


@dataclass(frozen=True)
class Services:
    hub: EventHub
    catalog: Catalog
    roster: Roster
    phases: PhaseControl
    call: CallMedia
    keys: KeyExchange
    public: PublicSide
    readouts: Readouts
    audit: AuditTrail
    media: MediaStatus | None


def build_services(
    sessions: async_sessionmaker[AsyncSession],
    grant_secret: bytes,
    audit_key: AuditKey,
    links: Links,
    hub: EventHub,
    spawn: Spawn,
    clock: Clock | None = None,
    media: MediaPlane | None = None,
    peers: PeerPolicy | None = None,
    turn: TurnRelay | None = None,
) -> Services:
    peers = peers or PeerPolicy()
    work = UnitOfWork(sessions, clock or SystemClock(), audit_key)
    consoles = Consoles()
    keys = KeyExchange(work, hub.announce, spawn, media)
    return Services(
        hub=hub,
        catalog=Catalog(work, grant_secret, links),
        roster=Roster(work, hub.announce, grant_secret, links, keys, consoles, media),
        phases=PhaseControl(work, hub.announce, keys, consoles, media),
        call=CallMedia(work, hub.announce, keys, media, media, peers, turn),
        keys=keys,
        public=PublicSide(work, links, media, peers, turn),
        readouts=Readouts(work, hub.announce),
        audit=AuditTrail(work),
        media=media,
    )
