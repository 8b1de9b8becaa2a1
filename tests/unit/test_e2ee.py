"""The key exchange as the server sees it: which public keys it takes, who holds which
key, when a new key is needed, who makes it, and what each member may post."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from summitry.domain import e2ee
from summitry.domain.e2ee import (
    IN_FORCE_AFTER,
    MAX_WRAPPED_BYTES,
    MIN_WRAPPED_BYTES,
    Epoch,
    KeyChange,
    KeyState,
    Member,
    Wrap,
    check_wrapped,
    decode_public_key,
    fingerprint,
)
from summitry.domain.errors import Conflict, InvalidInput, NotPermitted

T0 = datetime(2021, 12, 7, 15, 0, tzinfo=UTC)
A, B, C, D = "pa", "pb", "pc", "pd"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def point() -> bytes:
    """A fresh ECDH P-256 public key, as a browser exports it ("raw")."""
    return (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    )


def public_key() -> str:
    return b64url(point())


WRAPPED = b64url(bytes(range(60)))

# Keys made once: generating P-256 keys in every hypothesis example would be slow.
KEYS = [public_key() for _ in range(12)]


def member(pid: str, key: str | None = None, at: int = 0) -> Member:
    return Member(pid, key or KEYS[ord(pid[-1]) % len(KEYS)], T0 + timedelta(seconds=at))


def epoch(
    number: int,
    made_by: str,
    members: list[Member],
    *,
    confirmed: tuple[str, ...] = (),
    in_force: bool = False,
    made_at: datetime = T0,
) -> Epoch:
    """An epoch wrapped for `members`' current keys, confirmed by `confirmed`."""
    wraps = {
        m.participant_id: Wrap(
            m.participant_id,
            made_by,
            m.public_key,
            WRAPPED,
            made_at if m.participant_id in confirmed else None,
        )
        for m in members
    }
    return Epoch(number, made_by, made_at, made_at if in_force else None, wraps)


# --- public keys and wrapped keys


def test_a_real_p256_public_key_is_accepted() -> None:
    raw = point()
    assert decode_public_key(b64url(raw)) == raw
    assert len(b64url(raw)) == 87  # 65 bytes, no padding


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b64url(point()[:64]), "65 bytes"),
        (b64url(point() + b"\x00"), "65 bytes"),
        (b64url(b"\x02" + point()[1:]), "65 bytes"),  # not the uncompressed form
        (b64url(b"\x04" + bytes(64)), "not a point on P-256"),
        ("", "base64url"),
        ("A", "base64url"),  # one character cannot be base64
        ("é" * 87, "base64url"),
    ],
)
def test_bad_public_keys_are_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as refused:
        decode_public_key(text)
    assert refused.value.field == "public_key"


def test_an_off_curve_point_is_refused() -> None:
    raw = bytearray(point())
    raw[-1] ^= 0x01  # the same x, a y that does not fit it
    with pytest.raises(InvalidInput, match="not a point on P-256"):
        decode_public_key(b64url(bytes(raw)))


@pytest.mark.parametrize(("junk", "padding"), [("####", ""), ("!!!!", ""), ("\n", "=")])
def test_public_keys_with_characters_outside_base64url_are_refused(junk: str, padding: str) -> None:
    text = public_key()
    text = text[:10] + junk + text[10:] + padding
    with pytest.raises(InvalidInput):
        decode_public_key(text)


@pytest.mark.parametrize("size", [MIN_WRAPPED_BYTES, 100, MAX_WRAPPED_BYTES])
def test_wrapped_keys_within_bounds_are_accepted(size: int) -> None:
    check_wrapped(b64url(bytes(size)))


@pytest.mark.parametrize("size", [1, 32, MIN_WRAPPED_BYTES - 1, MAX_WRAPPED_BYTES + 1, 1000])
def test_wrapped_keys_out_of_bounds_are_refused(size: int) -> None:
    with pytest.raises(InvalidInput, match="wrapped key has 60 to 256 bytes") as refused:
        check_wrapped(b64url(bytes(size)))
    assert refused.value.field == "wrapped"


def test_wrapped_keys_must_be_base64url() -> None:
    with pytest.raises(InvalidInput, match="wrapped must be base64url"):
        check_wrapped("A" * 81)


def test_fingerprint_is_short_stable_and_tells_keys_apart() -> None:
    first, second = KEYS[0], KEYS[1]
    assert fingerprint(first) == fingerprint(first)
    assert fingerprint(first) != fingerprint(second)
    assert len(fingerprint(first)) == 16
    assert first not in fingerprint(first)


# --- who makes a key, and when


def test_nobody_in_the_exchange_needs_no_key() -> None:
    state = KeyState([], [])
    assert not state.rekey_needed
    assert state.key_maker is None
    assert state.in_force is state.pending is state.newest is None


def test_members_without_a_key_need_one_and_the_first_makes_it() -> None:
    state = KeyState([member(A, at=0), member(B, at=1)], [])
    assert state.rekey_needed
    assert state.key_maker == A
    assert not state.may_receive_private(A)


def test_a_key_wrapped_for_all_and_confirmed_needs_no_new_one() -> None:
    members = [member(A, at=0), member(B, at=1)]
    state = KeyState(members, [epoch(1, A, members, confirmed=(A, B), in_force=True)])
    assert not state.rekey_needed
    assert state.key_maker is None
    assert state.may_receive_private(A) and state.may_receive_private(B)
    assert state.holds(A, state.in_force)
    assert state.in_force is not None and state.in_force.number == 1
    assert state.pending is None


def test_a_key_that_nobody_confirmed_is_made_again() -> None:
    members = [member(A, at=0), member(B, at=1)]
    state = KeyState(members, [epoch(1, A, members, in_force=True)])
    assert state.rekey_needed
    assert state.key_maker == A


def test_a_recipient_who_left_means_a_new_key_made_by_the_longest_present_holder() -> None:
    a, b, c = member(A, at=0), member(B, at=1), member(C, at=2)
    one = epoch(1, A, [a, b, c], confirmed=(A, B, C), in_force=True)
    state = KeyState([b, c], [one])  # A left: their public key is gone
    assert state.rekey_needed
    assert state.key_maker == B
    assert not state.may_receive_private(A)
    assert state.member(A) is None


def test_the_key_maker_is_a_holder_before_a_newer_member() -> None:
    a, b, c = member(A, at=0), member(B, at=1), member(C, at=2)
    one = epoch(1, B, [a, b, c], confirmed=(C,), in_force=True)  # only C confirmed
    state = KeyState([b, c], [one])
    assert state.key_maker == C


# --- anyone joining gets everyone a new key: a newcomer never receives an older one


def test_a_member_who_joined_after_the_key_gets_everyone_a_new_one() -> None:
    a, b = member(A, at=0), member(B, at=1)
    one = epoch(1, A, [a, b], confirmed=(A, B), in_force=True)
    c = member(C, at=5)
    state = KeyState([a, b, c], [one])
    assert state.rekey_needed
    assert state.key_maker == A  # the longest-present holder, never the newcomer
    assert not state.may_receive_private(C)
    with pytest.raises(InvalidInput):
        state.check_new_epoch(A, 2, {A, B})  # the newcomer too
    state.check_new_epoch(A, 2, {A, B, C})


def test_a_member_who_joined_while_a_key_was_coming_gets_a_newer_one() -> None:
    a, b = member(A, at=0), member(B, at=1)
    one = epoch(1, A, [a, b], confirmed=(B,), in_force=True)
    two = epoch(2, B, [a, b], confirmed=(B,), made_at=T0 + timedelta(seconds=10))
    c = member(C, at=11)
    state = KeyState([a, b, c], [one, two])
    assert state.pending is two and state.in_force is one
    assert state.rekey_needed and state.key_maker == B  # A has confirmed neither
    assert not state.may_receive_private(A)
    assert state.may_receive_private(B)


def test_a_reloaded_browser_gets_everyone_a_new_key() -> None:
    a, b = member(A, at=0), member(B, at=1)
    one = epoch(1, A, [a, b], confirmed=(A, B), in_force=True)
    reloaded = replace(b, public_key=KEYS[7], posted_at=T0 + timedelta(seconds=30))
    state = KeyState([a, reloaded], [one])
    assert not state.holds(B, one)
    assert not state.has_wrap(B, one)
    assert not state.may_receive_private(B)
    assert state.rekey_needed and state.key_maker == A


def test_only_the_named_member_may_make_the_next_key() -> None:
    a, b, c = member(A, at=0), member(B, at=1), member(C, at=2)
    state = KeyState([a, b, c], [])
    assert state.key_maker == A
    for other in (B, C):  # garbage wraps from anyone else never reach the others
        with pytest.raises(NotPermitted):
            state.check_new_epoch(other, 1, {A, B, C})
    state.check_new_epoch(A, 1, {A, B, C})


def test_a_key_change_waits_outside_the_exchange_for_another_coordinator() -> None:
    a, b = member(A, at=0), member(B, at=1)
    one = epoch(1, A, [a, b], confirmed=(A, B), in_force=True)
    change = KeyChange(B, KEYS[7], b.public_key, T0 + timedelta(seconds=30))
    state = KeyState([a], [one], [change])
    # Not a member: no key for the new browser, and a new one without it.
    assert not state.may_receive_private(B)
    assert state.rekey_needed and state.key_maker == A
    with pytest.raises(InvalidInput):
        state.check_new_epoch(A, 2, {A, B})
    with pytest.raises(NotPermitted):
        state.check_acceptance(B, B, KEYS[7])  # nobody vouches for himself
    with pytest.raises(Conflict):
        state.check_acceptance(A, B, b.public_key)  # not the key that waits
    with pytest.raises(Conflict):
        state.check_acceptance(B, A, a.public_key)  # no change of A waits
    state.check_acceptance(A, B, KEYS[7])


def test_with_nobody_holding_the_key_the_first_member_makes_a_new_one() -> None:
    a, b = member(A, at=0), member(B, at=1)
    one = epoch(1, A, [a], confirmed=(), in_force=True)
    state = KeyState([a, b], [one])
    assert state.rekey_needed and state.key_maker == A


# --- private feeds


def test_only_holders_of_the_key_in_force_or_the_coming_one_receive_private_feeds() -> None:
    a, b, c, d = (member(p, at=i) for i, p in enumerate((A, B, C, D)))
    one = epoch(1, A, [a, b, c], confirmed=(A, B), in_force=True)
    two = epoch(2, A, [a, b, c, d], confirmed=(C, D), made_at=T0 + timedelta(seconds=5))
    state = KeyState([a, b, c, d], [one, two])
    assert [state.may_receive_private(p) for p in (A, B, C, D, "nobody")] == [
        True,
        True,
        True,
        True,
        False,
    ]
    old = epoch(1, A, [a, b, c, d], confirmed=(A, B, C, D), in_force=True)
    unwrapped = Epoch(2, A, T0, T0)  # in force, wrapped for nobody
    state = KeyState([a, b, c, d], [old, unwrapped])
    assert state.in_force is unwrapped
    assert not any(state.may_receive_private(p) for p in (A, B, C, D))  # an old key is not enough


def test_a_wrap_is_not_a_key_until_it_is_confirmed() -> None:
    a = member(A)
    state = KeyState([a], [epoch(1, A, [a], in_force=True)])
    assert state.has_wrap(A, state.epochs[0])
    assert not state.holds(A, state.epochs[0])
    assert not state.may_receive_private(A)


# --- when a key goes in force


def test_a_key_goes_in_force_once_every_recipient_confirmed() -> None:
    a, b = member(A, at=0), member(B, at=1)
    made = T0 + timedelta(seconds=100)
    confirmed_by_one = KeyState([a, b], [epoch(1, A, [a, b], confirmed=(A,), made_at=made)])
    assert confirmed_by_one.due_in_force(made) is None
    assert confirmed_by_one.due_in_force(made + IN_FORCE_AFTER - timedelta(microseconds=1)) is None
    both = KeyState([a, b], [epoch(1, A, [a, b], confirmed=(A, B), made_at=made)])
    assert both.due_in_force(made) is both.pending


def test_a_key_goes_in_force_after_the_deadline_even_unconfirmed() -> None:
    a, b = member(A, at=0), member(B, at=1)
    made = T0 + timedelta(seconds=100)
    state = KeyState([a, b], [epoch(1, A, [a, b], made_at=made)])
    assert state.due_in_force(made + IN_FORCE_AFTER) is state.pending
    assert state.due_in_force(made + timedelta(hours=1)) is state.pending


def test_recipients_who_left_do_not_hold_a_key_back() -> None:
    a, b = member(A, at=0), member(B, at=1)
    made = T0 + timedelta(seconds=100)
    state = KeyState([a], [epoch(1, A, [a, b], confirmed=(A,), made_at=made)])
    assert state.due_in_force(made) is state.pending


def test_nothing_pending_is_never_due() -> None:
    a = member(A)
    state = KeyState([a], [epoch(1, A, [a], confirmed=(A,), in_force=True)])
    assert state.due_in_force(T0 + timedelta(days=1)) is None


# --- what a member may post


def two_holding_members() -> KeyState:
    a, b = member(A, at=0), member(B, at=1)
    return KeyState([a, b], [epoch(1, A, [a, b], confirmed=(A, B), in_force=True)])


def test_the_first_key_is_epoch_one_for_every_member() -> None:
    state = KeyState([member(A, at=0), member(B, at=1)], [])
    state.check_new_epoch(A, 1, {A, B})
    with pytest.raises(Conflict, match="the next key is epoch 1, not 2") as refused:
        state.check_new_epoch(A, 2, {A, B})
    assert refused.value.field == "epoch"
    with pytest.raises(Conflict, match="epoch 1, not 0"):
        state.check_new_epoch(A, 0, {A, B})


def test_a_new_key_must_be_wrapped_for_every_member_and_nobody_else() -> None:
    state = KeyState([member(A, at=0), member(B, at=1)], [])
    with pytest.raises(InvalidInput, match="must be wrapped for pb") as lacking:
        state.check_new_epoch(A, 1, {A})
    assert lacking.value.field == "wraps"
    with pytest.raises(InvalidInput, match="not in the call with a public key: pc"):
        state.check_new_epoch(A, 1, {A, B, C})
    with pytest.raises(InvalidInput):
        state.check_new_epoch(A, 1, set())


def test_only_members_make_keys() -> None:
    state = KeyState([member(A, at=0), member(B, at=1)], [])
    with pytest.raises(NotPermitted, match="post your public key"):
        state.check_new_epoch(C, 1, {A, B})


def test_no_new_key_while_the_one_in_use_is_fine() -> None:
    state = two_holding_members()
    with pytest.raises(Conflict, match="no new key is needed"):
        state.check_new_epoch(A, 2, {A, B})
    with pytest.raises(Conflict, match="epoch 2, not 3"):
        state.check_new_epoch(A, 3, {A, B})


def test_after_a_recipient_left_the_next_epoch_skips_them() -> None:
    a, b, c = member(A, at=0), member(B, at=1), member(C, at=2)
    state = KeyState([a, b], [epoch(1, A, [a, b, c], confirmed=(A, B, C), in_force=True)])
    state.check_new_epoch(A, 2, {A, B})
    with pytest.raises(InvalidInput, match="pc"):
        state.check_new_epoch(A, 2, {A, B, C})


def test_the_last_epoch_is_the_last() -> None:
    a = member(A)
    state = KeyState([a], [epoch(e2ee.MAX_EPOCH, A, [a], in_force=True)])
    with pytest.raises(Conflict, match="used every key epoch"):
        state.check_new_epoch(A, e2ee.MAX_EPOCH + 1, {A})


def test_confirm_needs_a_wrap_for_the_callers_current_key() -> None:
    a, b = member(A, at=0), member(B, at=1)
    one = epoch(1, A, [a, b], in_force=True)
    assert KeyState([a, b], [one]).check_confirm(B, 1) is one
    reloaded = replace(b, public_key=KEYS[9])
    state = KeyState([a, reloaded], [one])
    with pytest.raises(Conflict, match="no key of epoch 1 was wrapped for your public key"):
        state.check_confirm(B, 1)
    with pytest.raises(Conflict):
        state.check_confirm(A, 2)  # no such epoch
    with pytest.raises(Conflict):
        KeyState([a, b, member(C, at=3)], [one]).check_confirm(C, 1)  # joined later
    with pytest.raises(Conflict):
        KeyState([a], [one]).check_confirm(B, 1)  # left the call


# --- a simulated summit: random joins, reloads and departures, browsers doing their part


class Exchange:
    """The server's bookkeeping (as summits.py keeps it) driven by browsers that follow
    the protocol: the key maker makes, recipients confirm."""

    def __init__(self) -> None:
        self.now = T0
        self.members: list[Member] = []
        self.epochs: list[Epoch] = []
        self.keys = 0
        self.left_since_newest = False

    @property
    def state(self) -> KeyState:
        return KeyState(list(self.members), list(self.epochs))

    def tick(self, seconds: float = 0.1) -> None:
        self.now += timedelta(seconds=seconds)

    def fresh_key(self) -> str:
        self.keys += 1
        return KEYS[self.keys % len(KEYS)]

    def join(self, pid: str) -> None:
        if self.state.member(pid) is None:
            self.members.append(Member(pid, self.fresh_key(), self.now))

    def reload(self, pid: str) -> None:
        if self.state.member(pid) is not None:
            self.members = [m for m in self.members if m.participant_id != pid]
            self.members.append(Member(pid, self.fresh_key(), self.now))

    def leave(self, pid: str) -> None:
        if self.state.member(pid) is not None:
            self.members = [m for m in self.members if m.participant_id != pid]
            self.left_since_newest = True

    def make(self) -> bool:
        state = self.state
        maker = state.key_maker
        if maker is None:
            return False
        number = (state.newest.number if state.newest else 0) + 1
        recipients = {m.participant_id for m in self.members}
        state.check_new_epoch(maker, number, recipients)
        wraps = {
            m.participant_id: Wrap(m.participant_id, maker, m.public_key, WRAPPED)
            for m in self.members
        }
        self.epochs.append(Epoch(number, maker, self.now, None, wraps))
        self.left_since_newest = False
        return True

    def confirm(self, pid: str) -> bool:
        confirmed = False
        state = self.state
        for known in [e for e in (state.in_force, state.pending) if e is not None]:
            wrap = known.wraps.get(pid)
            if wrap is None or wrap.confirmed_at is not None:
                continue
            if self.state.has_wrap(pid, known):
                self.state.check_confirm(pid, known.number)
                wraps = {**known.wraps, pid: replace(wrap, confirmed_at=self.now)}
                self.replace_epoch(replace(known, wraps=wraps))
                confirmed = True
        return confirmed

    def settle(self) -> None:
        due = self.state.due_in_force(self.now)
        if due is not None:
            self.replace_epoch(replace(due, in_force_at=self.now))

    def replace_epoch(self, new: Epoch) -> None:
        self.epochs = [new if e.number == new.number else e for e in self.epochs]

    def browsers_do_their_part(self) -> None:
        """Every browser reacts until nothing moves, as `refresh()` in e2ee.js does."""
        for _ in range(20):
            moved = self.make()
            for m in list(self.members):
                moved = self.confirm(m.participant_id) or moved
            self.settle()
            if not moved and self.state.pending is None:
                return
            if not moved:
                self.tick(IN_FORCE_AFTER.total_seconds())
        raise AssertionError(f"the key exchange did not settle: {self.state}")


def check_invariants(state: KeyState) -> None:
    present = {m.participant_id for m in state.members}
    for pid in present | {A, B, C, D, "nobody"}:
        if state.may_receive_private(pid):
            assert pid in present
    assert [e.number for e in state.epochs] == list(range(1, len(state.epochs) + 1))
    if state.key_maker is not None:
        assert state.rekey_needed and state.key_maker in present
    elif state.members:
        assert not state.rekey_needed
    for known in state.epochs:  # nobody receives a key made before their browser joined
        for recipient, wrap in known.wraps.items():
            member = state.member(recipient)
            if member is not None and wrap.public_key == member.public_key:
                assert member.posted_at <= known.made_at
    pending = state.pending
    if pending is not None:
        assert state.in_force is None or state.in_force.number < pending.number


people = st.sampled_from([A, B, C, D])
moves = st.lists(
    st.tuples(st.sampled_from(["join", "leave", "reload", "settle", "wait"]), people),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(moves)
def test_random_calls_settle_with_every_member_holding_the_key(
    script: list[tuple[str, str]],
) -> None:
    exchange = Exchange()
    for move, pid in script:
        if move == "join":
            exchange.join(pid)
        elif move == "leave":
            exchange.leave(pid)
        elif move == "reload":
            exchange.reload(pid)
        elif move == "wait":
            exchange.tick(0.7)
            exchange.settle()
        else:
            exchange.browsers_do_their_part()
        check_invariants(exchange.state)
        exchange.tick()
    exchange.browsers_do_their_part()
    state = exchange.state
    check_invariants(state)
    assert state.key_maker is None
    assert state.rekey_needed is (not state.members and bool(state.epochs))  # the next joiner
    assert state.pending is None
    for m in state.members:
        assert state.may_receive_private(m.participant_id)
        assert state.holds(m.participant_id, state.in_force)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["join", "reload"]), people), max_size=12),
    st.integers(min_value=0, max_value=3),
)
def test_a_departure_always_brings_a_new_key_that_skips_the_leaver(
    script: list[tuple[str, str]], which: int
) -> None:
    exchange = Exchange()
    for pid in (A, B):
        exchange.join(pid)
    exchange.browsers_do_their_part()
    for move, pid in script:
        getattr(exchange, move)(pid)
        exchange.tick()
        exchange.browsers_do_their_part()
    before = exchange.state
    newest = before.newest
    assert newest is not None and newest is before.in_force
    assert {m.participant_id for m in before.members} <= set(newest.wraps)
    leaver = before.members[which % len(before.members)].participant_id
    exchange.leave(leaver)
    after = exchange.state
    assert after.rekey_needed
    assert not after.may_receive_private(leaver)
    assert after.key_maker == after.members[0].participant_id  # every one left holds it
    exchange.browsers_do_their_part()
    final = exchange.state
    assert final.in_force is not None and final.in_force.number == newest.number + 1
    assert leaver not in final.in_force.wraps
    assert all(final.holds(m.participant_id, final.in_force) for m in final.members)


@given(st.lists(st.sampled_from([A, B, C, D]), min_size=1, max_size=4, unique=True))
def test_once_every_member_confirmed_the_newest_and_nobody_left_no_key_is_needed(
    order: list[str],
) -> None:
    members = [member(pid, at=i) for i, pid in enumerate(order)]
    state = KeyState(members, [epoch(1, order[0], members, confirmed=tuple(order))])
    assert not state.rekey_needed
    assert state.due_in_force(T0) is state.pending
    assert all(state.may_receive_private(pid) for pid in order)
