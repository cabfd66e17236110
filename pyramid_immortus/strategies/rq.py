"""``rq``: read rq's own job record; the strategy inferred for ``rq``."""
import json
import time

from rq.job import Job as RQJob
from zope.interface import implementer

from ..connection import backend_errors, get_redis
from ..exceptions import UnknownJob
from ..interfaces import IJobTrackingStrategy, IStatusReport, ITrackingCallbacks
from ..status import (
    FAILED, FINISHED, QUEUED, STARTED, build_report, exception_info,
    progress_info,
)
from .base import ReportingStrategy, pipelined
from .redis import WORKER_LOST, lease_expired

#: rq's job states in this add-on's vocabulary.
RQ_STATES = {
    'created': QUEUED, 'queued': QUEUED, 'deferred': QUEUED,
    'scheduled': QUEUED, 'ready_to_enqueue': QUEUED, 'rate_limited': QUEUED,
    'started': STARTED, 'finished': FINISHED,
    'failed': FAILED, 'stopped': FAILED, 'canceled': FAILED,
}

#: Why a job failed when it did not say so itself.
RQ_FAILURES = {
    'failed': {'type': 'JobFailed', 'message': 'the job failed; see the worker log'},
    'stopped': {'type': 'Stopped', 'message': 'the job was stopped'},
    'canceled': {'type': 'Cancelled', 'message': 'the job was cancelled'},
}

#: Fields this add-on keeps in rq's job hash, beside rq's own.
OWNER = 'immortus:owner'
PROGRESS = 'immortus:progress'
META = 'immortus:meta'
EXCEPTION = 'immortus:exception'
DEADLINE = 'immortus:deadline'

#: rq's own rule for a started job without heartbeats:
#: ``job_monitoring_interval`` (30 s by default) + 60 s.
DEFAULT_LEASE = 30 + 60

_FIELDS = ('status', 'enqueued_at', 'started_at', 'ended_at', 'last_heartbeat',
           DEADLINE, PROGRESS, META, EXCEPTION, OWNER)


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


def _json(raw):
    return json.loads(raw) if raw else None


@implementer(IJobTrackingStrategy, ITrackingCallbacks, IStatusReport)
class RQStrategy(ReportingStrategy):
    """Reports what rq itself records about a job, plus the progress, meta
    and failure details the job gives it, kept in rq's job hash so that
    they expire with it (``result_ttl``, ``failure_ttl``).

    ``completed`` is true only when rq says finished; failed, stopped and
    cancelled jobs are failed; a started job whose worker stopped sending
    heartbeats is failed once its lease has run out.  A verify is one
    ``HMGET``.
    """

    def __init__(self, connection, clock=time.time):
        self.connection = connection
        self.clock = clock

    @classmethod
    def from_registry(cls, registry):
        """Build one on the application's Redis."""
        return cls(get_redis(registry))

    def key(self, job_id):
        """rq's hash of ``job_id``."""
        return RQJob.key_for(job_id)

    # -- writing (rq records the states itself) --------------------------

    def job_enqueued(self, job_id):
        """Nothing to do: rq records it."""

    def job_started(self, job_id):
        """Nothing to do: rq records it."""

    def job_finished(self, job_id):
        """Nothing to do: rq records it."""

    def _set(self, job_id, field, value):
        with backend_errors():
            self.connection.hset(self.key(job_id), field, json.dumps(value))

    def job_progress(self, job_id, current, total, message):
        """Keep the job's progress in its rq hash."""
        self._set(job_id, PROGRESS, progress_info(current, total, message))

    def job_meta(self, job_id, meta):
        """Keep the job's ``meta`` in its rq hash (as JSON, unlike rq's
        pickled ``meta``, so that web processes never unpickle)."""
        self._set(job_id, META, meta)

    def job_failed(self, job_id, exc):
        """Keep the exception's type and message in the rq hash."""
        self._set(job_id, EXCEPTION, exception_info(exc))

    # -- reading ---------------------------------------------------------

    def fetch(self, job_ids):
        """The fields read of ``job_ids``, one ``HMGET`` each, pipelined."""
        return pipelined(self.connection, 'hmget', [self.key(j) for j in job_ids],
                         _FIELDS)

    def decode(self, job_id, values):
        """rq's fields as a verify answer, with rq's status as
        ``rq_status``."""
        (status, enqueued_at, started_at, ended_at, heartbeat, deadline,
         progress, meta, exception, owner) = values
        if status is None:
            raise UnknownJob(job_id)
        rq_status = status.decode()
        state = RQ_STATES.get(rq_status, QUEUED)
        exception = _json(exception)
        if state == STARTED:
            if deadline is not None:
                deadline = float(deadline)
            elif heartbeat is not None:
                deadline = rq_timestamp(heartbeat) + DEFAULT_LEASE
            if lease_expired(state, deadline, self.clock()):
                state, exception = FAILED, WORKER_LOST
        elif state == FAILED and exception is None:
            exception = RQ_FAILURES[rq_status]
        report = build_report(
            state, rq_time(enqueued_at), rq_time(started_at), rq_time(ended_at),
            _json(progress), _json(meta), exception if state == FAILED else None,
            owner.decode() if owner is not None else None)
        report['rq_status'] = rq_status
        return report

    def owner(self, job_id):
        """The user id recorded with the enqueue, or ``None``."""
        with backend_errors():
            owner = self.connection.hget(self.key(job_id), OWNER)
        return owner.decode() if owner is not None else None
