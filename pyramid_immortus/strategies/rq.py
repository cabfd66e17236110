"""``rq``: read rq's own job record; the strategy inferred for ``rq``."""

import json
import time

from rq.defaults import DEFAULT_JOB_MONITORING_INTERVAL
from rq.job import Job as RQJob
from zope.interface import implementer

from ..connection import backend_errors, get_redis
from ..events import publish_change
from ..exceptions import UnknownJob
from ..interfaces import IJobTrackingStrategy, IStatusReport, ITrackingCallbacks
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
    worker_lost,
)
from .base import ReportingStrategy, Unsettled, restarted_within

#: rq's job states in this add-on's vocabulary.
RQ_STATES = {
    'created': QUEUED,
    'queued': QUEUED,
    'deferred': QUEUED,
    'scheduled': QUEUED,
    'ready_to_enqueue': QUEUED,
    'rate_limited': QUEUED,
    'started': STARTED,
    'finished': FINISHED,
    'failed': FAILED,
    'stopped': FAILED,
    'canceled': FAILED,
}

#: Why a job failed when it did not say so itself: ``(type, message)``.
RQ_FAILURES = {
    'failed': ('JobFailed', 'the job failed; see the worker log'),
    'stopped': ('Stopped', 'the job was stopped'),
    'canceled': ('Cancelled', 'the job was cancelled'),
}

#: Fields this add-on keeps in rq's job hash, beside rq's own.  ``CLASS``
#: and ``OWNER`` are written with the enqueue, in its transaction: a hash
#: without ``CLASS`` is not this add-on's job.  ``ENDED`` (JSON: status,
#: exception, ended_at) is an end that the add-on decided (a cancel, a lost
#: worker) and overrides whatever rq records later.
CLASS = 'immortus:class'
OWNER = 'immortus:owner'
PROGRESS = 'immortus:progress'
META = 'immortus:meta'
EXCEPTION = 'immortus:exception'
DEADLINE = 'immortus:deadline'
ENDED = 'immortus:ended'
#: Set by a cancel of a job that a worker has taken: it must not start.
STOP = 'immortus:stop'
#: Retries, scheduling and the result (JSON, never pickled).
ATTEMPT = 'immortus:attempt'
MAX_ATTEMPTS = 'immortus:max_attempts'
SCHEDULED_AT = 'immortus:scheduled_at'
RETRY_AT = 'immortus:retry_at'
LAST_ERROR = 'immortus:last_error'
RESULT = 'immortus:result'

#: rq's grace after its heartbeat interval before a silent worker is dead.
RQ_LEASE_GRACE = 60
#: rq's own rule for a started job without heartbeats of ours.
DEFAULT_LEASE = DEFAULT_JOB_MONITORING_INTERVAL + RQ_LEASE_GRACE

_FIELDS = (
    'status',
    'enqueued_at',
    'started_at',
    'ended_at',
    'last_heartbeat',
    DEADLINE,
    PROGRESS,
    META,
    EXCEPTION,
    OWNER,
    CLASS,
    ENDED,
    ATTEMPT,
    MAX_ATTEMPTS,
    SCHEDULED_AT,
    RETRY_AT,
    LAST_ERROR,
    RESULT,
)

#: Set fields of a live job of this add-on.  KEYS[1]: rq's hash.  ARGV:
#: "nx" to keep a field that is set already (else ""), then field, value
#: pairs.  Never creates a hash, never writes once the job has ended (an end
#: of ours, or rq's).
SET_LIVE = """
local v = redis.call('hmget', KEYS[1], 'immortus:class', 'immortus:ended', 'status')
if (not v[1]) or v[2] then return 0 end
if v[3] == 'finished' or v[3] == 'failed' or v[3] == 'stopped' or v[3] == 'canceled' then
  return 0
end
for i = 2, #ARGV, 2 do
  if ARGV[1] ~= 'nx' or redis.call('hexists', KEYS[1], ARGV[i]) == 0 then
    redis.call('hset', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return 1
"""

#: Record a started job whose lease ran out as lost, unless something
#: changed since it was read.  KEYS[1]: rq's hash.  ARGV: the status,
#: heartbeat and deadline that were read ("" for none), the end to record.
LOSE = """
local v = redis.call('hmget', KEYS[1], 'status', 'last_heartbeat',
                     'immortus:deadline', 'immortus:ended')
if v[4] or v[1] ~= ARGV[1] or (v[2] or '') ~= ARGV[2] or (v[3] or '') ~= ARGV[3] then
  return 0
end
redis.call('hset', KEYS[1], 'immortus:ended', ARGV[4])
return 1
"""


def rq_time(raw):
    """rq's ``2026-01-02T03:04:05.678901Z`` as ``2026-01-02T03:04:05.678Z``."""
    if not raw:
        return None
    text = raw.decode()
    return text[:23] + 'Z' if len(text) > 23 else text


def rq_timestamp(raw):
    """rq's time string as a POSIX timestamp."""
    from rq.utils import utcparse

    return utcparse(raw.decode()).timestamp()


def ended_mark(status, exception, now):
    """The ``ENDED`` field's value."""
    return json.dumps({'status': status, 'exception': exception, 'ended_at': isoformat(now)})


def _json(raw):
    return json.loads(raw) if raw else None


def _text(raw):
    return raw.decode() if raw else None


@implementer(IJobTrackingStrategy, ITrackingCallbacks, IStatusReport)
class RQStrategy(ReportingStrategy):
    """Reports what rq itself records about a job, plus the progress, meta
    and failure details the job gives it, kept in rq's job hash so that
    they expire with it (``result_ttl``, ``failure_ttl``).

    Only jobs that this add-on enqueued exist for it.  ``completed`` is true
    only when rq says finished; failed, stopped and cancelled jobs are
    failed; a started job whose worker stopped sending heartbeats is failed
    (``WorkerLost``) once its lease has run out, and stays so.  A verify is
    one ``HMGET``.
    """

    #: it reads what the ``rq`` adapter writes
    needs_rq_adapter = True

    def __init__(self, connection, clock=time.time):
        self.connection = connection
        self.clock = clock
        self._set_live = connection.register_script(SET_LIVE)
        self._lose = connection.register_script(LOSE)

    @classmethod
    def from_registry(cls, registry):
        """Build one on the application's Redis."""
        return cls(get_redis(registry))

    def key(self, job_id):
        """rq's hash of ``job_id``."""
        return RQJob.key_for(job_id)

    # -- writing (rq records the states itself) --------------------------

    def job_created(
        self, job_id, job_class, owner, deadline=None, max_attempts=1, scheduled_at=None
    ):
        """Nothing to do: the ``rq`` adapter writes the class, owner,
        attempts and due time in the enqueue's own transaction."""

    def job_enqueued(self, job_id):
        """Nothing to do: rq records it."""

    def job_started(self, job_id):
        """Nothing to do: rq records it."""

    def job_finished(self, job_id):
        """Nothing to do: rq records it."""

    def _set(self, job_id, *pairs, keep=False, change=None):
        with backend_errors():
            written = self._set_live(keys=[self.key(job_id)], args=['nx' if keep else '', *pairs])
            if written and change is not None:  # the events gateway listens
                publish_change(self.connection, job_id, **change)

    def job_progress(self, job_id, current, total, message):
        """Keep the job's progress in its rq hash (and publish it)."""
        progress = progress_info(current, total, message)
        self._set(
            job_id, PROGRESS, json.dumps(progress), change={'status': STARTED, 'progress': progress}
        )

    def job_meta(self, job_id, meta):
        """Keep the job's ``meta`` in its rq hash (as JSON, unlike rq's
        pickled ``meta``, so that web processes never unpickle), and
        publish it."""
        self._set(job_id, META, json.dumps(meta), change={'status': STARTED, 'meta': meta})

    def job_failed(self, job_id, exc):
        """Keep the first failure's type and message in the rq hash."""
        info = exception_info(exc)
        self._set(job_id, EXCEPTION, json.dumps(info), keep=True, change={'exception': info})

    def job_retrying(self, job_id, attempt, retry_at, last_error):
        """Keep the next attempt, its time and the error that caused it (rq
        then schedules the run)."""
        self._set(
            job_id,
            ATTEMPT,
            str(attempt),
            RETRY_AT,
            retry_at,
            LAST_ERROR,
            last_error,
            change={
                'status': QUEUED,
                'attempt': attempt,
                'retry_at': retry_at,
                'last_error': last_error,
            },
        )

    def job_result(self, job_id, result):
        """Keep what ``perform`` returned, as JSON beside rq's pickled
        result, so that web processes never unpickle."""
        self._set(job_id, RESULT, json.dumps(result))

    def job_heartbeat(self, job_id, deadline):
        """Nothing to do: the worker writes the deadline in rq's hash."""

    def job_discarded(self, job_id):
        """Nothing to do: the ``rq`` adapter enqueues in one transaction."""

    # -- reading ---------------------------------------------------------

    #: ``fetch`` reads the fields it needs, one ``HMGET`` each, pipelined
    redis_read = ('hmget', *_FIELDS)

    def decode(self, job_id, values, settle=True):
        """rq's fields as a :class:`JobRecord`, with rq's status as the
        report's ``rq_status``.  A started job whose lease ran out is
        recorded as lost (unless Redis restarted within a lease);
        ``settle=None`` raises :class:`Unsettled` for it instead."""
        (
            status,
            enqueued_at,
            started_at,
            ended_at,
            heartbeat,
            deadline,
            progress,
            meta,
            exception,
            owner,
            job_class,
            ended,
            attempt,
            max_attempts,
            scheduled_at,
            retry_at,
            last_error,
            result,
        ) = values
        if status is None or job_class is None:
            raise UnknownJob(job_id)
        rq_status = status.decode()
        state = RQ_STATES.get(rq_status, QUEUED)
        exception = _json(exception)
        ended_at = rq_time(ended_at)
        if ended is None and state == STARTED:
            lease = (
                float(deadline)
                if deadline is not None
                else (rq_timestamp(heartbeat) + DEFAULT_LEASE if heartbeat is not None else None)
            )
            now = self.clock()
            length = (
                lease - rq_timestamp(heartbeat)
                if lease is not None and heartbeat
                else DEFAULT_LEASE
            )
            if lease_expired(state, lease, now) and not (
                settle and restarted_within(self.connection, length)
            ):
                if settle is None:
                    raise Unsettled(job_id)
                ended = ended_mark(FAILED, worker_lost(), now).encode()
                if settle:
                    with backend_errors():
                        self._lose(
                            keys=[self.key(job_id)],
                            args=[status, heartbeat or b'', deadline or b'', ended],
                        )
                        values = self.connection.hmget(self.key(job_id), _FIELDS)
                    return self.decode(job_id, values, settle=False)
        if ended is not None:
            mark = json.loads(ended)
            state, exception, ended_at = mark['status'], mark['exception'], mark['ended_at']
        elif state == FAILED and exception is None:
            kind, message = RQ_FAILURES[rq_status]
            exception = {'type': kind, 'message': message}
        report = build_report(
            state,
            rq_time(enqueued_at),
            rq_time(started_at),
            ended_at,
            _json(progress),
            _json(meta),
            exception if state == FAILED else None,
            int(attempt or 1),
            int(max_attempts or 1),
            _text(scheduled_at),
            _text(retry_at),
            _text(last_error),
            _json(result),
        )
        report['rq_status'] = rq_status
        return JobRecord(report, job_class.decode(), owner.decode() if owner is not None else None)
