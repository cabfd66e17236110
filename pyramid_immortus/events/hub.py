"""The gateway's shared state: one Redis pub/sub connection, the followed
jobs, and the streams each job's changes fan out to.

A job followed by any number of streams is subscribed once (its channel is
reference-counted), read once per change (see :mod:`.reading`: the changes
of a few ms in one read), and the event made of that read is handed to each
stream that the batch verify authorized for that job.  A
stream keeps at most one undelivered event per job (the latest), so a
client that stops reading costs no more memory, and delays nobody else.
"""

import asyncio
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis

from . import CHANNEL_PREFIX, PROGRESS_FIELDS, commands, pubsub
from .reading import READ, loop_readable, read_entries, read_in_loop

log = logging.getLogger(__name__)

ENDED_STATES = ('finished', 'failed')
#: Redis errors after which the pub/sub connection is made anew.
REDIS_ERRORS = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    pubsub.ProtocolError,
    asyncio.TimeoutError,
    OSError,
)
#: Seconds the changes of many jobs are gathered into one read.
BATCH_WINDOW = 0.01
#: Ids read in one call of a strategy.
READ_CHUNK = 500
#: Seconds a read of the event loop may wait for Redis.
READ_TIMEOUT = 5


class Unavailable(Exception):
    """Redis cannot be reached: a stream cannot open (503)."""


def has_ended(entry):
    """Whether a batch entry (verify JSON plus ``code``) is a job's last:
    a non-200 code, or an ended job."""
    return (
        entry.get('code') != 200
        or entry.get('status') in ENDED_STATES
        or entry.get('completed') is True
        or entry.get('failed') is True
    )


def job_event(entry):
    """The SSE bytes of one job's entry."""
    return b'event: job\ndata: ' + json.dumps(entry).encode() + b'\n\n'


class Stream:
    """One open event stream: what it waits to send, per job."""

    __slots__ = ('pending', 'waiter', 'closed', 'ping', 'last_sent', 'following')

    def __init__(self):
        self.pending = {}  # job_id -> (event bytes, ended)
        self.waiter: Any = None
        self.closed = False
        self.ping = False
        self.last_sent = 0.0
        self.following = {}  # job_id -> Followed

    def put(self, job_id, event, ended):
        """Keep ``event`` as the next of ``job_id`` (replacing one not sent
        yet: a superseded state is dropped)."""
        self.pending[job_id] = (event, ended)
        self.wake()

    def wake(self):
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self):
        if self.pending or self.closed or self.ping:
            return
        self.waiter = asyncio.get_running_loop().create_future()
        try:
            await self.waiter
        finally:
            self.waiter = None


class Followed:
    """A job followed with one ``job_class`` (``None`` for none)."""

    __slots__ = (
        'job_id',
        'job_class',
        'holders',
        'streams',
        'last',
        'last_event',
        'last_status',
        'last_read',
        'ended',
        'timer',
    )

    def __init__(self, job_id, job_class):
        self.job_id = job_id
        self.job_class = job_class
        self.holders = 0  # streams that hold it (authorized or not yet)
        self.streams = set()  # streams the batch verify authorized for it
        self.last = None  # the JSON text of the last shared read
        self.last_event = None
        self.last_status = None
        self.last_read = float('-inf')  # loop time the last read started
        self.ended = False
        self.timer: Any = None


class Hub:
    """Subscriptions, shared reads and fan-out of one gateway."""

    def __init__(self, registry, redis_url, progress_interval=0.2, keepalive=15.0, read_threads=4):
        self.registry = registry
        self.redis_url = redis_url
        self.progress_interval = progress_interval
        self.keepalive = keepalive
        self.read_threads = read_threads
        self.followed = {}  # (job_id, job_class) -> Followed
        self.by_job = {}  # job_id -> {job_class: Followed}
        self.streams = set()
        self.subscribed = set()
        self.connected = False
        self.closing = False
        self.reads = 0  # shared reads made (jobs read)
        self._dirty = {}
        self._loop_readable = {}  # job_class -> its strategy, or None
        self._dirty_event: Any = None
        self._lock: Any = None
        self._pubsub: Any = None
        self._tasks = []

    # -- life ------------------------------------------------------------

    async def start(self):
        self._lock = asyncio.Lock()
        self._dirty_event = asyncio.Event()
        self._read_pool = ThreadPoolExecutor(self.read_threads, thread_name_prefix='immortus-read')
        self._reader = commands.Client(self.redis_url, READ_TIMEOUT)
        self._read_script = self._reader.script(READ)
        self._tasks = [
            asyncio.ensure_future(self._listen()),
            asyncio.ensure_future(self._read_loop()),
            asyncio.ensure_future(self._tick()),
        ]

    async def wait_connected(self, timeout):
        """Wait up to ``timeout`` seconds for the pub/sub connection."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.connected and loop.time() < deadline:
            await asyncio.sleep(0.02)
        return self.connected

    def close_streams(self):
        """End every open stream (the gateway stops: clients reconnect)."""
        self.closing = True
        for stream in list(self.streams):
            stream.closed = True
            stream.wake()

    async def stop(self):
        self.close_streams()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._pubsub is not None:
            self._pubsub.close()
        self._reader.close()
        self._read_pool.shutdown(wait=False)

    # -- subscriptions ---------------------------------------------------

    async def acquire(self, job_ids, job_class):
        """Hold (and subscribe) the jobs a stream asks for, before its batch
        verify reads them, so that no change in between is missed.  Raises
        :class:`Unavailable` when Redis cannot be reached."""
        if not self.connected or self.closing:
            raise Unavailable('redis is not connected')
        held = []
        for job_id in job_ids:
            key = (job_id, job_class)
            followed = self.followed.get(key)
            if followed is None:
                followed = self.followed[key] = Followed(job_id, job_class)
                self.by_job.setdefault(job_id, {})[job_class] = followed
            followed.holders += 1
            held.append(followed)
        try:
            await self._sync([f.job_id for f in held])
        except Unavailable:
            await self.release(held)
            raise
        return held

    async def release(self, held):
        """Let go of jobs a stream held; a job nobody holds is unsubscribed."""
        for followed in held:
            followed.holders -= 1
            if followed.holders <= 0:
                self._forget(followed)
        try:
            await self._sync([f.job_id for f in held])
        except Unavailable:
            pass  # the next connection subscribes only what is held then

    def _forget(self, followed: Any) -> None:
        key = (followed.job_id, followed.job_class)
        if key in self.followed and self.followed[key] is followed:
            del self.followed[key]
            classes = self.by_job.get(followed.job_id)
            if classes is not None:
                classes.pop(followed.job_class, None)
                if not classes:
                    del self.by_job[followed.job_id]
        if followed.timer is not None:
            followed.timer.cancel()
            followed.timer = None
        self._dirty.pop(followed, None)

    async def _sync(self, job_ids):
        """Subscribe what is held and not subscribed, unsubscribe what is
        subscribed and no longer held, among ``job_ids``: one connection,
        one lock, so that the commands reach Redis in the order decided."""
        async with self._lock:
            if not self.connected:
                raise Unavailable('redis is not connected')
            asked = list(dict.fromkeys(job_ids))
            wanted = [j for j in asked if j in self.by_job and j not in self.subscribed]
            unwanted = [j for j in asked if j not in self.by_job and j in self.subscribed]
            try:
                if wanted:
                    self._pubsub.subscribe([CHANNEL_PREFIX + j for j in wanted])
                    self.subscribed.update(wanted)
                if unwanted:
                    self._pubsub.unsubscribe([CHANNEL_PREFIX + j for j in unwanted])
                    self.subscribed.difference_update(unwanted)
            except REDIS_ERRORS as exc:
                self.connected = False
                self._pubsub.fail(exc)  # the listener makes it anew
                raise Unavailable(str(exc)) from exc

    # -- streams ---------------------------------------------------------

    def join(self, stream, followed, since):
        """``stream``, which the batch verify authorized for ``followed``'s
        job from loop time ``since``, now receives its changes (and the last
        shared read, if it began after ``since``)."""
        followed.streams.add(stream)
        stream.following[followed.job_id] = followed
        if followed.last_event is not None and followed.last_read >= since:
            stream.put(followed.job_id, followed.last_event, followed.ended)

    def leave(self, stream, followed):
        followed.streams.discard(stream)
        stream.following.pop(followed.job_id, None)

    # -- changes ---------------------------------------------------------

    def _on_message(self, channel_name, data):
        job_id = channel_name[len(CHANNEL_PREFIX) :].decode('utf-8', 'replace')
        classes = self.by_job.get(job_id)
        if not classes:
            return
        try:
            change = json.loads(data.decode())
        except (TypeError, ValueError):  # UnicodeDecodeError is a ValueError
            change = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        for followed in list(classes.values()):
            if followed.ended:
                continue
            if (
                isinstance(change, dict)
                and set(change) - {'job_id', 'status'} <= PROGRESS_FIELDS
                and change.get('status') == followed.last_status
                and now - followed.last_read < self.progress_interval
            ):
                # progress only: at most one read (and event) per interval
                if followed.timer is None:
                    followed.timer = loop.call_at(
                        followed.last_read + self.progress_interval, self._due, followed
                    )
                continue
            self._mark(followed)

    def _due(self, followed):
        followed.timer = None
        self._mark(followed)

    def _mark(self, followed):
        if followed.timer is not None:
            followed.timer.cancel()
            followed.timer = None
        self._dirty[followed] = None
        self._dirty_event.set()

    def reread_all(self):
        """Read every followed job again (after a reconnection)."""
        for followed in list(self.followed.values()):
            if not followed.ended:
                self._mark(followed)

    async def _read_loop(self):
        while True:
            await self._dirty_event.wait()
            # gather the changes of a few ms into one read: under load one
            # read serves many jobs (and a change waits BATCH_WINDOW at most)
            await asyncio.sleep(BATCH_WINDOW)
            self._dirty_event.clear()
            batch, self._dirty = list(self._dirty), {}
            groups: dict[Any, list[Any]] = {}
            for followed in batch:
                groups.setdefault(followed.job_class, []).append(followed)
            reads = []
            for job_class, members in groups.items():
                for start in range(0, len(members), READ_CHUNK):
                    reads.append(self._read(job_class, members[start : start + READ_CHUNK]))
            await asyncio.gather(*reads)

    async def _read(self, job_class, members):
        loop = asyncio.get_running_loop()
        started = loop.time()
        for followed in members:
            followed.last_read = started
        job_ids = [f.job_id for f in members]
        entries = await self._read_in_loop(job_class, job_ids)
        rest = [job_id for job_id in job_ids if job_id not in entries]
        if rest:
            try:
                entries.update(
                    await loop.run_in_executor(
                        self._read_pool, read_entries, self.registry, job_class, rest
                    )
                )
            except Exception:  # pragma: no cover - read_entries catches what strategies raise
                log.exception('reading %d jobs failed', len(rest))
                return
        self.reads += len(members)
        self._deliver(members, entries)

    async def _read_in_loop(self, job_class, job_ids):
        """``{job_id: entry}`` of the jobs of ``job_ids`` that the event loop
        can read (none when their strategy is not in its Redis, or the read
        fails: the thread's read answers then)."""
        if job_class not in self._loop_readable:
            self._loop_readable[job_class] = loop_readable(self.registry, job_class, self.redis_url)
        strategy = self._loop_readable[job_class]
        if strategy is None:
            return {}
        try:
            return await read_in_loop(self._read_script, strategy, job_class, job_ids)
        except Exception as exc:
            log.debug('reading %d jobs in the event loop failed: %s', len(job_ids), exc)
            return {}

    def _deliver(self, members, entries):
        """Hand each stream of ``members`` the event of its job's new entry
        (none for an entry that did not change, nor for a 500 or 503: not
        an answer about the job, which is read again later)."""
        for followed in members:
            entry = entries[followed.job_id]
            if entry['code'] in (500, 503):
                continue  # not an answer about the job: read again later
            text = json.dumps(entry)
            if text == followed.last:
                continue
            followed.last = text
            followed.last_status = entry.get('status')
            followed.ended = has_ended(entry)
            followed.last_event = b'event: job\ndata: ' + text.encode() + b'\n\n'
            for stream in list(followed.streams):
                stream.put(followed.job_id, followed.last_event, followed.ended)

    async def _tick(self):
        """Keep idle streams alive with a comment, and read jobs nothing
        was heard of for a while (a lost worker publishes nothing)."""
        period = self.keepalive / 2
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(period)
            now = loop.time()
            for stream in list(self.streams):
                if now - stream.last_sent >= period:
                    stream.ping = True
                    stream.wake()
            if self.connected:
                for followed in list(self.followed.values()):
                    if (
                        followed.streams
                        and not followed.ended
                        and now - followed.last_read >= self.keepalive
                    ):
                        self._mark(followed)

    # -- the pub/sub connection -----------------------------------------

    async def _listen(self):
        """Keep the pub/sub connection: connect, subscribe what is held,
        watch it, and make it anew (after a growing pause) once it is lost."""
        delay = 0.05
        lost = False
        while True:
            protocol = None
            try:
                protocol = await pubsub.connect(self.redis_url, self._on_message)
                async with self._lock:
                    self._pubsub = protocol
                    self.subscribed = set()
                    held = list(self.by_job)
                    for start in range(0, len(held), 1000):
                        protocol.subscribe([CHANNEL_PREFIX + j for j in held[start : start + 1000]])
                    self.subscribed.update(held)
                    self.connected = True
                if lost:
                    log.warning(
                        'redis pub/sub reconnected: reading %d followed jobs again',
                        len(self.followed),
                    )
                    self.reread_all()
                delay = 0.05
                await self._watch(protocol)
            except asyncio.CancelledError:
                raise
            except REDIS_ERRORS as exc:
                if not lost or self.connected:
                    log.warning('redis pub/sub lost (%s): reconnecting', exc or type(exc).__name__)
                self.connected = False
                lost = True
                if protocol is not None:
                    protocol.close()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def _watch(self, protocol):
        """Return (raising) once ``protocol``'s connection is lost or dead:
        a period in which nothing came, not even the answer to a ``PING``
        sent at the start of it, tells a dead connection."""
        period = min(self.keepalive, 5.0)
        heard = protocol.heard
        pinged = False
        while True:
            try:
                exc = await asyncio.wait_for(asyncio.shield(protocol.lost), period)
            except asyncio.TimeoutError:
                exc = None
            if exc is not None:
                raise exc
            if not self.connected:
                raise ConnectionError('a command failed')
            if protocol.heard != heard:
                heard, pinged = protocol.heard, False
            elif pinged:
                raise ConnectionError('no answer to PING')
            else:
                protocol.ping()
                pinged = True
