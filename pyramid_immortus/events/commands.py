"""The gateway's command connection: requests and their replies on one
pipelined connection of its own, parsed by :func:`.pubsub.parse`.

The event loop's read of changed jobs is one ``EVALSHA`` per batch (see
:mod:`.reading`); sending it through redis-py's asyncio client costs more
than the command itself.  Here a command is written at once (several may
be under way: Redis answers them in order) and its reply resolves the
future that waits for it.  The connection is made on the first command and
after a failure: ``AUTH`` with the URL's user and password, ``SELECT`` of
the URL's db (the records are there).  A lost connection, bytes that are
not RESP or a reply late beyond its timeout close it and fail every
command under way with ``ConnectionError`` (or ``TimeoutError``); an error
reply fails its command alone, with :class:`.pubsub.ReplyError`.
"""

import asyncio
import hashlib
from collections import deque
from typing import Any

from .pubsub import (
    CONNECT_TIMEOUT,
    ProtocolError,
    ReplyError,
    auth_args,
    command,
    open_connection,
    parse,
)


class CommandProtocol(asyncio.Protocol):
    """One connection: :meth:`send` writes a command and answers the future
    of its reply."""

    def __init__(self):
        self.buffer = bytearray()
        self.transport: Any = None
        self.waiting: deque[Any] = deque()
        self.error: Any = None

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        self.fail(exc or ConnectionError('redis closed the command connection'))

    def data_received(self, data):
        buffer = self.buffer
        buffer += data
        pos = 0
        waiting = self.waiting
        try:
            while pos < len(buffer):
                parsed = parse(buffer, pos)
                if parsed is None:
                    break
                reply, pos = parsed
                if not waiting:
                    raise ProtocolError('a reply to no command')
                future = waiting.popleft()
                if future.done():
                    continue  # cancelled: its reply is dropped
                if isinstance(reply, ReplyError):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)
        except (ProtocolError, ValueError) as exc:
            self.fail(ConnectionError(f'redis command connection: {exc}'))
            return
        del buffer[:pos]

    def fail(self, exc):
        """Close the connection and fail every command under way."""
        if self.error is None:
            self.error = exc
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(self.error)
        if self.transport is not None:
            self.transport.close()

    @property
    def usable(self):
        return self.error is None and self.transport is not None and not self.transport.is_closing()

    def send(self, *args):
        """The future of the reply to one command."""
        if not self.usable:
            raise ConnectionError('the command connection is closed')
        future = asyncio.get_running_loop().create_future()
        self.waiting.append(future)
        self.transport.write(command(*args))
        return future

    def close(self):
        self.fail(ConnectionError('the command connection is closed'))


class Client:
    """Commands on one connection to the Redis (and db) of ``url``."""

    def __init__(self, url, timeout):
        self.url = url
        self.timeout = timeout
        self.options: dict[str, Any] = {}
        self.protocol: Any = None
        self._connecting: Any = None

    async def _connection(self):
        protocol = self.protocol
        if protocol is not None and protocol.usable:
            return protocol
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
        connecting = self._connecting
        try:
            return await asyncio.shield(connecting)
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None

    async def _connect(self):
        self.protocol = None
        options, protocol = await open_connection(self.url, CommandProtocol)
        try:
            replies = []
            auth = auth_args(options)
            if auth is not None:
                replies.append(protocol.send(*auth))
            if options.get('db'):
                replies.append(protocol.send('SELECT', str(options['db'])))
            replies.append(protocol.send('PING'))
            await asyncio.wait_for(asyncio.gather(*replies), CONNECT_TIMEOUT)
        except BaseException:
            protocol.close()
            raise
        self.options = options
        self.protocol = protocol
        return protocol

    async def call(self, *args):
        """The reply to one command; raises :class:`.pubsub.ReplyError` for
        an error reply, ``ConnectionError`` or ``TimeoutError`` (the
        connection is then made anew by the next command)."""
        protocol = await self._connection()
        future = protocol.send(*args)
        timer = asyncio.get_running_loop().call_later(
            self.timeout, protocol.fail, TimeoutError('redis did not answer in time')
        )
        try:
            return await future
        except asyncio.CancelledError:
            protocol.fail(
                ConnectionError('a command was cancelled')
            )  # its reply would be the next's
            raise
        finally:
            timer.cancel()

    def script(self, text):
        return Script(self, text)

    def close(self):
        if self._connecting is not None:
            self._connecting.cancel()
        if self.protocol is not None:
            self.protocol.close()
            self.protocol = None


class Script:
    """A Lua script called by its SHA1 (``EVALSHA``), sent whole (``EVAL``,
    which caches it) when Redis does not know it (``NOSCRIPT``)."""

    def __init__(self, client, text):
        self.client = client
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()

    async def __call__(self, keys=(), args=()):
        keys = list(keys)
        try:
            return await self.client.call('EVALSHA', self.sha, str(len(keys)), *keys, *args)
        except ReplyError as exc:
            if not str(exc).startswith('NOSCRIPT'):
                raise
        return await self.client.call('EVAL', self.text, str(len(keys)), *keys, *args)
