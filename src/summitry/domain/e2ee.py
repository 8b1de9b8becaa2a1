"""End-to-end encryption of the private phase, as the server sees it: it relays public
keys and wrapped media keys it cannot open, and decides from what the browsers confirm
who may receive private feeds, when a new key is needed and who should make or share it.

Browsers hold every secret. A media key ("epoch") is made in one participant's browser
and wrapped there for every member's public key; each recipient confirms that it could
unwrap it. A new epoch is in force once every recipient confirmed it, or after
`IN_FORCE_AFTER` at the latest; from then on senders encrypt with it.

A key is never handed to someone who joins after it was made: anyone joining, like
anyone leaving, gets everyone a new key, so a newcomer cannot open what was said (and
recorded by a curious server) before he came in. Only the member the server names may
make the next key."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric import ec

from summitry.domain.errors import Conflict, InvalidInput, NotPermitted

IN_FORCE_AFTER = timedelta(seconds=1)
PUBLIC_KEY_BYTES = 65  # an uncompressed P-256 point
MIN_WRAPPED_BYTES = 12 + 32 + 16  # IV, a 256-bit key, the GCM tag
MAX_WRAPPED_BYTES = 256
MAX_EPOCH = 65535  # frames carry the epoch in two bytes
BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


def decode_public_key(text: str) -> bytes:
    """A browser's ECDH P-256 public key, raw and base64url: refused unless it is a
    point on the curve."""
    raw = _base64url(text, "public_key")
    if len(raw) != PUBLIC_KEY_BYTES or raw[0] != 4:
        raise InvalidInput(
            f"public_key must be an uncompressed P-256 point ({PUBLIC_KEY_BYTES} bytes)",
            field="public_key",
        )
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError as error:
        raise InvalidInput("public_key is not a point on P-256", field="public_key") from error
    return raw


def check_wrapped(text: str) -> None:
    raw = _base64url(text, "wrapped")
    if not MIN_WRAPPED_BYTES <= len(raw) <= MAX_WRAPPED_BYTES:
        raise InvalidInput(
            f"a wrapped key has {MIN_WRAPPED_BYTES} to {MAX_WRAPPED_BYTES} bytes",
            field="wrapped",
        )


def check_wraps(wraps: dict[str, str]) -> None:
    for wrapped in wraps.values():
        check_wrapped(wrapped)


def fingerprint(public_key: str) -> str:
    """What the audit trail records of a public key."""
    return hashlib.sha256(public_key.encode()).hexdigest()[:16]


def _base64url(text: str, name: str) -> bytes:
    """Strict: the browsers decode what is relayed, so nothing else may pass."""
    if not BASE64URL.fullmatch(text):
        raise InvalidInput(f"{name} must be base64url without padding", field=name)
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as error:
        raise InvalidInput(f"{name} must be base64url", field=name) from error


@dataclass(frozen=True)
class Member:
    """An admitted participant whose browser posted its public key."""

    participant_id: str
    public_key: str
    posted_at: datetime


@dataclass(frozen=True)
class KeyChange:
    """A participant whose browser posted another public key than the one pinned for them
    in this summit (another browser, or someone else's): not a member, so given no media
    key, until a coordinator accepts the change."""

    participant_id: str
    public_key: str  # the key posted now
    pinned_key: str  # the key everyone saw before
    posted_at: datetime


@dataclass(frozen=True)
class Wrap:
    recipient_id: str
    sender_id: str
    public_key: str  # the recipient's key it was wrapped for
    wrapped: str
    confirmed_at: datetime | None = None


@dataclass(frozen=True)
class Epoch:
    number: int
    made_by: str
    made_at: datetime
    in_force_at: datetime | None = None
    wraps: dict[str, Wrap] = field(default_factory=dict)  # by recipient


@dataclass(frozen=True)
class KeyState:
    members: list[Member]  # in the order they posted their keys, each on its pinned key
    epochs: list[Epoch]  # ascending
    changes: list[KeyChange] = field(default_factory=list)  # keys waiting for acceptance

    @property
    def in_force(self) -> Epoch | None:
        return next((e for e in reversed(self.epochs) if e.in_force_at is not None), None)

    @property
    def pending(self) -> Epoch | None:
        newest = self.newest
        return newest if newest is not None and newest.in_force_at is None else None

    @property
    def newest(self) -> Epoch | None:
        return self.epochs[-1] if self.epochs else None

    def member(self, participant_id: str) -> Member | None:
        return next((m for m in self.members if m.participant_id == participant_id), None)

    def holds(self, participant_id: str, epoch: Epoch | None) -> bool:
        """Whether this participant's current browser confirmed it holds `epoch`."""
        member = self.member(participant_id)
        wrap = epoch.wraps.get(participant_id) if epoch is not None else None
        return (
            member is not None
            and wrap is not None
            and wrap.public_key == member.public_key
            and wrap.confirmed_at is not None
        )

    def has_wrap(self, participant_id: str, epoch: Epoch) -> bool:
        member = self.member(participant_id)
        wrap = epoch.wraps.get(participant_id)
        return member is not None and wrap is not None and wrap.public_key == member.public_key

    def may_receive_private(self, participant_id: str) -> bool:
        """Only a browser that holds the key in force (or the one coming) gets private feeds."""
        return self.holds(participant_id, self.in_force) or (
            self.pending is not None and self.holds(participant_id, self.pending)
        )

    @property
    def rekey_needed(self) -> bool:
        """No key yet, someone who received the newest key is no longer in the call,
        someone in the call did not receive it (joined since, or reloaded), or no browser
        in the call holds it (none could open it)."""
        newest = self.newest
        if newest is None:
            return bool(self.members)
        present = {m.participant_id for m in self.members}
        if any(recipient not in present for recipient in newest.wraps):
            return True
        if not all(self.has_wrap(m.participant_id, newest) for m in self.members):
            return True
        if newest.in_force_at is None:  # give its recipients the time to confirm
            return False
        return not any(self.holds(m.participant_id, newest) for m in self.members)

    @property
    def key_maker(self) -> str | None:
        """Who should make the next key: the longest-present holder, else the first member."""
        if not self.rekey_needed:
            return None
        holders = [m for m in self.members if self.holds(m.participant_id, self.newest)]
        chosen = holders or self.members
        return chosen[0].participant_id if chosen else None

    def epoch(self, number: int) -> Epoch | None:
        return next((e for e in self.epochs if e.number == number), None)

    def due_in_force(self, now: datetime) -> Epoch | None:
        """The pending epoch, once everyone it was wrapped for confirmed, or it is late."""
        pending = self.pending
        if pending is None:
            return None
        recipients = [m.participant_id for m in self.members if m.participant_id in pending.wraps]
        if all(self.holds(r, pending) for r in recipients) or now - pending.made_at >= (
            IN_FORCE_AFTER
        ):
            return pending
        return None

    # --- what a member may post

    def check_new_epoch(self, maker: str, number: int, recipients: set[str]) -> None:
        if self.member(maker) is None:
            raise NotPermitted("post your public key before you make a key")
        expected = (self.newest.number if self.newest else 0) + 1
        if number != expected:
            raise Conflict(f"the next key is epoch {expected}, not {number}", field="epoch")
        if number > MAX_EPOCH:
            raise Conflict("this summit has used every key epoch", field="epoch")
        if not self.rekey_needed:
            raise Conflict("no new key is needed now", field="epoch")
        if maker != self.key_maker:
            raise NotPermitted("another member was named to make the next key")
        members = self._members_only(recipients)
        if lacking := sorted(members - recipients):
            raise InvalidInput(f"the key must be wrapped for {', '.join(lacking)}", field="wraps")

    def _members_only(self, recipients: set[str]) -> set[str]:
        """The members, once every recipient is one of them."""
        members = {m.participant_id for m in self.members}
        if unknown := sorted(recipients - members):
            raise InvalidInput(
                f"not in the call with a public key: {', '.join(unknown)}", field="wraps"
            )
        return members

    def check_acceptance(self, coordinator: str, participant_id: str, public_key: str) -> None:
        """A coordinator in the call accepts another participant's new key, as they see it."""
        if coordinator == participant_id:
            raise NotPermitted("another coordinator must accept your new key")
        change = next((c for c in self.changes if c.participant_id == participant_id), None)
        if change is None:
            raise Conflict("no new key of that participant waits for acceptance")
        if change.public_key != public_key:
            raise Conflict("that participant's key changed again: compare the new one")

    def check_failure(self, participant_id: str, number: int) -> Epoch:
        """A member's browser could not open its wrap of `number`: that wrap is taken
        back, so the next key is made (for it too) if it was the newest."""
        epoch = self.epoch(number)
        if epoch is None or not self.has_wrap(participant_id, epoch):
            raise Conflict(f"no key of epoch {number} was wrapped for your public key")
        if self.holds(participant_id, epoch):
            raise Conflict(f"you confirmed that you opened the key of epoch {number}")
        return epoch

    def check_confirm(self, participant_id: str, number: int) -> Epoch:
        epoch = self.epoch(number)
        if epoch is None or not self.has_wrap(participant_id, epoch):
            raise Conflict(f"no key of epoch {number} was wrapped for your public key")
        return epoch
