# Owned by the copier-pgdbm template: `copier update` replaces this file, so do not edit it.
"""A TCP proxy in front of the test server, to take "the database" away mid-test.

Stopping it closes the listener and cuts every open connection, which is what clients
see when the server goes down, while the real server keeps serving the other tests.
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import parse_qs, quote, unquote, urlsplit


class TcpProxy:
    """Forwards 127.0.0.1:<port> to the server of ``url`` (TCP or unix socket)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        self._host = query.get("host", [parts.hostname or "localhost"])[0]
        self._port = int(query.get("port", [str(parts.port or 5432)])[0])
        self.database = unquote(parts.path.lstrip("/"))
        self.user = unquote(parts.username or "postgres")
        self.password = unquote(parts.password or "")
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._none_open = asyncio.Event()  # set while _writers is empty
        self._none_open.set()
        self.port = 0
        self.silent = False  # True: connections stay open, but nothing goes through
        # True: the client's messages go through, the server's answers do not: a pooler
        # whose server is down holds queries, and still closes a client saying goodbye.
        self.hold_answers = False
        # True: a new connection logs in, then the server's answers are held back, as
        # PgBouncer holds its clients' queries while its server is down. Reads the
        # protocol's messages: for a URL with sslmode=disable.
        self.hold_after_login = False

    def url(self, password: str | None = None) -> str:
        """A URL to the server through the proxy (the server's own password by default)."""
        secret = quote(self.password if password is None else password, safe="")
        return f"postgresql://{quote(self.user)}:{secret}@127.0.0.1:{self.port}/{self.database}"

    def open_connections(self) -> int:
        """Ends of the connections open through the proxy: two each, client's and server's."""
        return len(self._writers)

    async def open_connections_once_closed(self, within: float = 5.0) -> int:
        """open_connections() once it is 0, or after ``within`` seconds: the proxy sees a
        socket close a few loop turns after its client has let go of it."""
        with contextlib.suppress(TimeoutError, asyncio.TimeoutError):  # one since 3.11
            await asyncio.wait_for(self._none_open.wait(), within)
        return len(self._writers)

    async def start(self, port: int = 0) -> TcpProxy:
        """Listen on ``port`` (0: any free one), e.g. the same one again after stop()."""
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        """Refuse new connections and cut the open ones."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            await self._server.wait_closed()
            self._server = None

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._host.startswith("/"):
            return await asyncio.open_unix_connection(f"{self._host}/.s.PGSQL.{self._port}")
        return await asyncio.open_connection(self._host, self._port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Cut by stop() from the moment it is accepted: opening the upstream can take a
        # while (a loaded machine, a pooler), and a connection stop() missed then would
        # outlive the test, to be reported unclosed (ResourceWarning) in a later one.
        ends = [writer]
        self._writers.add(writer)
        self._none_open.clear()
        try:
            up_reader, up_writer = await self._open_upstream()
            ends.append(up_writer)
            self._writers.add(up_writer)
            answers = (
                self._answers_after_login(up_reader, writer)
                if self.hold_after_login
                else self._pipe(up_reader, writer, answers=True)
            )
            await asyncio.gather(self._pipe(reader, up_writer), answers)
        finally:
            for end in ends:
                self._writers.discard(end)
                end.transport.abort()
            if not self._writers:
                self._none_open.set()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, answers: bool = False
    ) -> None:
        try:
            while data := await reader.read(65536):
                # A server that hangs, or a pooler holding answers: bytes are swallowed.
                if not (self.silent or (answers and self.hold_answers)):
                    writer.write(data)
                    await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()

    async def _answers_after_login(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        # Messages (a type byte, then a length that counts itself) up to the first
        # ReadyForQuery go through; nothing after it does.
        try:
            while True:
                header = await reader.readexactly(5)
                body = await reader.readexactly(int.from_bytes(header[1:], "big") - 4)
                writer.write(header + body)
                await writer.drain()
                if header[:1] == b"Z":
                    break
            while await reader.read(65536):
                pass
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.transport.abort()
