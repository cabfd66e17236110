"""``rq``: jobs go to Redis; ``immortus-worker`` processes run them."""

import time
from datetime import datetime, timedelta, timezone

from pyramid.threadlocal import get_current_registry
from rq import Queue
from rq.command import send_command
from rq.job import Job as RQJob
from rq.job import JobStatus, get_current_job
from rq.registry import CanceledJobRegistry, ScheduledJobRegistry
from rq.utils import now
from zope.interface import implementer

from ..callbacks import notify
from ..catalog import find_tracking_strategy
from ..connection import backend_errors, get_redis
from ..events import publish_change
from ..exceptions import Cancelled, JobAlreadyEnded, JobNotRegistered, UnknownJob
from ..interfaces import ICancellableQueueAdapter, IJobCatalog, IJobTrackingStrategy
from ..settings import get_settings
from ..status import FAILED, STARTED, isoformat
from ..strategies.rq import (
    ATTEMPT,
    CLASS,
    DEADLINE,
    MAX_ATTEMPTS,
    OWNER,
    RQ_STATES,
    SCHEDULED_AT,
    SET_LIVE,
    STOP,
    ended_mark,
)

#: The function every rq job of this add-on calls, by its dotted name.
PERFORM = 'pyramid_immortus.adapters.rq.perform'

#: Cancel a job that still waits in its queue, or for its time (a
#: scheduled job, a retry), atomically: taken out of the queue or of the
#: scheduled registry, it can never be dequeued.  KEYS: the job's hash, its
#: queue, its queue's canceled registry, its scheduled registry.  ARGV: job
#: id, registry score, the end to record.  Returns 1 (cancelled), 0 (not
#: waiting: taken by a worker, or ended), -1 (not this add-on's job).
CANCEL = """
if redis.call('hexists', KEYS[1], 'immortus:class') == 0 then return -1 end
if redis.call('lrem', KEYS[2], 0, ARGV[1]) == 0
    and redis.call('zrem', KEYS[4], ARGV[1]) == 0 then
  return 0
end
redis.call('hset', KEYS[1], 'status', 'canceled', 'immortus:ended', ARGV[3])
redis.call('zadd', KEYS[3], ARGV[2], ARGV[1])
return 1
"""


def perform(job_class, job_id, args, kwargs, owner=None):
    """Run an enqueued job inside an rq work horse.

    The registry is the one ``immortus-worker`` booted from the
    application's ``.ini``; a plain ``rq worker`` has none to offer.
    """
    registry = get_current_registry()
    catalog = registry.queryUtility(IJobCatalog)
    klass = catalog.get(job_class) if catalog is not None else None
    if klass is None:
        raise JobNotRegistered(
            f'this worker knows no job {job_class!r}: run jobs with '
            '"immortus-worker CONFIG_URI" on the application\'s .ini'
        )
    stop, attempt = get_redis(registry).hmget(RQJob.key_for(job_id), STOP, ATTEMPT)
    if stop:
        raise Cancelled('cancelled on request before it started')
    job = klass(registry, job_id=job_id, arguments=args, kwargs=kwargs, owner=owner)
    job.attempt = int(attempt or 1)
    try:
        return job.run()
    except BaseException:
        rq_job = get_current_job()
        if job.next_retry is not None and rq_job is not None:
            # rq's own retry: it schedules the next run (its scheduler runs
            # in immortus-worker) when the worker handles this failure; the
            # next run learns its number from rq's hash, whatever the strategy
            rq_job.retries_left = 1
            rq_job.retry_intervals = [job.next_retry.delay]
            get_redis(registry).hset(rq_job.key, ATTEMPT, str(job.next_retry.attempt))
        raise


class ImmortusRQJob(RQJob):
    """rq's job, whose heartbeats also record the deadline of the next one,
    so that verify can tell a job whose worker died from a running one, and
    pass it on to the job's strategy (``job_heartbeat``).  It knows its
    registered class (``immortus_class``) without unpickling anything."""

    #: set by ``ImmortusWorker`` once ``perform`` has returned or raised
    execution_ended = False
    #: the job's registered class name, or ``None`` for a job not of ours
    immortus_class = None

    def restore(self, raw_data):
        super().restore(raw_data)
        job_class = raw_data.get(CLASS.encode())
        self.immortus_class = job_class.decode() if job_class is not None else None

    def retry(self, queue, pipeline):
        """rq's retry, with the status written in the same transaction as
        the rest (rq writes it at once, so a worker killed in between left
        a job that read "scheduled" in no registry, waiting for ever)."""
        delay = self.get_retry_interval()
        self.retries_left = (self.retries_left or 1) - 1
        if delay:
            self.set_status(JobStatus.SCHEDULED, pipeline=pipeline)
            queue.schedule_job(self, now() + timedelta(seconds=delay), pipeline=pipeline)
        else:
            queue._enqueue_job(self, pipeline=pipeline, at_front=self.enqueue_at_front_on_retry)

    def heartbeat(self, timestamp, ttl, pipeline=None, xx=False):
        super().heartbeat(timestamp, ttl, pipeline=pipeline, xx=xx)
        if self.execution_ended:
            return  # rq's last beat, after the job ended: no lease to extend
        deadline = timestamp.timestamp() + ttl
        connection = pipeline if pipeline is not None else self.connection
        connection.hset(self.key, DEADLINE, repr(deadline))
        for strategy in self.tracking_strategies():
            notify(strategy, 'job_heartbeat', self.id, deadline)

    # rq itself publishes nothing: each state it records for a job that the
    # rq strategy tracks is published on the job's channel, in the same
    # pipeline, for the events gateway (pyramid_immortus.events); other
    # strategies publish their own changes.
    def prepare_for_execution(self, worker_name, pipeline):
        super().prepare_for_execution(worker_name, pipeline)
        if self._publishes_for_rq():
            publish_change(pipeline, self.id, STARTED)

    def set_status(self, status, pipeline=None):
        super().set_status(status, pipeline=pipeline)
        if self._publishes_for_rq():
            publish_change(
                pipeline if pipeline is not None else self.connection,
                self.id,
                RQ_STATES.get(str(getattr(status, 'value', status)), None),
            )

    def _publishes_for_rq(self):
        return any(
            getattr(strategy, 'needs_rq_adapter', False) for strategy in self.tracking_strategies()
        )

    def tracking_strategies(self):
        """The strategy of this job's class; for a class this worker does
        not know, every registered strategy that keeps the promise to write
        only to a record it holds (``job_created``) and that other processes
        see; none for a job not of ours."""
        if self.immortus_class is None:
            return []
        registry = get_current_registry()
        try:
            return [find_tracking_strategy(registry, self.immortus_class)]
        except LookupError:
            return [
                strategy
                for _, strategy in registry.getUtilitiesFor(IJobTrackingStrategy)
                if hasattr(strategy, 'job_created')
                and not getattr(strategy, 'process_local', False)
            ]


#: rq states after which a job runs no more.
ENDED_RQ = frozenset(('finished', 'failed', 'stopped', 'canceled'))


@implementer(ICancellableQueueAdapter)
class RQAdapter:
    """Enqueues jobs on rq queues in ``immortus.redis_url``.

    A job goes to its class's ``queue`` or ``immortus.rq.queue``, with the
    ``immortus.rq.*`` timeouts and TTLs, and its class and owner in rq's job
    hash, all in one transaction: nothing is half-enqueued.
    """

    strategy_name = 'rq'
    #: its jobs run in other processes (``immortus-worker``)
    out_of_process = True
    #: it keeps rq's job records, which the ``rq`` strategy reads
    rq = True

    def __init__(
        self, connection, queue='default', job_timeout=None, result_ttl=None, failure_ttl=None
    ):
        self.connection = connection
        self.queue_name = queue
        self.options = {
            'timeout': job_timeout,
            'result_ttl': result_ttl,
            'failure_ttl': failure_ttl,
        }
        self._cancel = connection.register_script(CANCEL)
        self._set_live = connection.register_script(SET_LIVE)

    @classmethod
    def from_registry(cls, registry):
        """Build one from the ``immortus.*`` settings."""
        settings = get_settings(registry)
        return cls(
            get_redis(registry),
            queue=settings.rq_queue,
            job_timeout=settings.rq_job_timeout,
            result_ttl=settings.result_ttl,
            failure_ttl=settings.rq_failure_ttl,
        )

    log_name = 'RQ'

    def queue_label(self, queue):
        """The rq queue of a job whose class names ``queue`` (or none)."""
        return queue or self.queue_name

    def queue_for(self, job):
        """The rq ``Queue`` ``job`` goes to."""
        return Queue(self.queue_label(job.queue), connection=self.connection)

    def prepare(self, job):
        """Build the rq job and serialise its arguments now, so that what rq
        cannot carry fails in ``perform_later`` and not in the worker."""
        rq_job = self.queue_for(job).create_job(
            PERFORM,
            args=(job.job_class, job.job_id, job.arguments, job.kwargs, job.owner),
            job_id=job.job_id,
            description=f'{job.job_class}({job.job_id})',
            **self.options,
        )
        try:
            rq_job.data  # noqa: B018 -- serialises the arguments now
        except Exception as exc:
            raise TypeError(
                f'the arguments of {job!r} cannot be sent to rq (they must pickle): {exc}'
            ) from exc
        job.prepared = rq_job

    def enqueue(self, job):
        """Push the prepared rq job, or schedule it when it is due later
        (rq's scheduler, which ``immortus-worker`` runs, enqueues it then),
        with its class, owner and attempts, in one transaction."""
        rq_job = job.prepared
        queue = self.queue_for(job)
        identity = {CLASS: job.job_class, MAX_ATTEMPTS: str(job.max_attempts)}
        if job.owner is not None:
            identity[OWNER] = job.owner
        with backend_errors():
            with self.connection.pipeline() as pipe:
                if job.scheduled_at is not None and job.scheduled_at > time.time():
                    identity[SCHEDULED_AT] = isoformat(job.scheduled_at)
                    due = datetime.fromtimestamp(job.scheduled_at, timezone.utc)
                    queue.schedule_job(rq_job, due, pipeline=pipe)
                else:
                    queue.enqueue_job(rq_job, pipeline=pipe)
                pipe.hset(rq_job.key, mapping=identity)
                pipe.execute()

    def job_class_of(self, job_id):
        """The registered class name of a job this adapter enqueued, read
        from its rq hash without unpickling; ``None`` for any other id."""
        with backend_errors():
            job_class = self.connection.hget(RQJob.key_for(job_id), CLASS)
        return job_class.decode() if job_class is not None else None

    def cancel(self, job_id):
        """Cancel a job that waits in its queue (``'cancelled'``), in one
        atomic step that no worker can race, or stop a job that a worker
        has taken (``'stopping'``): it is marked so that it does not start,
        and a worker running it is told to kill it; the worker then records
        the stop as the job's failure.  Nothing is unpickled."""
        key = RQJob.key_for(job_id)
        with backend_errors():
            origin = self.connection.hget(key, 'origin')
            if origin is None:
                raise UnknownJob(job_id)
            origin = origin.decode()
            cancelled = self._cancel(
                keys=[
                    key,
                    Queue(origin, connection=self.connection).key,
                    CanceledJobRegistry(origin, connection=self.connection).key,
                    ScheduledJobRegistry(origin, connection=self.connection).key,
                ],
                args=[
                    job_id,
                    int(time.time()) + (self.options['failure_ttl'] or 31536000),
                    ended_mark(
                        FAILED,
                        {'type': 'Cancelled', 'message': 'cancelled on request'},
                        time.time(),
                    ),
                ],
            )
            if cancelled == -1:
                raise UnknownJob(job_id)
            if cancelled == 1:
                publish_change(self.connection, job_id, FAILED)
                return 'cancelled'
            if not self._set_live(keys=[key], args=['', STOP, '1']):
                raise JobAlreadyEnded(job_id)
            status, worker = self.connection.hmget(key, 'status', 'worker_name')
            if status is not None and status.decode() in ENDED_RQ:
                raise JobAlreadyEnded(job_id)
            if worker:
                send_command(self.connection, worker.decode(), 'stop-job', job_id=job_id)
        return 'stopping'
