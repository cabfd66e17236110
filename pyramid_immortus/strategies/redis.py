"""``redis`` (alias ``redis_pub_sub``): job states in Redis hashes."""

import json
import time

from zope.interface import implementer

from ..connection import backend_errors, get_redis
from ..exceptions import UnknownJob
from ..interfaces import IJobTrackingStrategy, IStatusReport, ITrackingCallbacks
from ..settings import get_settings
from ..status import (
    FAILED,
    FINISHED,
    QUEUED,
    STARTED,
    JobRecord,
    build_report,
    exception_info,
    isoformat,
    lease_expired,
    progress_info,
    timestamp,
    worker_lost,
)
from .base import ReportingStrategy, Unsettled, restarted_within

_JSON_FIELDS = ('progress', 'meta', 'exception', 'result')
#: Fields that stay on the server: never in a report, never published.
_PRIVATE_FIELDS = ('owner', 'job_class', 'deadline', 'lease')

#: One write of a job's hash, atomic.  KEYS[1]: the hash.  ARGV: mode
#: ("create", "update" or "lose"), ttl of an ended job, max_age of an
#: unfinished one, the message to publish without its status ("" for none),
#: the time now (for "lose"), then field, value pairs.  "create" makes a new
#: hash; the others change an existing hash whose job has not ended ("lose"
#: only once its lease has run out).  Returns 1 if it wrote, else 0.
WRITE = """
local key, mode = KEYS[1], ARGV[1]
local status = redis.call('hget', key, 'status')
if mode == 'create' then
  if status then return 0 end
elseif (not status) or status == 'finished' or status == 'failed' then
  return 0
end
if mode == 'lose' then
  local deadline = tonumber(redis.call('hget', key, 'deadline'))
  if (not deadline) or deadline >= tonumber(ARGV[5]) then return 0 end
end
if #ARGV > 5 then redis.call('hset', key, unpack(ARGV, 6)) end
status = redis.call('hget', key, 'status')
if status == 'finished' or status == 'failed' then
  redis.call('expire', key, ARGV[2])
else
  redis.call('expire', key, ARGV[3])
end
if ARGV[4] ~= '' then
  redis.call('publish', key, string.sub(ARGV[4], 1, -2) .. ',"status":"' .. status .. '"}')
end
return 1
"""


@implementer(IJobTrackingStrategy, ITrackingCallbacks, IStatusReport)
class RedisStrategy(ReportingStrategy):
    """Writes each job's state to the hash ``immortus:job:<id>`` and
    publishes every change on the channel of the same name (the public
    fields and the status, never the owner).

    Works with any adapter and any number of web and worker processes.
    Only ``job_created`` makes a hash; other writes change an existing one
    and an ended job's hash never changes again.  A hash expires ``ttl``
    seconds after its job ends, and ``max_age`` seconds after its last write
    while the job has not ended (progress and heartbeats keep it alive).
    Every callback and every read is one round trip.
    """

    key_prefix = 'immortus:job:'

    def __init__(self, connection, ttl=86400, max_age=7 * 86400, clock=time.time):
        self.connection = connection
        self.ttl = ttl
        self.max_age = max_age
        self.clock = clock
        self._script = connection.register_script(WRITE)

    @classmethod
    def from_registry(cls, registry):
        """Build one on the application's Redis and ``immortus.*``
        settings."""
        settings = get_settings(registry)
        return cls(get_redis(registry), ttl=settings.status_ttl, max_age=settings.status_max_age)

    def key(self, job_id):
        """The hash (and the channel) of ``job_id``."""
        return self.key_prefix + job_id

    # -- writing ---------------------------------------------------------

    def _write(self, job_id, mode='update', publish=True, due=None, **fields):
        fields = {name: value for name, value in fields.items() if value is not None}
        message = ''
        if publish:
            public = {
                name: value
                for name, value in fields.items()
                if name not in _PRIVATE_FIELDS and name != 'status'
            }
            message = json.dumps({'job_id': job_id, **public})
        pairs = []
        for name, value in fields.items():
            pairs += [name, json.dumps(value) if name in _JSON_FIELDS else value]
        with backend_errors():
            return bool(
                self._script(
                    keys=[self.key(job_id)],
                    args=[mode, self.ttl, self._max_age(due), message, repr(self.clock()), *pairs],
                )
            )

    def _max_age(self, due):
        """How long an unfinished job's hash lives: ``max_age``, counted from
        when the job is ``due`` (an ISO time) for one that waits for it."""
        if due is None:
            return self.max_age
        return self.max_age + max(0, int(timestamp(due) - self.clock()))

    def job_created(
        self, job_id, job_class, owner, deadline=None, max_attempts=1, scheduled_at=None
    ):
        """Create the job's hash, queued, with its class, owner and first
        lease (``deadline``, where its adapter gives one); a scheduled job's
        hash lives ``max_age`` from when it is due."""
        if not self._write(
            job_id,
            'create',
            due=scheduled_at,
            status=QUEUED,
            enqueued_at=isoformat(self.clock()),
            job_class=job_class,
            owner=None if owner is None else str(owner),
            max_attempts=max_attempts,
            scheduled_at=scheduled_at,
            **self._lease(deadline),
        ):
            raise ValueError(f'job {job_id!r} exists already')

    def job_enqueued(self, job_id):
        """Create the hash of a job whose class and owner are unknown."""
        self.job_created(job_id, None, None)

    def job_started(self, job_id):
        """Record the job as started."""
        self._write(job_id, status=STARTED, started_at=isoformat(self.clock()))

    def job_retrying(self, job_id, attempt, retry_at, last_error):
        """The run failed with an error of a ``retry_on``: the job waits,
        queued, for its run ``attempt`` at ``retry_at`` (the lease of the
        run that failed is over)."""
        self._write(
            job_id,
            due=retry_at,
            status=QUEUED,
            attempt=attempt,
            retry_at=retry_at,
            last_error=last_error,
            deadline='',
            lease='',
        )

    def job_result(self, job_id, result):
        """Keep what ``perform`` returned (JSON data)."""
        self._write(job_id, publish=False, result=result)

    def job_finished(self, job_id):
        """Record the job as finished."""
        self._write(job_id, status=FINISHED, ended_at=isoformat(self.clock()))

    def job_failed(self, job_id, exc):
        """Record the job as failed with ``exc``'s type and message."""
        self._write(
            job_id, status=FAILED, ended_at=isoformat(self.clock()), exception=exception_info(exc)
        )

    def job_progress(self, job_id, current, total, message):
        """Record the job's progress."""
        self._write(job_id, progress=progress_info(current, total, message))

    def job_meta(self, job_id, meta):
        """Record the job's ``meta`` dict (JSON data, as ``Job`` checks)."""
        self._write(job_id, meta=meta)

    def job_heartbeat(self, job_id, deadline):
        """The job's worker is alive and promises another heartbeat before
        ``deadline`` (a POSIX time)."""
        self._write(job_id, publish=False, **self._lease(deadline))

    def _lease(self, deadline):
        """The fields of a lease that runs out at ``deadline`` (none for
        ``None``): the deadline, and the lease's length."""
        if deadline is None:
            return {}
        return {'deadline': repr(deadline), 'lease': repr(max(0.0, deadline - self.clock()))}

    def job_discarded(self, job_id):
        """Forget a job that could not be enqueued."""
        with backend_errors():
            self.connection.delete(self.key(job_id))

    # -- reading ---------------------------------------------------------

    #: ``fetch`` reads each hash whole, one ``HGETALL`` each, pipelined
    redis_read = ('hgetall',)

    def decode(self, job_id, raw, settle=True):
        """A hash as a :class:`JobRecord`.  A job whose lease has run out is
        recorded as failed (``WorkerLost``) then and there, so that it
        reads the same for ever after; unless Redis itself restarted less
        than a lease ago (the heartbeats may not have got through), when
        the job reads as it is until then.  ``settle=None`` raises
        :class:`Unsettled` for such a job instead (no command is sent)."""
        if not raw:
            raise UnknownJob(job_id)
        record = {k.decode(): v.decode() for k, v in raw.items()}
        for name in _JSON_FIELDS:
            if name in record:
                record[name] = json.loads(record[name])
        status = record.get('status', QUEUED)
        deadline = record.get('deadline')
        now = self.clock()
        if lease_expired(status, float(deadline) if deadline else None, now) and not (
            settle and restarted_within(self.connection, float(record.get('lease') or 0))
        ):
            if settle is None:
                raise Unsettled(job_id)
            if settle:
                self._write(
                    job_id, 'lose', status=FAILED, ended_at=isoformat(now), exception=worker_lost()
                )
                with backend_errors():
                    raw = self.connection.hgetall(self.key(job_id))
                return self.decode(job_id, raw, settle=False)
            status, record['exception'] = FAILED, worker_lost()
        report = build_report(
            status,
            record.get('enqueued_at'),
            record.get('started_at'),
            record.get('ended_at'),
            record.get('progress'),
            record.get('meta'),
            record.get('exception'),
            int(record.get('attempt', 1)),
            int(record.get('max_attempts', 1)),
            record.get('scheduled_at'),
            record.get('retry_at'),
            record.get('last_error'),
            record.get('result'),
        )
        return JobRecord(report, record.get('job_class'), record.get('owner'))
