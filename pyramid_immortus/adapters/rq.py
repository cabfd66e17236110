"""``rq``: jobs go to Redis; ``immortus-worker`` processes run them."""
from pyramid.threadlocal import get_current_registry
from rq import Queue
from rq.command import send_stop_job_command
from rq.exceptions import NoSuchJobError
from rq.job import Job as RQJob, JobStatus
from zope.interface import implementer

from ..catalog import find_tracking_strategy, notify
from ..connection import backend_errors, get_redis
from ..exceptions import JobAlreadyEnded, JobNotRegistered, UnknownJob
from ..interfaces import ICancellableQueueAdapter, IJobCatalog
from ..settings import SETTINGS_PREFIX
from ..strategies.rq import DEADLINE, OWNER

#: The function every rq job of this add-on calls, by its dotted name.
PERFORM = 'pyramid_immortus.adapters.rq.perform'


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
            '"immortus-worker CONFIG_URI" on the application\'s .ini')
    job = klass(registry, job_id=job_id, arguments=args, kwargs=kwargs, owner=owner)
    return job.run()


class ImmortusRQJob(RQJob):
    """rq's job, whose heartbeats also record the deadline of the next one,
    so that verify can tell a job whose worker died from a running one, and
    pass it on to the job's strategy (``job_heartbeat``)."""

    #: set by ``ImmortusWorker`` once ``perform`` has returned or raised
    execution_ended = False

    def heartbeat(self, timestamp, ttl, pipeline=None, xx=False):
        super().heartbeat(timestamp, ttl, pipeline=pipeline, xx=xx)
        if self.execution_ended:
            return  # rq's last beat, after the job ended: no lease to extend
        deadline = timestamp.timestamp() + ttl
        connection = pipeline if pipeline is not None else self.connection
        connection.hset(self.key, DEADLINE, repr(deadline))
        self._strategy_heartbeat(deadline)

    def _strategy_heartbeat(self, deadline):
        if self.func_name != PERFORM:
            return
        registry = get_current_registry()
        job_class = self.args[0]
        try:
            strategy = find_tracking_strategy(registry, job_class)
        except LookupError:
            return
        notify(strategy, 'job_heartbeat', self.id, deadline)


#: rq states in which a job can still be cancelled before it runs.
WAITING = frozenset((JobStatus.CREATED, JobStatus.QUEUED, JobStatus.DEFERRED,
                     JobStatus.SCHEDULED))


@implementer(ICancellableQueueAdapter)
class RQAdapter:
    """Enqueues jobs on rq queues in ``immortus.redis_url``.

    A job goes to its class's ``queue`` or ``immortus.rq.queue``, with the
    ``immortus.rq.*`` timeouts and TTLs, and its owner in rq's job hash,
    all in one transaction: nothing is half-enqueued.
    """

    strategy_name = 'rq'

    def __init__(self, connection, queue='default', job_timeout=None,
                 result_ttl=None, failure_ttl=None):
        self.connection = connection
        self.queue_name = queue
        self.options = {'timeout': job_timeout, 'result_ttl': result_ttl,
                        'failure_ttl': failure_ttl}

    @classmethod
    def from_registry(cls, registry):
        """Build one from the ``immortus.*`` settings."""
        settings = registry.settings
        return cls(
            get_redis(registry),
            queue=settings[SETTINGS_PREFIX + 'rq.queue'],
            job_timeout=settings[SETTINGS_PREFIX + 'rq.job_timeout'],
            result_ttl=settings[SETTINGS_PREFIX + 'rq.result_ttl'],
            failure_ttl=settings[SETTINGS_PREFIX + 'rq.failure_ttl'],
        )

    def queue_for(self, job):
        """The rq ``Queue`` ``job`` goes to."""
        return Queue(job.queue or self.queue_name, connection=self.connection)

    def prepare(self, job):
        """Build the rq job and serialise its arguments now, so that what rq
        cannot carry fails in ``perform_later`` and not in the worker."""
        rq_job = self.queue_for(job).create_job(
            PERFORM,
            args=(job.job_class, job.job_id, job.arguments, job.kwargs, job.owner),
            job_id=job.job_id, description=f'{job.job_class}({job.job_id})',
            **self.options)
        try:
            rq_job.data  # noqa: B018 -- serialises the arguments now
        except Exception as exc:
            raise TypeError(
                f'the arguments of {job!r} cannot be sent to rq '
                f'(they must pickle): {exc}') from exc
        job.prepared = rq_job

    def enqueue(self, job):
        """Push the prepared rq job (and its owner) in one transaction."""
        rq_job = job.prepared
        queue = self.queue_for(job)
        with backend_errors():
            with self.connection.pipeline() as pipe:
                queue.enqueue_job(rq_job, pipeline=pipe)
                if job.owner is not None:
                    pipe.hset(rq_job.key, OWNER, str(job.owner))
                pipe.execute()

    def cancel(self, job_id, before_stop=None):
        """Cancel a waiting rq job (``'cancelled'``), or ask the worker of a
        running one to stop it (``'stopping'``)."""
        with backend_errors():
            try:
                rq_job = RQJob.fetch(job_id, connection=self.connection)
            except NoSuchJobError:
                raise UnknownJob(job_id) from None
            status = rq_job.get_status(refresh=False)
            if status in WAITING:
                rq_job.cancel()
                return 'cancelled'
            if status == JobStatus.STARTED:
                if before_stop is not None:
                    before_stop()
                send_stop_job_command(self.connection, job_id)
                return 'stopping'
        raise JobAlreadyEnded(job_id)
