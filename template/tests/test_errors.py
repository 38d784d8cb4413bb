# Owned by the copier-pgdbm template: `copier update` replaces this file, so do not edit it.
"""What the library's errors say: the cause, where, what to do, and never the password."""

from __future__ import annotations

import asyncio
import pickle
import re
import socket
from collections.abc import Callable
from typing import Any

import asyncpg
import pgdbm
import pgdbm.errors
import pytest

from .library import PACKAGE, Library, _bootstrap, _dualmode, errors

SECRET = "s3cret-pw"


def _status(other_modules: tuple[str, ...] = ()) -> _bootstrap.MigrationStatus:
    return _bootstrap.MigrationStatus(
        schema="orders",
        module_name=f"{PACKAGE}_orders",
        applied=(),
        pending=("001_initial.sql",),
        drifted=(),
        other_modules=other_modules,
    )


def _failure(message: str, cause: BaseException | None, filename: str | None) -> Exception:
    error = pgdbm.errors.MigrationError(message, migration_file=filename)
    error.__cause__ = cause
    failure: Exception = _bootstrap.migration_failure(error, _status(("other_orders",)), {})
    return failure


def test_a_failed_migration_names_the_file_the_schema_and_the_cause() -> None:
    failure = _failure("failed", ValueError("division by zero"), "002_more.sql")
    assert isinstance(failure, errors.MigrationFailedError)
    assert failure.filename == "002_more.sql"
    assert str(failure) == (
        "migration 002_more.sql failed in schema 'orders': ValueError: division by zero"
    )


def test_a_failed_migration_without_a_cause_says_what_pgdbm_said() -> None:
    failure = _failure("checksum table unreadable", None, None)
    assert isinstance(failure, errors.MigrationFailedError)
    assert failure.filename == "?"
    assert str(failure) == "migration ? failed in schema 'orders': checksum table unreadable"


def test_only_a_duplicate_object_in_a_shared_schema_is_a_schema_conflict() -> None:
    """Another package's migrations in the schema matter only when a name clashes."""
    clash = _failure("failed", asyncpg.DuplicateTableError("relation exists"), "001_initial.sql")
    assert isinstance(clash, errors.SchemaConflictError)
    assert "holds the migrations of other_orders: two libraries" in str(clash)
    other = _failure("failed", asyncpg.DivisionByZeroError("boom"), "001_initial.sql")
    assert type(other) is errors.MigrationFailedError


def test_a_duplicate_object_in_a_schema_of_its_own_is_a_plain_failure() -> None:
    error = pgdbm.errors.MigrationError("failed", migration_file="001_initial.sql")
    error.__cause__ = asyncpg.DuplicateTableError("relation exists")
    failure = _bootstrap.migration_failure(error, _status(()), {})
    assert type(failure) is errors.MigrationFailedError


def test_a_connection_error_names_the_cause_and_hides_the_password() -> None:
    cause = OSError(f"connect to app:{SECRET}@db.internal failed")
    error = _bootstrap.connection_error(cause, "host=db.internal port=5432", SECRET)
    assert isinstance(error, errors.DatabaseConnectionError)
    assert error.target == "host=db.internal port=5432"
    assert str(error) == (
        "cannot reach PostgreSQL at host=db.internal port=5432: "
        "OSError: connect to app:***@db.internal failed"
    )
    # Long, it is masked wherever it shows; written as a connection string writes it, too.
    long_secret = "k3Xv9wQpL2zT"  # 12 characters: the shortest looked for bare
    cause = OSError(f"server said {long_secret}; dsn host=h password={SECRET}")
    assert str(_bootstrap.connection_error(cause, "host=h", long_secret)).endswith(
        "OSError: server said ***; dsn host=h password=***"
    )


def test_a_connect_timeout_says_what_it_means() -> None:
    error = _bootstrap.connection_error(TimeoutError(), "host=h port=1")
    assert str(error) == "cannot reach PostgreSQL at host=h port=1: TimeoutError: no answer in time"
    error = _bootstrap.connection_error(OSError(), "host=h port=1")
    assert str(error) == "cannot reach PostgreSQL at host=h port=1: OSError"


@pytest.mark.parametrize(
    "dsn",
    [
        f"postgresql://app:pw/{SECRET}@db/orders",  # the rest would be read as a port
        f"postgresql://app:pw?{SECRET}@db/orders",  # ... or as a query
        f"postgresql://app:pw#{SECRET}@db/orders",
        f"postgresql://app:pw[{SECRET}]@db/orders",  # ... or as an IPv6 host
        # Brackets Python 3.11's urlsplit lets through (it checks only the first [...] as
        # a host), refused as on Python 3.10, which reads any: the same on every Python.
        f"postgresql://app:pw[::1]{SECRET}@db/orders",
        f"postgresql://app:p@w]{SECRET}@[::1]/orders",
        f"postgresql://app:[v1.{SECRET}@[::1]/orders",  # "[v1.…@[::1" read as IPvFuture
        # An @ in a password: asyncpg reads the host from the first @, urlsplit from the last.
        f"postgresql://app:p@x:{SECRET}@127.0.0.1:1/orders",  # the rest read as a port
        f"postgresql://app:p@{SECRET}@127.0.0.1:1/orders",  # ... or as a host to look up
        f"postgresql://app@tenant:pw{SECRET}@db/orders",  # ... in the user name too
        f"postgresql://app:p@ss/{SECRET}@127.0.0.1:1/orders",  # ... or as a database
        f"postgresql://app:p@ss?{SECRET}@127.0.0.1:1/orders",  # ... or as a query
        f"postgresql://app@db/orders?password=p&{SECRET}",  # a query field asyncpg refuses
        f"postgresql://app@db/orders?password=p&&sslmode={SECRET}",
        "postgresql://app@db/team@orders",  # an @ in a database name is encoded too
        f"postgresql://app:12?a={SECRET}@db:6432/orders?sslmode=prefer",  # a setting's value
        f"postgresql://app:p@ss?{SECRET}@db/orders?sslmode=prefer",  # ... or its name
        f"postgresql://app:1234?user={SECRET}@db/orders",  # ... or the user
        "postgresql://db/orders?user=app@tenant",  # so an @ in a query is encoded too
        "postgresql://app:pw@db1,/orders",  # an empty host, on which asyncpg fails
        f"postgresql://app:1234/{SECRET}@db/orders",  # digits, then the rest as a path
        f"postgresql://app:1234?{SECRET}@db/orders",
        f"postgresql://app:1234?x=y&{SECRET}@db/orders",
        f"postgresql://app:1234#{SECRET}@db/orders",
        "postgresql://db:99999/orders",
        "postgresql://db:port/orders",
        # With no host in the URL, asyncpg reads the query's hosts and ports the same way.
        "postgresql:///orders?host=db&port=64x32",
        "postgresql:///orders?host=db:64x32",
        "postgresql:///orders?host=db&port=65536",
        "postgresql:///orders?host=db&port=-1",
        "postgresql:///orders?host=db1,&port=5432",
        "postgresql:///orders?host=db1,db2,db3&port=5432,5433",  # ports to match the hosts
        "postgresql:///orders?port=5432,",
        "postgresql:///orders?host=[::1",
        "postgresql:///orders?host=db:64%2F32",  # decoded, the / would end the host's port
        "postgresql://app:pw@db[::1]/orders",  # a bracket not opening the host
        "postgresql://app:pw@[::1]x/orders",  # asyncpg drops what follows ] but a port
        "postgresql:///orders?host=[::1]]",
        "postgresql:///orders?host=db[::1]",
        "postgresql:///orders?host=db]",
        f"host=db user=app password={SECRET}",  # libpq's form, which asyncpg does not read
        f"mysql://app:{SECRET}@db/orders",
        f"{SECRET}",
    ],
)
def test_a_connection_string_asyncpg_cannot_read_is_refused_without_showing_it(dsn: str) -> None:
    with pytest.raises(ValueError, match=r"^\w+\(\): connection_string ") as error:
        Library(connection_string=dsn)
    assert str(error.value).startswith(
        (
            f"{Library.__name__}(): connection_string is not a postgresql:// URL (asyncpg",
            f"{Library.__name__}(): connection_string cannot be read as a URL: its host, port,",
        )
    )
    assert 'connection_string="postgresql://user:password@host:5432/dbname"' in str(error.value)
    assert SECRET not in str(error.value)
    assert "99999" not in str(error.value)


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://postgres:@/postgres?host=/tmp/pg",  # the embedded server's
        "postgresql://app:pw%2F%3F%23%40%3A@db:5432/orders",  # percent-encoded
        "postgresql://db/orders?user=app%40tenant&password=p/w?x",
        "postgres://app@[::1]:5432/orders",
        "postgresql://db1:5432,db2:5433/orders",  # several hosts, as asyncpg allows
        "postgresql://app:p,w@db1:5432,db2/orders",
        "postgresql://app@db/team%40orders",  # an @ in the database name, encoded
        "postgresql://Xavier:p%40ss@db/orders",  # ... and in a password
        "postgresql://db/orders?sslmode=prefer&user=app%40tenant&password=p=w%40x",
        "postgresql://db/orders?application_name=a%40b",  # ... and elsewhere, encoded
        "postgresql://app:p:w@db/orders",  # a : in a password is read as asyncpg reads it
        "postgresql:///orders",
        "postgresql:///orders?host=db1,db2&port=5432,5433",
        "postgresql:///orders?host=db1,db2&port=6432",  # one port for every host
        "postgresql:///orders?host=db1,db2&port=0,65535",  # the range urlsplit allows a URL
        "postgresql:///orders?host=db1:5432,[::1]:5433",
        "postgresql:///orders?host=/run/pg&port=6432",
        "postgresql://db/orders?port=x",  # asyncpg ignores it: the URL names the host
    ],
)
def test_connection_strings_asyncpg_reads_are_accepted(dsn: str) -> None:
    assert _bootstrap.dsn_problem(dsn) is None
    Library(connection_string=dsn)


def test_libpqs_connect_timeout_in_the_url_points_to_the_keyword() -> None:
    """asyncpg would send it to the server as a setting, which the server refuses."""
    with pytest.raises(ValueError, match="connect_timeout in its query") as error:
        Library(connection_string="postgresql://app@db/orders?connect_timeout=10")
    assert "pass connect_timeout= (seconds) instead" in str(error.value)


def test_pgdbms_wrapper_is_unwrapped_to_the_drivers_error() -> None:
    driver = ConnectionRefusedError(111, "Connect call failed")
    wrapped = pgdbm.errors.ConnectionError("could not connect")
    wrapped.__cause__ = driver
    assert _bootstrap.driver_error(wrapped) is driver
    assert _bootstrap.driver_error(driver) is driver
    error = _bootstrap.connection_error(wrapped, "host=h port=1")
    assert str(error).endswith(": ConnectionRefusedError: [Errno 111] Connect call failed")


@pytest.mark.parametrize(
    ("dsn", "described"),
    [
        (
            f"postgresql://app:{SECRET}@db.internal:6543/orders",
            "host=db.internal port=6543 database=orders user=app",
        ),
        (
            "postgresql://app@/orders?host=/run/pg",
            "host=/run/pg port=5432 database=orders user=app",
        ),
        (
            "postgresql:///?host=h&port=7&dbname=d&user=u",
            "host=h port=7 database=d user=u",
        ),
        ("postgresql://h", "host=h port=5432 database=? user=?"),
        ("postgresql:///Xylophone", "host=localhost port=5432 database=Xylophone user=?"),
        ("postgresql://[::1", "an unparsable connection string"),
        ("postgresql://u@h", "host=h port=5432 database=u user=u"),
        ("postgres://u@h:6/d", "host=h port=6 database=d user=u"),
        # The URL's own host and port come first, as asyncpg takes them.
        ("postgresql://h/d?host=other&port=6", "host=h port=5432 database=d user=?"),
        ("postgresql://h1:6,[::1],h3:7/d", "host=h1,::1,h3 port=6,5432,7 database=d user=?"),
        ("postgresql://%2Frun%2FPG/d?port=7", "host=/run/PG port=5432 database=d user=?"),
        ("postgresql://[fe80::1%25eth0]:6/d", "host=fe80::1%eth0 port=6 database=d user=?"),
        # The query's hosts are split the same way; its port= comes before theirs.
        ("postgresql:///d?host=h1:6,h2", "host=h1,h2 port=6,5432 database=d user=?"),
        ("postgresql:///d?host=[::1]:6", "host=::1 port=6 database=d user=?"),
        ("postgresql:///d?host=h1:6,h2&port=7,8", "host=h1,h2 port=7,8 database=d user=?"),
        ("postgresql:///d?host=/run/pg:x", "host=/run/pg:x port=5432 database=d user=?"),
        (
            f"host=h port=1 user=u password={SECRET}",
            "an unparsable connection string (not a postgresql:// URL)",
        ),
    ],
)
def test_where_a_connection_string_points_without_its_secret(dsn: str, described: str) -> None:
    assert _bootstrap.describe_dsn(dsn) == described
    assert SECRET not in _bootstrap.describe_dsn(dsn)


@pytest.mark.parametrize(
    ("dsn", "password"),
    [
        (f"postgresql://app:{SECRET}@h/d", SECRET),
        ("postgresql://app:p%40ss@h/d", "p@ss"),
        (f"postgresql://app@h/d?password={SECRET}", SECRET),
        ("postgresql://app@h/d", None),
        ("postgresql://app@h/d?password=p%40ss", "p@ss"),  # decoded, as libpq does
        (f"host=h user=u password={SECRET} dbname=d", SECRET),
        (f"host=h password = '{SECRET}'", SECRET),
        ("host=h password='XyX'", "XyX"),
        ("host=h user=u", None),
    ],
)
def test_the_password_to_scrub_is_found(dsn: str, password: str | None) -> None:
    assert _bootstrap.password_of(dsn) == password


@pytest.mark.parametrize(
    ("text", "scrubbed"),
    [
        (f"bad: postgresql://app:{SECRET}@h:5/d x", "bad: postgresql://app:***@h:5/d x"),
        (f"postgres://:{SECRET}@h/d", "postgres://:***@h/d"),
        (f"dsn host=h password={SECRET} user=u", "dsn host=h password=*** user=u"),
        (f"?user=u&password={SECRET}&port=5", "?user=u&password=***&port=5"),
        ("postgresql://app@h/d and user:pass without a scheme", None),
        (f"postgresql://u:p@{SECRET}@h/d", "postgresql://u:***@h/d"),  # an unencoded @
        (f"postgresql://u@h/d?sslpassword={SECRET}", "postgresql://u@h/d?sslpassword=***"),
        ("see http://h:8080/a@b and user=u", None),  # a port, not a password
        (f"postgresql://app:pw/{SECRET}@h/d x", "postgresql://app:***@h/d x"),  # unencoded
        (f"postgresql://app:pw?{SECRET}@h/d", "postgresql://app:***@h/d"),
    ],
)
def test_passwords_in_any_text_are_masked(text: str, scrubbed: str | None) -> None:
    assert _bootstrap.scrub_passwords(text) == (text if scrubbed is None else scrubbed)


@pytest.mark.parametrize(
    "cause",
    [
        asyncpg.InvalidSQLStatementNameError(
            'prepared statement "__asyncpg_stmt_1__" does not exist'
        ),
        asyncpg.DuplicatePreparedStatementError('prepared statement "__asyncpg_stmt_1__" exists'),
    ],
)
def test_prepared_statement_errors_point_to_the_pooler_options(cause: Exception) -> None:
    """What the statement cache meets behind PgBouncer in transaction mode says what to set."""
    error = _bootstrap.connection_error(cause, "host=h port=6432")
    assert str(error) == (
        f"cannot reach PostgreSQL at host=h port=6432: {type(cause).__name__}: {cause} "
        "(behind PgBouncer in transaction mode? pass statement_cache_size=0 and "
        "shared_pool_search_path=None (python -m: --transaction-pooler))"
    )
    assert "PgBouncer" not in str(_bootstrap.connection_error(OSError("refused"), "host=h"))


@pytest.mark.parametrize(
    ("cause", "hint"),
    [
        (asyncpg.UndefinedObjectError('unrecognized configuration parameter "jitt"'), True),
        (asyncpg.InsufficientPrivilegeError('permission denied to set parameter "x"'), True),
        (asyncpg.InsufficientPrivilegeError('permission denied for database "orders"'), False),
        (asyncpg.ObjectNotInPrerequisiteStateError('database "o" is not accepting'), False),
    ],
)
def test_a_server_that_refuses_the_connection_is_not_called_unreachable(
    cause: asyncpg.PostgresError, hint: bool
) -> None:
    """The server answered: the message says it refused, and points to the pool's
    settings only when a setting is what it refused."""
    error = _bootstrap.connection_error(cause, "host=h port=5432", secret="p")
    settings_hint = (
        " (check server_settings= and the *_ms timeouts; asyncpg sends a URL query's "
        "unknown fields as settings too)"
    )
    assert str(error) == (
        f"PostgreSQL at host=h port=5432 refused the connection: {type(cause).__name__}: "
        f"{cause}{settings_hint if hint else ''}"
    )
    assert error.target == "host=h port=5432"
    # A login refused (a wrong password, no such role or database) is the server's answer.
    for login in (
        asyncpg.InvalidPasswordError("password authentication failed for user app"),
        asyncpg.InvalidCatalogNameError('database "nope" does not exist'),
    ):
        assert str(_bootstrap.connection_error(login, "host=h")) == (
            f"PostgreSQL at host=h refused the connection: {type(login).__name__}: {login}"
        )


def test_a_short_password_or_a_public_name_is_not_looked_for_in_the_drivers_words() -> None:
    """Masking a short password, or one that is also the user's or the database's name,
    where the driver's message holds it would garble the message and tell what the password
    is ("127.***.***.1" for "0", "*** authentication failed" for "password")."""
    refused = ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)")
    for secret in ("0", "1", "5432", "127.0.0.1", "password"):
        error = _bootstrap.connection_error(refused, "host=127.0.0.1 port=5432", secret)
        assert str(error).endswith(": [Errno 111] Connect call failed ('127.0.0.1', 5432)")
    wrong = asyncpg.InvalidPasswordError('password authentication failed for user "orders_service"')
    target = "host=h port=5432 database=orders user=orders_service"
    for secret in ("password", "orders_service"):
        error = _bootstrap.connection_error(wrong, target, secret)
        assert str(error).endswith(': password authentication failed for user "orders_service"')
    # asyncpg's connect timeout, asyncio's TimeoutError (a class of its own before 3.11).
    for timeout in (TimeoutError, asyncio.TimeoutError):
        error = _bootstrap.connection_error(timeout(), "host=h port=1")
        assert str(error) == (
            "cannot reach PostgreSQL at host=h port=1: TimeoutError: no answer in time"
        )


def test_a_connect_timeout_keeps_its_words_and_says_why_the_tries_failed() -> None:
    """Time running out is the library's own text, whole even with a one-letter password;
    the tries that failed are counted and the last one's error follows."""
    timeout = _bootstrap.ConnectTimeout(0.25)
    error = _bootstrap.connection_error(timeout, "host=h port=1", secret="e")
    assert str(error) == (
        "cannot reach PostgreSQL at host=h port=1: TimeoutError: not connected within "
        "0.25 s (connect_timeout, retries included)"
    )
    refused = pgdbm.errors.ConnectionError("Failed to create shared pool after 1 attempts")
    refused.__cause__ = ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 1)")
    timeout = _bootstrap.ConnectTimeout(2, [OSError("down"), refused], next_pause=4)
    assert timeout.__cause__ is refused.__cause__  # the last try's driver error, chained
    for secret, last in (
        ("e", "[Errno 111] Connect call failed ('127.0.0.1', 1)"),
        ("failed ('127.0.0.1'", "[Errno 111] Connect call ***, 1)"),
    ):
        assert str(_bootstrap.connection_error(timeout, "host=h port=1", secret)) == (
            "cannot reach PostgreSQL at host=h port=1: TimeoutError: not connected within 2 s "
            "(connect_timeout, retries included), and the next try would come too late, after "
            f"a 4 s pause; tries that failed: 2, the last: ConnectionRefusedError: {last}"
        )
    # Made again whole in another process (pickled), as the library's own errors are.
    again = pickle.loads(pickle.dumps(timeout))
    assert (str(again), again.failed[0].args, again.next_pause) == (str(timeout), ("down",), 4)
    # The last try's hint comes along: here, PgBouncer refusing pgdbm's startup parameters.
    pgbouncer = asyncpg.ProtocolViolationError("unsupported startup parameter: jit")
    error = _bootstrap.connection_error(_bootstrap.ConnectTimeout(2, [pgbouncer]), "host=h")
    assert str(error).endswith(
        "the last: ProtocolViolationError: unsupported startup "
        "parameter: jit (PgBouncer? list pgdbm's startup parameters in its "
        "ignore_startup_parameters: extra_float_digits, jit, search_path, "
        "statement_timeout, idle_in_transaction_session_timeout, "
        "lock_timeout; then set the timeouts on the role (README: Behind "
        "PgBouncer))"
    )


def test_the_librarys_errors_cross_processes_whole() -> None:
    """Pickled and read back (multiprocessing, task queues), each error keeps its class,
    message and attributes, though most take keyword arguments."""
    made = [
        errors.DatabaseConnectionError("down", target="host=h"),
        errors.InitLockTimeoutError("waited", holder="pid 7"),
        errors.PendingMigrationsError("pending", pending=("002_x.sql",)),
        errors.MigrationDriftError("drift", drifted=("001_x.sql",)),
        errors.MigrationFailedError("failed", filename="003_x.sql"),
        errors.NotInitializedError("call initialize() first"),
    ]
    for error in made:
        again = pickle.loads(pickle.dumps(error))
        assert (type(again), again.args, vars(again)) == (type(error), error.args, vars(error))


def test_a_startup_parameter_pgbouncer_refuses_points_to_its_setting() -> None:
    """PgBouncer refuses pgdbm's startup parameters unless told to ignore them (seen with
    Debian's PgBouncer 1.18: "unsupported startup parameter: jit")."""
    cause = asyncpg.ProtocolViolationError("unsupported startup parameter: jit")
    error = _bootstrap.connection_error(cause, "host=h port=6432")
    assert str(error) == (
        "cannot reach PostgreSQL at host=h port=6432: ProtocolViolationError: unsupported "
        "startup parameter: jit (PgBouncer? list pgdbm's startup parameters in its "
        "ignore_startup_parameters: extra_float_digits, jit, search_path, statement_timeout, "
        "idle_in_transaction_session_timeout, lock_timeout; then set the timeouts on the "
        "role (README: Behind PgBouncer))"
    )
    other = asyncpg.ProtocolViolationError("invalid frontend message type 0")
    assert "ignore_startup_parameters" not in str(_bootstrap.connection_error(other, "host=h"))


@pytest.mark.parametrize(
    ("sql", "hint"),
    [
        ("ALTER TABLE tags ADD COLUMN note TEXT;", " (unqualified here: tags)"),
        ("CREATE TABLE b (x INT); DROP VIEW a;", " (unqualified here: a, b)"),
        ("INSERT INTO tags VALUES (1);", ""),  # not DDL: nothing to point at
    ],
)
def test_a_name_resolution_failure_points_to_the_placeholder(sql: str, hint: str) -> None:
    error = pgdbm.errors.MigrationError("failed", migration_file="003_x.sql")
    error.__cause__ = asyncpg.UndefinedTableError('relation "tags" does not exist')
    failure = _bootstrap.migration_failure(error, _status(), {"003_x.sql": sql})
    assert type(failure) is errors.MigrationFailedError
    assert str(failure) == (
        "migration 003_x.sql failed in schema 'orders': UndefinedTableError: relation \"tags\" "
        "does not exist. Write every table in a migration as {{tables.name}}"
        + hint
        + ": pgdbm qualifies it with the library's schema, while a bare name resolves "
        "through the pool's search_path, which pgdbm pins to pg_catalog on shared pools."
    )


def test_the_servers_full_stop_is_not_doubled_by_the_advice() -> None:
    error = pgdbm.errors.MigrationError("failed", migration_file="003_x.sql")
    error.__cause__ = asyncpg.InsufficientPrivilegeError(
        'permission denied to create "pg_catalog.notes"\n'
        "DETAIL:  System catalog modifications are currently disallowed."
    )
    failure = _bootstrap.migration_failure(error, _status(), {"003_x.sql": "CREATE TABLE notes"})
    assert "currently disallowed. Write every table in a migration as {{tables.name}}" in str(
        failure
    )
    assert "disallowed.." not in str(failure)


def test_a_non_int_argument_is_named_with_its_type_and_value() -> None:
    assert _dualmode.require_int("limit", 5) == 5
    with pytest.raises(TypeError, match=r"^limit must be an int, got bool True$"):
        _dualmode.require_int("limit", True)
    with pytest.raises(TypeError, match=r"^record_id must be an int, got str '1'$"):
        _dualmode.require_int("record_id", "1")


@pytest.mark.parametrize(
    ("make_pool", "described"),
    [
        (
            lambda: asyncpg.create_pool(f"postgresql://app:{SECRET}@db.internal:6543/orders"),
            "host=db.internal port=6543 database=orders user=app",
        ),
        (
            lambda: asyncpg.create_pool(
                host="db.internal", port=6543, user="app", database="orders", password=SECRET
            ),
            "host=db.internal port=6543 database=orders user=app",
        ),
        (lambda: asyncpg.create_pool(host="db.internal"), "host=db.internal"),
        (lambda: object(), "the host application's pool"),  # nothing to tell
    ],
)
async def test_where_a_hosts_pool_points_without_its_secret(
    make_pool: Callable[[], object], described: str
) -> None:
    """Embedded mode names the server from the host's pool (never connected here; async,
    so that the pool binds to the running event loop instead of making one)."""
    assert _bootstrap.describe_pool(make_pool()) == described


URL = "postgresql://app@db.internal/orders"


@pytest.mark.parametrize(
    ("options", "start"),
    [
        ({"db_manager": "a pool"}, "(db_manager=...) takes a pgdbm AsyncDatabaseManager"),
        ({"connection_string": URL, "max_connections": 1}, "(max_connections=...) must be"),
        ({"connection_string": URL, "statement_cache": 0}, "() got unexpected option(s)"),
    ],
)
def test_usage_errors_name_the_class(options: dict[str, Any], start: str) -> None:
    with pytest.raises((TypeError, ValueError)) as error:
        Library(**options)
    assert str(error.value).startswith(Library.__name__ + start)


def test_drift_names_every_changed_file() -> None:
    status = _bootstrap.MigrationStatus(
        schema="orders",
        module_name=f"{PACKAGE}_orders",
        applied=(),
        pending=(),
        drifted=("001_a.sql", "002_b.sql"),
        other_modules=(),
    )
    with pytest.raises(errors.MigrationDriftError) as error:
        status.raise_for_drift()
    assert str(error.value).startswith("migration file(s) 001_a.sql, 002_b.sql changed after")
    assert error.value.drifted == ("001_a.sql", "002_b.sql")


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, f"{Library.__name__}() got neither of connection_string and db_manager."),
        ({"schema": "custom"}, 'schema="custom"'),
        ({}, f'{Library.__name__}(db_manager=AsyncDatabaseManager(pool=pool, schema="'),
        ({}, f'schema="{Library.DEFAULT_SCHEMA}"'),
        (
            {"connection_string": URL, "apply_migrations": "yes"},
            f"{Library.__name__}(apply_migrations=...) takes True or False",
        ),
    ],
)
def test_the_usage_shown_names_the_class_and_schema(options: dict[str, Any], expected: str) -> None:
    with pytest.raises((TypeError, ValueError)) as error:
        Library(**options)
    assert expected in str(error.value)


async def test_a_long_password_the_drivers_error_repeats_is_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whatever the driver's error repeats of a long password, in any words, the library's
    error masks it (a fault injected where pgdbm opens the pool)."""
    secret = "k3Xv9wQpL2zT-9"

    async def echoing(config: object) -> None:
        raise OSError(f"the server echoed {secret} back")

    monkeypatch.setattr(pgdbm.AsyncDatabaseManager, "create_shared_pool", echoing)
    lib = Library(connection_string=f"postgresql://app:{secret}@127.0.0.1:1/appdb")
    with pytest.raises(errors.DatabaseConnectionError) as error:
        await lib.initialize()
    assert str(error.value) == (
        "cannot reach PostgreSQL at host=127.0.0.1 port=1 database=appdb user=app: "
        "OSError: the server echoed *** back"
    )


async def test_a_password_that_is_also_the_host_does_not_hide_the_host() -> None:
    """The host's address in the driver's error is the target's, which the message names
    anyway: a password equal to it is no reason to mask it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    lib = Library(
        connection_string=f"postgresql://app:127.0.0.1@127.0.0.1:{port}/appdb", retry_attempts=1
    )
    with pytest.raises(errors.DatabaseConnectionError) as error:
        await lib.initialize()
    reason = str(error.value).partition(": ")[2]  # past "cannot reach PostgreSQL at <where>"
    assert re.fullmatch(
        rf"ConnectionRefusedError: \[Errno \d+\] Connect call failed \('127\.0\.0\.1', {port}\)",
        reason,
    ), reason


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"min_connections": -1}, ValueError, "(min_connections=...) must be at least 0, got -1"),
        ({"min_connections": 5, "max_connections": 4}, ValueError, "exceeds max_connections=4"),
        ({"retry_attempts": 0}, ValueError, "(retry_attempts=...) must be at least 1, got 0"),
        ({"max_queries": 0}, ValueError, "(max_queries=...) must be at least 1, got 0"),
        ({"statement_cache_size": -1}, ValueError, "(statement_cache_size=...) must be at least"),
        ({"statement_cache_size": 1.5}, TypeError, "statement_cache_size must be an int"),
        ({"command_timeout": 0}, ValueError, "(command_timeout=...) must be more than 0"),
        ({"command_timeout": float("nan")}, ValueError, "(command_timeout=...) must be more"),
        ({"retry_delay": float("inf")}, ValueError, "(retry_delay=...) must be 0 or more and"),
        ({"statement_timeout_ms": -5}, ValueError, "(statement_timeout_ms=...) must be 0 or"),
        ({"lock_timeout_ms": 2**31}, ValueError, "(lock_timeout_ms=...) must be at most 2147483"),
        ({"statement_timeout_ms": 2**31 - 0.5}, ValueError, "must be at most 2147483647 (Postg"),
        ({"lock_timeout_ms": "5"}, TypeError, "(lock_timeout_ms=...) takes a number, got str"),
        ({"retry_backoff": True}, TypeError, "(retry_backoff=...) takes a number, got bool"),
    ],
)
def test_pool_numbers_are_checked_when_the_instance_is_made(
    options: dict[str, Any], error: type[Exception], message: str
) -> None:
    """A wrong count or duration is a usage error at once, not a connection failure later."""
    with pytest.raises(error) as raised:
        Library(connection_string=URL, **options)
    assert message in str(raised.value)


def test_pool_numbers_at_their_least_are_accepted() -> None:
    options: dict[str, Any] = {
        "min_connections": 0,
        "max_connections": 2,
        "max_queries": 1,
        "retry_attempts": 1,
        "statement_cache_size": 0,
        "max_inactive_connection_lifetime": 0,
        "command_timeout": 0.001,
        "retry_delay": 0,
        "retry_backoff": 0,
        "retry_max_delay": 0,
        "statement_timeout_ms": 0,
        "idle_in_transaction_session_timeout_ms": None,
        "lock_timeout_ms": 0,
    }
    assert Library(connection_string=URL, **options).owns_pool
    assert Library(connection_string=URL, min_connections=3, max_connections=3).owns_pool


@pytest.mark.parametrize("schema", ["", 0, False])
def test_only_none_means_the_default_schema(schema: object) -> None:
    """An empty or falsy schema is refused, not silently replaced by the default."""
    with pytest.raises((ValueError, TypeError)):
        Library(connection_string=URL, schema=schema)  # type: ignore[arg-type]
    assert Library(connection_string=URL, schema=None).schema == Library.DEFAULT_SCHEMA


@pytest.mark.parametrize(("method", "default"), [("health", 5), ("close", 10)])
@pytest.mark.parametrize(
    ("max_wait", "message"),
    [
        (0, r"must be a positive finite number of seconds, got 0 \(for example max_wait={}\)\Z"),
        (-1, r"must be a positive finite number of seconds, got -1 "),
        (float("nan"), r"must be a positive finite number of seconds, got nan "),
        ("5", r"takes seconds as a number, got str\Z"),
        (True, r"takes seconds as a number, got bool\Z"),
    ],
)
async def test_a_wait_that_is_not_a_positive_number_is_refused(
    method: str, default: int, max_wait: object, message: str
) -> None:
    """The message names the method and, as an example, the default wait."""
    lib = Library(connection_string=URL)
    error = TypeError if "takes" in message else ValueError
    expected = rf"{Library.__name__}\.{method}\(max_wait=\.\.\.\) {message.format(default)}"
    with pytest.raises(error, match=expected):
        await getattr(lib, method)(max_wait=max_wait)
