# Owned by the copier-pgdbm template: `copier update` replaces this file, so do not edit it.
# Your code lives in core.py, sql.py, models.py and migrations/.
"""Deploy-time commands: ``status`` and ``migrate [--dry-run]`` (``python -m <package>``)."""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
from collections.abc import Sequence
from typing import NoReturn, TextIO

from ._bootstrap import MigrationStatus, describe_dsn, dsn_problem, scrub_passwords
from ._dualmode import DualModeLibrary, PoolOptions

EXIT_OK, EXIT_PENDING, EXIT_ERROR = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse repeats a bad argument, which may be a whole connection string.
        super().error(scrub_passwords(message))


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return seconds


def _ms(seconds: float | None) -> int:
    return 0 if seconds is None else max(1, round(seconds * 1000))


def _options(library: type[DualModeLibrary], env_var: str) -> _Parser:
    # Given before or after the command (`--schema s migrate`, `migrate --schema s`). No
    # defaults here (SUPPRESS), or the command's parser would reset what came before it:
    # they are the main parser's (set_defaults).
    options = _Parser(add_help=False, argument_default=argparse.SUPPRESS)
    options.add_argument("--dsn", help=f"PostgreSQL URL (default: ${env_var} or $DATABASE_URL)")
    options.add_argument(
        "--schema", help=f"the library's schema (default: {library.DEFAULT_SCHEMA})"
    )
    options.add_argument(
        "--transaction-pooler",
        action="store_true",
        help="the DSN is PgBouncer in transaction mode: no statement cache, no search_path pin",
    )
    options.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        help="seconds to wait for another process holding the start-up lock (default: 60)",
    )
    options.add_argument(
        "--connect-timeout",
        type=_seconds,
        metavar="SECONDS",
        help="seconds to wait for the server to answer, through PgBouncer too (default: 60)",
    )
    options.add_argument(
        "--statement-timeout",
        type=_seconds,
        metavar="SECONDS",
        help="seconds a migration's statement may run (default: no limit, whatever the role's)",
    )
    options.add_argument(
        "--lock-timeout",
        type=_seconds,
        metavar="SECONDS",
        help="seconds a migration may wait for a table lock, queueing queries behind it "
        "(default: 5)",
    )
    return options


def _parser(library: type[DualModeLibrary], env_var: str) -> argparse.ArgumentParser:
    package = library.__module__.rpartition(".")[0]
    parser = _Parser(
        prog=f"python -m {package}",
        description=f"Check or apply the migrations of {package} ({library.__name__}).",
        epilog=(
            f"The connection string comes from --dsn, else ${env_var}, else $DATABASE_URL. "
            "Exit status: 0 up to date (or applied), 1 migrations pending (status), 2 error."
        ),
        parents=[_options(library, env_var)],
    )
    # set_defaults() changes the parent's actions: the commands get a parent of their own.
    after = _options(library, env_var)
    parser.set_defaults(
        dsn=None,
        schema=library.DEFAULT_SCHEMA,
        transaction_pooler=False,
        timeout=60.0,
        connect_timeout=None,
        statement_timeout=None,
        lock_timeout=5.0,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "status", parents=[after], help="list applied and pending migrations; exit 1 if pending"
    )
    migrate = commands.add_parser(
        "migrate", parents=[after], help="apply pending migrations under the lock"
    )
    migrate.add_argument("--dry-run", action="store_true", help="only list what would be applied")
    return parser


def _print_status(status: MigrationStatus, out: TextIO) -> None:
    for applied in status.applied:
        changed = " (file changed since!)" if applied.filename in status.drifted else ""
        stamp = applied.applied_at.isoformat(sep=" ", timespec="seconds")
        print(f"applied  {applied.filename}  {stamp}{changed}", file=out)
    for filename in status.pending:
        print(f"pending  {filename}", file=out)


async def _run(library: type[DualModeLibrary], args: argparse.Namespace, dsn: str) -> int:
    options: PoolOptions = {
        "min_connections": 1,
        "max_connections": 2,
        "retry_attempts": 1,
        # A release step's index build or backfill may run long: no statement_timeout
        # unless asked for (the library's default, pgdbm's 60 s, would cut it), sent as 0
        # so that the role's own setting does not apply either. The lock timeout stays: a
        # migration queueing for a table lock holds up the application's queries behind it.
        "statement_timeout_ms": _ms(args.statement_timeout),
        "lock_timeout_ms": _ms(args.lock_timeout),
    }
    if args.transaction_pooler:
        options["statement_cache_size"] = 0
        options["shared_pool_search_path"] = None
    lib = library(
        connection_string=dsn,
        schema=args.schema,
        init_timeout=args.timeout,
        connect_timeout=args.connect_timeout,
        **options,
    )
    out = sys.stdout
    print(f"schema {lib.schema} (module {lib.module_name}) at {describe_dsn(dsn)}", file=out)
    try:
        if args.command == "status":
            status = await lib.migration_status()
            _print_status(status, out)
            status.raise_for_drift()
            if status.pending:
                package = library.__module__.rpartition(".")[0]
                command = f"python -m {package} migrate --schema {lib.schema}"
                print(f"{len(status.pending)} pending: run `{command}`", file=out)
                return EXIT_PENDING
            print("up to date", file=out)
            return EXIT_OK
        report = await lib.migrate(dry_run=args.dry_run)
        if report.dry_run:
            for filename in report.pending:
                print(f"would apply  {filename}", file=out)
            print(f"dry run: {len(report.pending)} to apply, nothing written", file=out)
        else:
            for filename in report.applied:
                print(f"applied  {filename}", file=out)
            print(f"up to date ({len(report.applied)} applied now)", file=out)
        return EXIT_OK
    finally:
        await lib.close()


def main(library: type[DualModeLibrary], argv: Sequence[str] | None = None) -> int:
    """Run the command line; the process exit status."""
    package = library.__module__.rpartition(".")[0]
    env_var = f"{package.upper()}_DATABASE_URL"
    args = _parser(library, env_var).parse_args(argv)
    sources = [("--dsn", args.dsn), (f"${env_var}", os.environ.get(env_var))]
    source, dsn = next(
        ((name, value) for name, value in sources if value),
        ("$DATABASE_URL", os.environ.get("DATABASE_URL")),
    )
    if not dsn:
        print(
            f"error: no database: pass --dsn, or set ${env_var} or $DATABASE_URL", file=sys.stderr
        )
        return EXIT_ERROR
    # Refused here too, in the command line's words rather than the class's.
    if problem := dsn_problem(dsn, connect_timeout_hint="--connect-timeout SECONDS"):
        print(f"error: the connection string in {source} {problem}", file=sys.stderr)
        return EXIT_ERROR
    try:
        return asyncio.run(_run(library, args, dsn))
    except Exception as exc:  # exit 1 means "pending" to a release script: any failure is 2
        print(f"error: {type(exc).__name__}: {scrub_passwords(str(exc))}", file=sys.stderr)
        return EXIT_ERROR
