"""Tables. Instants are stored as UTC and always come back timezone-aware."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from summitry.security.audit import GENESIS


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime in and out, on SQLite (naive storage) and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are never stored")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class SummitRow(Base):
    __tablename__ = "summits"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    agenda: Mapped[str] = mapped_column(Text, default="")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    planned_seconds: Mapped[int] = mapped_column(Integer)
    public_seconds: Mapped[int] = mapped_column(Integer)
    lobby_lead_seconds: Mapped[int] = mapped_column(Integer)
    end_grace_seconds: Mapped[int] = mapped_column(Integer)
    go_live_consent: Mapped[str] = mapped_column(String(16))
    phase: Mapped[str] = mapped_column(String(16), index=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    consents: Mapped[list[str]] = mapped_column(JSON, default=list)
    public_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    private_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    empty_since: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The head of the summit's audit trail: its newest record, written with it.
    audit_seq: Mapped[int] = mapped_column(Integer, default=0)
    audit_head: Mapped[str] = mapped_column(String(64), default=GENESIS)


class SideRow(Base):
    __tablename__ = "sides"
    __table_args__ = (UniqueConstraint("summit_id", "position"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    summit_id: Mapped[str] = mapped_column(ForeignKey("summits.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(120))
    time_zone: Mapped[str] = mapped_column(String(64))


class ParticipantRow(Base):
    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("side_id", "name_key"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    summit_id: Mapped[str] = mapped_column(ForeignKey("summits.id", ondelete="CASCADE"), index=True)
    side_id: Mapped[str] = mapped_column(ForeignKey("sides.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))
    name_key: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(16))
    presence: Mapped[str] = mapped_column(String(16))
    grant_id: Mapped[str] = mapped_column(String(32))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ReadoutRow(Base):
    __tablename__ = "readouts"

    summit_id: Mapped[str] = mapped_column(
        ForeignKey("summits.id", ondelete="CASCADE"), primary_key=True
    )
    side_id: Mapped[str] = mapped_column(
        ForeignKey("sides.id", ondelete="CASCADE"), primary_key=True
    )
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    embargo_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AuditRow(Base):
    __tablename__ = "audit_records"

    summit_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # The server's Ed25519 signature over the hash (none on records made before signing).
    signature: Mapped[str | None] = mapped_column(String(100), nullable=True)


class PublicKeyRow(Base):
    """The ECDH public key of a participant's browser while it is in the call."""

    __tablename__ = "e2ee_public_keys"

    participant_id: Mapped[str] = mapped_column(
        ForeignKey("participants.id", ondelete="CASCADE"), primary_key=True
    )
    summit_id: Mapped[str] = mapped_column(ForeignKey("summits.id", ondelete="CASCADE"), index=True)
    public_key: Mapped[str] = mapped_column(String(100))
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PinnedKeyRow(Base):
    """The public key everyone accepts for a participant in a summit: the first one their
    browser posted, or the one a coordinator accepted since. Another key posted for them
    waits for acceptance, and gets no media key meanwhile."""

    __tablename__ = "e2ee_pins"

    participant_id: Mapped[str] = mapped_column(
        ForeignKey("participants.id", ondelete="CASCADE"), primary_key=True
    )
    summit_id: Mapped[str] = mapped_column(ForeignKey("summits.id", ondelete="CASCADE"), index=True)
    public_key: Mapped[str] = mapped_column(String(100))
    pinned_at: Mapped[datetime] = mapped_column(UTCDateTime)


class KeyEpochRow(Base):
    """A private-phase media key, known by number only: the key itself never leaves the
    browsers."""

    __tablename__ = "e2ee_epochs"

    summit_id: Mapped[str] = mapped_column(
        ForeignKey("summits.id", ondelete="CASCADE"), primary_key=True
    )
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    made_by: Mapped[str] = mapped_column(String(32))
    made_at: Mapped[datetime] = mapped_column(UTCDateTime)
    in_force_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class WrappedKeyRow(Base):
    """A media key wrapped in one browser for one recipient's public key."""

    __tablename__ = "e2ee_wrapped_keys"

    summit_id: Mapped[str] = mapped_column(
        ForeignKey("summits.id", ondelete="CASCADE"), primary_key=True
    )
    epoch: Mapped[int] = mapped_column(Integer, primary_key=True)
    recipient_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    sender_id: Mapped[str] = mapped_column(String(32))
    public_key: Mapped[str] = mapped_column(String(100))
    wrapped: Mapped[str] = mapped_column(String(400))
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
