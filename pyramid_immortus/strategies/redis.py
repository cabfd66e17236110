"""``redis`` (alias ``redis_pub_sub``): job states in Redis hashes."""
import json
import time

from zope.interface import implementer

from ..connection import backend_errors, get_redis
from ..exceptions import UnknownJob
from ..interfaces import IJobTrackingStrategy, IStatusReport, ITrackingCallbacks
from ..settings import SETTINGS_PREFIX
from .base import ReportingStrategy, pipelined
from ..status import (
    ENDED, FAILED, FINISHED, QUEUED, STARTED, build_report, exception_info,
    isoformat, progress_info,
)

#: What a job whose worker stopped sending heartbeats failed with.
WORKER_LOST = {'type': 'WorkerLost',
               'message': 'the worker running this job stopped responding'}

_JSON_FIELDS = ('progress', 'meta', 'exception')


def lease_expired(status, deadline, now):
    """A started job whose worker's lease ran out has lost its worker."""
    return status == STARTED and deadline is not None and now > deadline


@implementer(IJobTrackingStrategy, ITrackingCallbacks, IStatusReport)
class RedisStrategy(ReportingStrategy):
    """Writes each job's state to the hash ``immortus:job:<id>`` and
    publishes every change on the channel of the same name.

    Works with any adapter and any number of web and worker processes.
    A hash expires ``ttl`` seconds after its job ends, and ``max_age``
    seconds after its last write while the job has not ended.  Every
    callback and every read is one round trip.
    """

    key_prefix = 'immortus:job:'

    def __init__(self, connection, ttl=86400, max_age=7 * 86400, clock=time.time):
        self.connection = connection
        self.ttl = ttl
        self.max_age = max_age
        self.clock = clock

    @classmethod
    def from_registry(cls, registry):
        """Build one on the application's Redis and ``immortus.*``
        settings."""
        settings = registry.settings
        return cls(get_redis(registry), ttl=settings[SETTINGS_PREFIX + 'status_ttl'],
                   max_age=settings[SETTINGS_PREFIX + 'status_max_age'])

    def key(self, job_id):
        """The hash (and the channel) of ``job_id``."""
        return self.key_prefix + job_id

    # -- writing ---------------------------------------------------------

    def _write(self, job_id, status=None, publish=True, **fields):
        mapping = {name: json.dumps(value) if name in _JSON_FIELDS else value
                   for name, value in fields.items() if value is not None}
        if status is not None:
            mapping['status'] = status
        key = self.key(job_id)
        with backend_errors():
            pipe = self.connection.pipeline(transaction=False)
            pipe.hset(key, mapping=mapping)
            if status is not None:
                pipe.expire(key, self.ttl if status in ENDED else self.max_age)
            else:
                # a bound for a new hash; an existing one keeps its expiry
                pipe.expire(key, self.max_age, nx=True)
            if publish:
                pipe.publish(key, json.dumps({'job_id': job_id, 'status': status,
                                              **fields}))
            pipe.execute()

    def job_enqueued(self, job_id):
        """Record the job as queued."""
        self._write(job_id, QUEUED, enqueued_at=isoformat(self.clock()))

    def job_started(self, job_id):
        """Record the job as started."""
        self._write(job_id, STARTED, started_at=isoformat(self.clock()))

    def job_finished(self, job_id):
        """Record the job as finished."""
        self._write(job_id, FINISHED, ended_at=isoformat(self.clock()))

    def job_failed(self, job_id, exc):
        """Record the job as failed with ``exc``'s type and message."""
        self._write(job_id, FAILED, ended_at=isoformat(self.clock()),
                    exception=exception_info(exc))

    def job_progress(self, job_id, current, total, message):
        """Record the job's progress."""
        self._write(job_id, progress=progress_info(current, total, message))

    def job_meta(self, job_id, meta):
        """Record the job's ``meta`` dict."""
        self._write(job_id, meta=meta)

    def job_owner(self, job_id, owner):
        """Record who enqueued the job."""
        self._write(job_id, owner=owner)

    def job_heartbeat(self, job_id, deadline):
        """The job's worker is alive and promises another heartbeat before
        ``deadline`` (a POSIX time)."""
        self._write(job_id, publish=False, deadline=repr(deadline))

    def job_discarded(self, job_id):
        """Forget a job that could not be enqueued."""
        with backend_errors():
            self.connection.delete(self.key(job_id))

    # -- reading ---------------------------------------------------------

    def fetch(self, job_ids):
        """The hashes of ``job_ids``, one ``HGETALL`` each, pipelined."""
        return pipelined(self.connection, 'hgetall', [self.key(j) for j in job_ids])

    def decode(self, job_id, raw):
        """A hash as a verify answer."""
        if not raw:
            raise UnknownJob(job_id)
        record = {k.decode(): v.decode() for k, v in raw.items()}
        for name in _JSON_FIELDS:
            if name in record:
                record[name] = json.loads(record[name])
        status = record.get('status', QUEUED)
        deadline = record.get('deadline')
        if lease_expired(status, deadline and float(deadline), self.clock()):
            status, record['exception'] = FAILED, WORKER_LOST
        return build_report(
            status, record.get('enqueued_at'), record.get('started_at'),
            record.get('ended_at'), record.get('progress'), record.get('meta'),
            record.get('exception'), record.get('owner'))

    def owner(self, job_id):
        """The user id that enqueued the job, or ``None``."""
        with backend_errors():
            owner = self.connection.hget(self.key(job_id), 'owner')
        return owner.decode() if owner is not None else None
