"""Batches in steps (prepare, write, commit) as the gateway overlaps them, on both backends:
write order kept, nothing visible or acknowledged before the commit, connections released;
JSON payloads kept as sent; the fast path of the JSON-compatibility check agrees with the
full walk."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, event, text

from devicetrust.domain import FixedClock
from devicetrust.domain.errors import InvalidInput
from devicetrust.domain.ids import PhysicalId
from devicetrust.identity import IdentityService, UnitSpec
from devicetrust.ingest import InboundMessage, MessageKind, MessageStore, Outcome
from devicetrust.ingest.encodings import (
    DecodeLimits,
    _check_json_compatible,
    _plainly_compatible,
    check_json_compatible,
)
from devicetrust.store.database import Database

ACTOR = "operator:test"
T = MessageKind.TELEMETRY


def unit(identity: IdentityService) -> PhysicalId:
    return identity.register(UnitSpec("RA-7", {}), actor=ACTOR).physical_id


def report(pid: PhysicalId, body: object, clock: FixedClock) -> InboundMessage:
    return InboundMessage(pid, T, json.dumps(body).encode(), clock.now())


def checked_out(db: Database) -> int:
    return int(db.engine.pool.checkedout())  # type: ignore[attr-defined]


def test_overlapping_batches_keep_their_write_order(
    db: Database, identity: IdentityService, clock: FixedClock
) -> None:
    store = MessageStore(db, clock)
    pid = unit(identity)
    first = store.prepare_batch([report(pid, {"n": 1}, clock)])
    second = store.prepare_batch([report(pid, {"n": 2}, clock)])
    written_first = store.write(first)
    written_second = store.write(second)
    assert [r.outcome for r in written_second.commit()] == [Outcome.STORED]
    assert [r.outcome for r in written_first.commit()] == [Outcome.STORED]
    # Same receive time (a fixed clock): the table's order is the order they were written.
    assert [m.payload for m in store.telemetry_of(pid)] == [{"n": 2}, {"n": 1}]
    assert checked_out(db) == 0


def test_one_report_in_two_batches_written_at_once_is_stored_once(
    db: Database, identity: IdentityService, clock: FixedClock
) -> None:
    """The gateway's sink writes batches at once: a resend in a later batch while the first
    copy's transaction is open waits on the unique key (PostgreSQL), then is a duplicate."""
    store = MessageStore(db, clock)
    pid = unit(identity)
    first = store.write_batch([report(pid, {"n": 1}, clock)])
    with ThreadPoolExecutor(1) as pool:
        second = pool.submit(store.write_batch, [report(pid, {"n": 1}, clock)])
        assert [r.outcome for r in first.commit()] == [Outcome.STORED]
        assert [r.outcome for r in second.result(30).commit()] == [Outcome.DUPLICATE]
    assert [m.payload for m in store.telemetry_of(pid)] == [{"n": 1}]
    assert checked_out(db) == 0


def test_a_batch_rolled_back_or_discarded_stores_nothing_and_releases_its_connection(
    db: Database, identity: IdentityService, clock: FixedClock
) -> None:
    store = MessageStore(db, clock)
    pid = unit(identity)
    store.prepare_batch([report(pid, {"n": 1}, clock)]).discard()
    written = store.write_batch([report(pid, {"n": 2}, clock)])
    written.rollback()
    if db.is_postgres:  # SQLite commits in `write`: there a rollback comes too late
        assert store.telemetry_of(pid) == []
    assert checked_out(db) == 0
    # The same report again is stored (nothing of the rolled-back batch stayed behind).
    assert store.store(report(pid, {"n": 1}, clock)).outcome is Outcome.STORED


@pytest.mark.postgres
def test_a_batch_is_invisible_until_committed(pg_db: Database, clock: FixedClock) -> None:
    store = MessageStore(pg_db, clock)
    pid = unit(IdentityService(pg_db, clock))
    written = store.write_batch([report(pid, {"n": 1}, clock)])
    assert store.telemetry_of(pid) == []  # another connection sees nothing yet
    written.commit()
    assert [m.payload for m in store.telemetry_of(pid)] == [{"n": 1}]
    with pytest.raises(RuntimeError):
        written.commit()  # finished once


@pytest.mark.postgres
def test_a_json_payload_is_kept_as_sent(pg_db: Database, clock: FixedClock) -> None:
    store = MessageStore(pg_db, clock)
    pid = unit(IdentityService(pg_db, clock))
    sent = b'{"torque":  [1.50, 2e0],\n "note": "caf\\u00e9"}'
    result = store.store(InboundMessage(pid, T, sent, clock.now()))
    assert result.outcome is Outcome.STORED
    with pg_db.engine.connect() as conn:
        kept = conn.execute(text("SELECT payload::text FROM device_messages")).scalar_one()
    assert kept == sent.decode()
    assert store.telemetry_of(pid)[0].payload == {"torque": [1.5, 2.0], "note": "café"}


def test_cbor_and_msgpack_payloads_are_stored_as_their_json(
    db: Database, identity: IdentityService, clock: FixedClock
) -> None:
    import cbor2
    import msgpack  # type: ignore[import-untyped]

    store = MessageStore(db, clock)
    pid = unit(identity)
    messages = [
        InboundMessage(pid, T, cbor2.dumps({"n": 1}), clock.now(), content_type="application/cbor"),
        InboundMessage(
            pid, T, msgpack.packb({"n": 2}), clock.now(), content_type="application/msgpack"
        ),
    ]
    assert [r.outcome for r in store.store_batch(messages)] == [Outcome.STORED] * 2
    assert sorted(m.payload["n"] for m in store.telemetry_of(pid)) == [1, 2]


# ---- the JSON-compatibility check: fast path and full walk agree ---------------------------

_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**66), max_value=2**66),
    st.floats(),
    st.text(max_size=3),
    st.binary(max_size=2),
)
_DOC = st.recursive(
    _LEAF,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=2), st.integers(0, 3)), inner, max_size=4),
    ),
    max_leaves=30,
)


@settings(max_examples=500, deadline=None)
@given(
    st.dictionaries(st.text(max_size=2), _DOC, max_size=5), st.integers(1, 6), st.integers(1, 40)
)
def test_the_fast_compatibility_check_agrees_with_the_full_walk(
    document: dict[str, Any], depth: int, values: int
) -> None:
    limits = DecodeLimits(max_depth=depth, max_values=values)
    try:
        _check_json_compatible(document, limits)
        accepted = True
    except InvalidInput:
        accepted = False
    assert _plainly_compatible(document, limits) is accepted
    if not accepted:  # the public check names the problem the full walk finds
        with pytest.raises(InvalidInput):
            check_json_compatible(document, limits)


@pytest.mark.parametrize("stream", ["diagnostics", "telemetry"])
def test_history_queries_use_their_streams_partial_index(
    db: Database, identity: IdentityService, clock: FixedClock, stream: str
) -> None:
    """Migration 0010 indexes each stream's rows only: the query must name its stream so
    that the planner of either backend can use that index (a bound parameter would not)."""
    store = MessageStore(db, clock)
    pid = unit(identity)
    identity.create_logical("line-03-left-welding-12", actor=ACTOR)
    identity.bind("line-03-left-welding-12", pid, actor=ACTOR)
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "FROM device_messages" in statement:
            seen.append((statement, params))

    event.listen(Engine, "before_cursor_execute", capture)  # SQLite reads: another engine
    try:
        if stream == "diagnostics":
            store.diagnostics_of("line-03-left-welding-12")
        else:
            store.telemetry_of(pid)
    finally:
        event.remove(Engine, "before_cursor_execute", capture)
    (statement, params), = seen
    with db.engine.connect() as conn:
        if db.is_postgres:
            conn.exec_driver_sql("SET enable_seqscan = off")  # a tiny table: force a choice
            plan = conn.exec_driver_sql("EXPLAIN " + statement, params).scalars().all()
        else:
            plan = [r[-1] for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement,
                                                        params)]
    assert any(f"ix_device_messages_{stream}" in line for line in plan), plan
