# Owned by the copier-pgdbm template: `copier update` replaces this file, so do not edit it.
"""``self.db``, where a library's methods send their SQL: every call, in both modes.

These tests use a table of their own, so that they hold whatever the author's migrations
create.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from .library import Library, _bootstrap, errors

MakeLib = Callable[..., Library]

CREATE = "CREATE TABLE {{tables.probe}} (id INT PRIMARY KEY, note TEXT NOT NULL)"
INSERT = "INSERT INTO {{tables.probe}} (id, note) VALUES ($1, $2)"
COUNT = "SELECT count(*) FROM {{tables.probe}}"


class Boom(Exception):
    pass


@pytest.fixture
async def db_lib(make_lib: MakeLib) -> Library:
    """An initialized instance in a fresh schema, with an empty probe table."""
    lib = make_lib()
    await lib.initialize()
    await lib.db.execute(CREATE)
    return lib


async def test_each_call_reaches_the_schema_and_returns_what_it_says(db_lib: Library) -> None:
    db = db_lib.db
    assert await db.execute(INSERT, 1, "one") == "INSERT 0 1"
    await db.execute_many(INSERT, [(2, "two"), (3, "three")])
    assert await db.fetch_value(COUNT) == 3
    row = await db.fetch_one("SELECT id, note FROM {{tables.probe}} WHERE id = $1", 2)
    assert (row["id"], row["note"]) == (2, "two")
    assert await db.fetch_one("SELECT id FROM {{tables.probe}} WHERE id = $1", 99) is None
    rows = await db.fetch_all("SELECT id FROM {{tables.probe}} ORDER BY id DESC")
    assert [r["id"] for r in rows] == [3, 2, 1]
    where = await db.fetch_value(
        "SELECT relnamespace::regnamespace::text FROM pg_class WHERE oid = $1::regclass",
        f'"{db_lib.schema}".probe',
    )
    assert where == db_lib.schema


async def test_a_transaction_commits_together_or_not_at_all(db_lib: Library) -> None:
    async with db_lib.db.transaction() as tx:
        await tx.execute(INSERT, 1, "kept")
        await tx.execute_many(INSERT, [(2, "kept too")])
        assert await tx.fetch_value(COUNT) == 2
    seen: list[int] = []

    async def write_then_fail() -> None:
        async with db_lib.db.transaction() as tx:
            await tx.execute(INSERT, 3, "rolled back")
            seen.extend(r["id"] for r in await tx.fetch_all("SELECT id FROM {{tables.probe}}"))
            raise Boom

    with pytest.raises(Boom):
        await write_then_fail()
    assert sorted(seen) == [1, 2, 3]  # inside, the transaction saw its own write
    assert await db_lib.db.fetch_value(COUNT) == 2
    notes = await db_lib.db.fetch_all("SELECT note FROM {{tables.probe}} ORDER BY id")
    assert [r["note"] for r in notes] == ["kept", "kept too"]


async def test_a_nested_transaction_is_a_savepoint(db_lib: Library) -> None:
    """An inner block that fails undoes only its own writes."""

    async def fail_inside(outer: Any) -> None:
        async with outer.transaction() as inner:
            await inner.execute(INSERT, 2, "inner")
            raise Boom

    async with db_lib.db.transaction() as outer:
        await outer.execute(INSERT, 1, "outer")
        with pytest.raises(Boom):
            await fail_inside(outer)
        assert await outer.fetch_one("SELECT note FROM {{tables.probe}} WHERE id = 2") is None
    assert await db_lib.db.fetch_value(COUNT) == 1


async def test_a_database_error_is_the_drivers_own(db_lib: Library) -> None:
    """A constraint violation is asyncpg's exception, not a connection error."""
    await db_lib.db.execute(INSERT, 1, "one")
    with pytest.raises(asyncpg.UniqueViolationError):
        await db_lib.db.execute(INSERT, 1, "again")
    with pytest.raises(asyncpg.NotNullViolationError):
        await db_lib.db.execute_many(INSERT, [(5, None)])


async def _cut_by_the_server(db_lib: Library, tx: Any) -> None:
    # The backend serving the transaction is terminated (a failover, a restart, an
    # idle-in-transaction timeout), and the event loop reads the server's goodbye: from
    # then on asyncpg answers each call with an InterfaceError.
    pid = await tx.fetch_value("SELECT pg_backend_pid()")
    await db_lib.db.fetch_value("SELECT pg_terminate_backend($1)", pid)
    for _ in range(500):
        if _bootstrap.connection_closed(tx._executor):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the terminated connection still looks open after 5 s")


# Each call of the block once its connection is lost ("ends": none, then COMMIT).
CALLS_AFTER_THE_CUT: dict[str, Callable[[Any], Awaitable[Any]]] = {
    "fetch_one": lambda tx: tx.fetch_one(COUNT),
    "fetch_all": lambda tx: tx.fetch_all(COUNT),
    "fetch_value": lambda tx: tx.fetch_value(COUNT),
    "execute": lambda tx: tx.execute(INSERT, 2, "after"),
    "execute_many": lambda tx: tx.execute_many(INSERT, [(2, "after")]),
}


@pytest.mark.parametrize("then", [*CALLS_AFTER_THE_CUT, "ends"])
async def test_a_transaction_whose_connection_the_server_closed_raises_the_connection_error(
    db_lib: Library, then: str
) -> None:
    """Whichever call the block makes after its connection was lost, or if it just ends
    (COMMIT), DatabaseConnectionError comes out, not asyncpg's "the underlying connection
    is closed"; nothing is written and the instance goes on with a new connection."""

    async def lose_the_connection() -> None:
        async with db_lib.db.transaction() as tx:
            await tx.execute(INSERT, 1, "lost")
            await _cut_by_the_server(db_lib, tx)
            if then in CALLS_AFTER_THE_CUT:
                await CALLS_AFTER_THE_CUT[then](tx)

    with pytest.raises(errors.DatabaseConnectionError) as raised:
        await lose_the_connection()
    # asyncpg's words for a closed connection, translated (not a query's own failure).
    assert isinstance(raised.value.__cause__, asyncpg.InterfaceError)
    assert await db_lib.db.fetch_value(COUNT) == 0


async def test_the_blocks_own_error_on_a_lost_connection_comes_out_whole(
    db_lib: Library,
) -> None:
    """The block raised while its connection was gone: that error comes out, with the
    exception it was handling, not the failed end of the transaction."""

    async def fail_inside() -> None:
        async with db_lib.db.transaction() as tx:
            await _cut_by_the_server(db_lib, tx)
            try:
                raise KeyError("first")
            except KeyError:
                raise ValueError("the block's own") from None

    with pytest.raises(ValueError, match="the block's own") as raised:
        await fail_inside()
    assert isinstance(raised.value.__context__, KeyError)
    assert raised.value.__suppress_context__


async def test_a_transactions_database_used_after_its_block_keeps_the_drivers_error(
    db_lib: Library,
) -> None:
    """Calls on a transaction's Database once its block is over are the caller's bug (the
    connection went back to the pool), not a lost connection."""
    async with db_lib.db.transaction() as tx:
        await tx.execute(INSERT, 1, "kept")
    with pytest.raises(asyncpg.InterfaceError, match="released back to the pool"):
        await tx.fetch_value(COUNT)
    assert await db_lib.db.fetch_value(COUNT) == 1


async def test_a_misused_connection_in_a_transaction_keeps_the_drivers_error(
    db_lib: Library,
) -> None:
    """Two calls at once on a transaction's one connection: asyncpg's InterfaceError
    ("another operation is in progress") is the caller's bug, not a lost connection."""

    async def both_at_once() -> None:
        async with db_lib.db.transaction() as tx:
            slow = asyncio.ensure_future(tx.fetch_value("SELECT pg_sleep(0.05)"))
            await asyncio.sleep(0)  # the slow one is on the wire
            try:
                await tx.fetch_value(COUNT)
            finally:
                await slow  # the block ends (and rolls back) once the connection is free

    with pytest.raises(asyncpg.InterfaceError, match="another operation is in progress"):
        await both_at_once()
    assert await db_lib.db.fetch_value(COUNT) == 0


async def test_the_blocks_own_errors_pass_through_a_transaction_unchanged(
    db_lib: Library,
) -> None:
    """An OSError raised by the caller's code inside the block is theirs, not a lost
    connection: the same exception comes out, and the transaction is rolled back."""
    error = ConnectionResetError("the caller's own socket")

    async def fail_inside() -> None:
        async with db_lib.db.transaction() as tx:
            await tx.execute(INSERT, 1, "rolled back")
            raise error

    with pytest.raises(ConnectionResetError) as raised:
        await fail_inside()
    assert raised.value is error
    assert await db_lib.db.fetch_value(COUNT) == 0
