"""Handing a job to its queue adapter: the record first, then the queue,
at once or after a ``pyramid_tm`` commit (as rq keeps ``Queue.enqueue_job``
apart from its ``Job``)."""

import logging

from . import logs
from .callbacks import notify
from .catalog import get_queue_adapter
from .connection import UNAVAILABLE
from .exceptions import BackendUnavailable, EnqueueFailed
from .renderers import job_payload, set_json
from .settings import get_settings
from .status import dumps, isoformat

log = logging.getLogger(__name__)


def registry_of(request_or_registry):
    """Accept a request or a registry; return the registry."""
    return getattr(request_or_registry, 'registry', request_or_registry)


def transaction_manager(request):
    """The transaction manager of a request that ``pyramid_tm`` manages, if
    ``immortus.enqueue_after_commit`` is on; else ``None``."""
    environ = getattr(request, 'environ', None)
    if not environ or not environ.get('tm.active'):
        return None
    if not get_settings(request).enqueue_after_commit:
        return None
    return environ.get('tm.manager')


def enqueue(job, request):
    """Enqueue ``job`` through the application's queue adapter: at once,
    or, when ``pyramid_tm`` manages ``request``, after its commit."""
    adapter = get_queue_adapter(job.registry)
    prepare(job, adapter)
    manager = transaction_manager(request)
    if manager is None:
        hand_over(job, adapter)
    else:
        hand_over_after_commit(job, adapter, request, manager)


def prepare(job, adapter):
    """Let the adapter refuse what it cannot carry, before anything is
    recorded."""
    method = getattr(adapter, 'prepare', None)
    if method is not None:
        method(job)


def create_record(job, strategy, deadline=None):
    """Create the job's record, with its class and owner, before the job
    can start.  A record that cannot be written, or an owner that cannot be
    kept, refuses the job (:class:`BackendUnavailable`): a job is never run
    unfollowable, nor public by accident."""
    try:
        created = getattr(strategy, 'job_created', None)
        if created is not None:
            scheduled = job.scheduled_at
            created(
                job.job_id,
                job.job_class,
                job.owner,
                deadline,
                max_attempts=job.max_attempts,
                scheduled_at=None if scheduled is None else isoformat(scheduled),
            )
            return
        if job.owner is not None:
            record_owner = getattr(strategy, 'job_owner', None)
            if record_owner is not None:
                record_owner(job.job_id, job.owner)
        notify(strategy, 'job_enqueued', job.job_id)
        if job.owner is not None and not owner_kept(strategy, job):
            notify(strategy, 'job_discarded', job.job_id)
            raise ValueError(f'{strategy!r} did not keep the owner of {job!r}')
    except BackendUnavailable:
        raise
    except Exception as exc:
        log.exception('the record of %r could not be created', job)
        raise BackendUnavailable(f'the record of {job!r} could not be created') from exc


def owner_kept(strategy, job):
    """Whether a strategy without ``job_created`` reads back the owner it
    was given (one that cannot read owners keeps none: with
    ``verify_owner_only``, the configuration refuses it)."""
    find_owner = getattr(strategy, 'owner', None)
    if find_owner is None:
        return not get_settings(job.registry).verify_owner_only
    owner = find_owner(job.job_id)
    return owner is not None and str(owner) == job.owner


def hand_over(job, adapter):
    """Record the job, then hand it to the adapter; forget the record if
    the adapter refuses it."""
    strategy = job.tracking_strategy
    lease = getattr(adapter, 'lease_deadline', None)
    # Recorded before the adapter can hand the job to a worker, so that a
    # fast worker's "started" or "finished" finds the record.
    create_record(job, strategy, lease() if lease is not None else None)
    try:
        adapter.enqueue(job)
    except BaseException as exc:
        notify(strategy, 'job_discarded', job.job_id)
        if isinstance(exc, UNAVAILABLE):
            raise BackendUnavailable(f'{job!r} could not be enqueued: {exc}') from exc
        if isinstance(exc, (BackendUnavailable, TypeError)) or not isinstance(exc, Exception):
            raise
        log.exception('%r could not be enqueued', job)
        raise EnqueueFailed(f'{job!r} could not be enqueued') from exc
    due = '' if job.scheduled_at is None else f' at {isoformat(job.scheduled_at)}'
    logs.log.info(
        'Enqueued %s to %s%s%s', logs.described(job), logs.where(job), due, logs.arguments(job)
    )


def hand_over_after_commit(job, adapter, request, manager):
    """Hand the job over once the request's transaction commits (never, if
    it aborts); a failure then turns the response into a fixed 503 or 500
    and is logged."""
    failures = []

    def after_commit(committed):
        if not committed:
            return
        try:
            hand_over(job, adapter)
        except Exception as exc:
            log.exception('%r could not be enqueued after the commit', job)
            failures.append(exc)

    def unavailable(request, response):
        if failures:
            status, data = job_payload(failures[0])
            set_json(response, status)
            response.body = dumps(data)

    manager.get().addAfterCommitHook(after_commit)
    request.add_response_callback(unavailable)
