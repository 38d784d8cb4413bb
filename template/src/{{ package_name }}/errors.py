# Owned by the copier-pgdbm template: `copier update` replaces this file, so do not edit it.
# Your code lives in core.py, sql.py, models.py and migrations/.
"""Every error the library raises on purpose, in one hierarchy.

Catch ``LibraryError`` for all of them. Usage mistakes (wrong arguments) stay the
built-in ``TypeError`` and ``ValueError``, with the right usage in the message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class LibraryError(Exception):
    """Base class of the errors below."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Picklable, as errors crossing processes must be (multiprocessing, task queues),
        # though most take keyword arguments: made again from the message, then given
        # their attributes back.
        return _remade, (type(self), self.args), self.__dict__


def _remade(cls: type[LibraryError], args: tuple[Any, ...]) -> LibraryError:
    error = cls.__new__(cls)
    error.args = args
    return error


class DatabaseConnectionError(LibraryError):
    """PostgreSQL could not be reached, refused the connection or dropped it, in either
    mode; the driver's error is chained.

    The message names host, port and database, never the password.
    """

    def __init__(self, message: str, *, target: str) -> None:
        super().__init__(message)
        self.target = target


class NotInitializedError(LibraryError, RuntimeError):
    """A query was made before ``initialize()`` (or after ``close()``)."""


class InitLockTimeoutError(LibraryError, TimeoutError):
    """The start-up lock did not come within ``init_timeout``: another process held it
    (``holder`` says which), or other start-ups on the pool held its connections."""

    def __init__(self, message: str, *, holder: str | None) -> None:
        super().__init__(message)
        self.holder = holder


class MigrationError(LibraryError):
    """Base class of the migration errors."""


class MigrationsNotFoundError(MigrationError, RuntimeError):
    """The installed package carries no migration files."""


class PendingMigrationsError(MigrationError):
    """Verify-only start-up found migrations that have not been applied."""

    def __init__(self, message: str, *, pending: Sequence[str]) -> None:
        super().__init__(message)
        self.pending = tuple(pending)


class MigrationDriftError(MigrationError):
    """A migration file differs from the one applied to the database."""

    def __init__(self, message: str, *, drifted: Sequence[str]) -> None:
        super().__init__(message)
        self.drifted = tuple(drifted)


class SchemaConflictError(MigrationError):
    """The schema already holds another package's tables."""


class MigrationFailedError(MigrationError):
    """A migration's SQL failed; the database error is chained."""

    def __init__(self, message: str, *, filename: str) -> None:
        super().__init__(message)
        self.filename = filename
