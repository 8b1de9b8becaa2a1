"""Typed errors of the domain. Each carries a message meant for the person who caused it;
the web layer maps each class to one HTTP status in one place."""

from __future__ import annotations


class SummitryError(Exception):
    """Base of every error summitry reports to a caller."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(SummitryError):
    """The request itself is wrong (bad zone, naive time, impossible lengths...)."""


class BadDescription(InvalidInput):
    """A session description (SDP) that cannot be used."""


class MediaUnavailable(SummitryError):
    """The media server is not answering right now (restarting, or gone)."""


class MediaRefused(SummitryError):
    """The media server refused what was asked of it (a room that would not let someone
    in, a subscription it would not make); the message gives its reason."""


class IllegalTransition(SummitryError):
    """The phase machine does not allow this event in the current phase."""


class StaleVersion(SummitryError):
    """The caller acted on a version of the summit that is no longer current."""


class NotPermitted(SummitryError):
    """The caller's grant does not allow this action."""


class NotAuthenticated(SummitryError):
    """No valid grant: missing, forged, expired or revoked."""


class NotIssuedHere(NotAuthenticated):
    """A credential this server never issued: forged, mistyped or guessed. Unlike an
    expired or revoked grant, each one counts against the caller's address."""


class NotFound(SummitryError):
    """The thing asked for does not exist (or is not visible to the caller)."""


class Conflict(SummitryError):
    """The request clashes with what exists (a duplicate participant, a readout already out)."""
