"""What the built-in strategies share: reading records and reports."""

from typing import Any

from ..connection import backend_errors
from ..exceptions import UnknownJob


class Unsettled(Exception):
    """``decode(job_id, raw, settle=None)`` of a record that a read must
    settle first (write it as failed: its lease ran out), which a reader
    that may not write (the events gateway's event loop) leaves to
    ``read_many``."""


class ReportingStrategy:
    """Derives ``read_many``, ``report``, ``report_many``, ``owner``,
    ``completed`` and ``meta`` from two methods: ``fetch(job_ids)``, the raw
    records of many jobs in one read, and ``decode(job_id, raw)``, one raw
    record as a :class:`~pyramid_immortus.status.JobRecord` (raising
    :class:`UnknownJob` for a missing one)."""

    #: For a strategy whose records are in Redis (``connection``,
    #: ``key(job_id)``): ``(command, *arguments)`` (strings), the read of one
    #: raw record, ``command(key(job_id), *arguments)``, which ``fetch``
    #: pipelines.  The events gateway sends the same on its asyncio
    #: connection and decodes with ``settle=None``.  ``None``: not in Redis.
    redis_read: tuple[str, ...] | None = None
    #: the ``redis.Redis`` a strategy with ``redis_read`` reads with
    connection: Any = None

    def key(self, job_id):
        """The Redis key of ``job_id``'s record (with ``redis_read``)."""
        raise NotImplementedError

    def fetch(self, job_ids):
        """The raw records of ``job_ids`` in one read: by default,
        ``redis_read`` of each, pipelined."""
        if self.redis_read is None:
            raise NotImplementedError
        command, *arguments = self.redis_read
        return pipelined(self.connection, command, [self.key(j) for j in job_ids], *arguments)

    def decode(self, job_id, raw):
        raise NotImplementedError

    def read_many(self, job_ids):
        """``{job_id: JobRecord or UnknownJob}`` in one read."""
        records = {}
        for job_id, raw in zip(job_ids, self.fetch(job_ids), strict=True):
            try:
                records[job_id] = self.decode(job_id, raw)
            except UnknownJob as exc:
                records[job_id] = exc
        return records

    def read(self, job_id):
        """The :class:`JobRecord` of ``job_id``; raises ``UnknownJob``."""
        return self.decode(job_id, self.fetch([job_id])[0])

    def report(self, job_id):
        """The whole verify answer of ``job_id``; raises ``UnknownJob``."""
        return self.read(job_id).report

    def report_many(self, job_ids):
        """``{job_id: report or UnknownJob}`` in one read."""
        return {
            job_id: getattr(record, 'report', record)
            for job_id, record in self.read_many(job_ids).items()
        }

    def owner(self, job_id):
        """The user id that enqueued the job (a string), or ``None``;
        raises ``UnknownJob``."""
        return self.read(job_id).owner

    def completed(self, job_id):
        """``True`` once the job finished (``False`` for an unknown id)."""
        try:
            return self.report(job_id)['completed']
        except UnknownJob:
            return False

    def meta(self, job_id):
        """The verify answer's fields beyond ``completed``."""
        report = self.report(job_id)
        del report['completed']
        return report


def restarted_within(connection, seconds):
    """Whether the Redis of ``connection`` started less than ``seconds``
    ago: heartbeats could not be written while it was down, so a lease that
    ran out then is no proof that a worker died."""
    with backend_errors():
        return connection.info('server')['uptime_in_seconds'] <= seconds


def pipelined(connection, command, keys, *args):
    """Run ``command(key, *args)`` for every key in one round trip: the
    command alone for one key, a non-transactional pipeline for more."""
    with backend_errors():
        if len(keys) == 1:
            return [getattr(connection, command)(keys[0], *args)]
        pipe = connection.pipeline(transaction=False)
        for key in keys:
            getattr(pipe, command)(key, *args)
        return pipe.execute()
