"""The gateway's pub/sub connection: a lean reader of Redis's RESP frames.

redis-py parses each pub/sub message in Python through several layers, and
its ``get_message`` puts a timeout around each one.  A gateway receives one
message per change of each followed job, so this module reads them itself:
an :class:`asyncio.Protocol` whose ``data_received`` parses the bytes that
came (RESP2: arrays of bulk strings and integers) and hands each
``message`` frame to a callback, with no task woken and no timer armed per
message.  Commands (``AUTH``, ``SUBSCRIBE``, ``UNSUBSCRIBE``, ``PING``)
are written without waiting for their replies, as redis-py's pub/sub does;
an error reply closes the connection.
"""

import asyncio
import socket
import ssl as ssl_module
from typing import Any

from redis.asyncio.connection import parse_url

#: Seconds a connection (and its ``AUTH``) may take.
CONNECT_TIMEOUT = 2.0

MESSAGE = b'message'
#: A ``PING``'s reply, outside (``+PONG``) and inside (``pong``) pub/sub mode.
PONGS = (b'PONG', b'pong')


class ProtocolError(Exception):
    """Redis answered with an error, or bytes that are not RESP."""


class ReplyError(ProtocolError):
    """An error reply of Redis (which :func:`parse` returns as a value)."""


def command(*args):
    """The RESP bytes of one command (``str`` arguments are UTF-8)."""
    parts = [b'*%d\r\n' % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else arg
        parts.append(b'$%d\r\n%s\r\n' % (len(data), data))
    return b''.join(parts)


def parse(buffer, pos):
    """``(value, next position)`` of the RESP2 value at ``pos`` in
    ``buffer``, or ``None`` when it is not all there yet.  An error reply
    is a :class:`ReplyError` value; raises :class:`ProtocolError` for bytes
    that are not RESP."""
    end = buffer.find(b'\r\n', pos)
    if end < 0:
        return None
    kind, head = buffer[pos : pos + 1], buffer[pos + 1 : end]
    if kind == b'$':
        size = int(head)
        if size < 0:
            return None, end + 2
        stop = end + 2 + size
        if len(buffer) < stop + 2:
            return None
        return bytes(buffer[end + 2 : stop]), stop + 2
    if kind == b'*':
        items = []
        pos = end + 2
        for _ in range(int(head)):
            parsed = parse(buffer, pos)
            if parsed is None:
                return None
            item, pos = parsed
            items.append(item)
        return items, pos
    if kind == b':':
        return int(head), end + 2
    if kind == b'+':
        return bytes(head), end + 2
    if kind == b'-':
        return ReplyError(bytes(head).decode('utf-8', 'replace')), end + 2
    raise ProtocolError(f'not RESP: {bytes(buffer[pos : pos + 20])!r}')


class PubSubProtocol(asyncio.Protocol):
    """One pub/sub connection: ``on_message(channel, data)`` (bytes) for
    each message; :attr:`lost` is done once the connection is gone."""

    def __init__(self, on_message):
        self.on_message = on_message
        self.buffer = bytearray()
        self.transport: Any = None
        loop = asyncio.get_running_loop()
        self.lost = loop.create_future()
        #: done at the first reply to a ``PING``
        self.ponged = loop.create_future()
        #: ``data_received`` calls so far (the hub's liveness check)
        self.heard = 0

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        if not self.lost.done():
            self.lost.set_result(exc or ConnectionError('redis closed the pub/sub connection'))

    def data_received(self, data):
        self.heard += 1
        buffer = self.buffer
        buffer += data
        pos = 0
        try:
            while pos < len(buffer):
                parsed = parse(buffer, pos)
                if parsed is None:
                    break
                frame, pos = parsed
                if isinstance(frame, ReplyError):
                    raise frame
                if isinstance(frame, list) and len(frame) == 3 and frame[0] == MESSAGE:
                    self.on_message(frame[1], frame[2])
                else:
                    self.reply(frame)
        except (ProtocolError, ValueError) as exc:
            self.fail(exc)
            return
        del buffer[:pos]

    def reply(self, frame):
        """A frame other than a message: a ``PING``'s reply is noted (the
        replies of ``(UN)SUBSCRIBE`` and ``AUTH`` need nothing)."""
        if isinstance(frame, list):
            frame = frame[0] if frame else None
        if frame in PONGS and not self.ponged.done():
            self.ponged.set_result(None)

    def fail(self, exc):
        """Close the connection, which makes :attr:`lost` done with ``exc``."""
        if not self.lost.done():
            self.lost.set_result(exc)
        if self.transport is not None:
            self.transport.close()

    def send(self, *args):
        """Write one command; ``ConnectionError`` when the connection is gone."""
        if self.lost.done() or self.transport is None or self.transport.is_closing():
            raise ConnectionError('the pub/sub connection is closed')
        self.transport.write(command(*args))

    def subscribe(self, channels):
        self.send('SUBSCRIBE', *channels)

    def unsubscribe(self, channels):
        self.send('UNSUBSCRIBE', *channels)

    def ping(self):
        self.send('PING')

    def close(self):
        if self.transport is not None:
            self.transport.close()


async def open_connection(url, factory):
    """``(options, protocol)``: the parsed ``url`` and the protocol that
    ``factory`` makes, connected to its Redis (host and port or a Unix
    socket, TLS for ``rediss://``), with TCP keepalive."""
    options = parse_url(url)
    loop = asyncio.get_running_loop()

    async def opening():
        if options.get('path'):
            return await loop.create_unix_connection(factory, options['path'])
        tls = None
        if url.startswith('rediss://'):
            tls = ssl_module.create_default_context()
        return await loop.create_connection(
            factory, options.get('host', 'localhost'), options.get('port', 6379), ssl=tls
        )

    _, protocol = await asyncio.wait_for(opening(), CONNECT_TIMEOUT)
    sock = protocol.transport.get_extra_info('socket')
    if sock is not None and not options.get('path'):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    return options, protocol


def auth_args(options):
    """The ``AUTH`` command of the parsed URL ``options``, or ``None``."""
    password = options.get('password')
    if password is None:
        return None
    username = options.get('username')
    return ('AUTH', *([username] if username else []), password)


async def connect(url, on_message):
    """A :class:`PubSubProtocol` connected to the Redis of ``url`` (see
    :func:`open_connection`; ``AUTH`` with its user and password; its db
    does not matter to pub/sub)."""
    options, protocol = await open_connection(url, lambda: PubSubProtocol(on_message))
    auth = auth_args(options)
    if auth is not None:
        protocol.send(*auth)
    protocol.ping()
    try:
        await asyncio.wait_for(answered(protocol), CONNECT_TIMEOUT)
    except BaseException:
        protocol.close()
        raise
    return protocol


async def answered(protocol):
    """Wait for the reply to the first ``PING`` (raising what closed the
    connection before it, such as a refused ``AUTH``)."""
    await asyncio.wait([protocol.ponged, protocol.lost], return_when=asyncio.FIRST_COMPLETED)
    if not protocol.ponged.done():
        raise protocol.lost.result()
