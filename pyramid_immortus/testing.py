"""Test helpers for applications: record the jobs a view enqueues, run them
when the test says so, and assert what was enqueued.

``config.include('pyramid_immortus.testing')`` (after or before
``pyramid_immortus``, or in ``pyramid.includes``) makes a recording queue
adapter, registered as ``testing``, the application's adapter: jobs are
recorded, their records created (so that verify answers ``queued``), and
none runs until :func:`perform_enqueued_jobs`.  Strategies stay as the
application configured them, with two exceptions:

- a strategy that was only *inferred* from the application's own adapter
  becomes ``memory`` (the recording adapter infers ``memory``);
- a strategy that reads what only the ``rq`` adapter writes (the ``rq``
  strategy, or any with ``needs_rq_adapter = True``), set by
  ``immortus.tracking_strategy`` or inline, becomes ``memory``: nothing
  would ever write its records in a test.

The application's own adapter still prepares each job, so arguments it
could not carry (``rq``: what does not pickle) raise ``TypeError`` in
``perform_later`` as they would in production.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pyramid.exceptions import ConfigurationError
from pyramid.threadlocal import manager
from zope.interface import implementer

from .catalog import get_catalog
from .config import add_queue_adapter, dotted_name, resolve_strategy_spec
from .enqueue import registry_of
from .exceptions import CannotCancel, JobAlreadyEnded, UnknownJob
from .interfaces import (
    ICancellableQueueAdapter,
    IImmortusSettings,
    IJobTrackingStrategy,
    IQueueAdapter,
)
from .settings import SETTINGS_PREFIX

log = logging.getLogger(__name__)

__all__ = [
    'EnqueuedJob',
    'RecordingAdapter',
    'enqueued_jobs',
    'performed_jobs',
    'perform_enqueued_jobs',
    'clear_enqueued_jobs',
    'clear_performed_jobs',
    'assert_enqueued_jobs',
    'assert_enqueued_with',
    'includeme',
]

#: The name the recording adapter is registered under.
TESTING = 'testing'
#: The strategy that replaces inferred ones and those only rq can feed.
MEMORY = 'memory'
#: After the settings are parsed (PHASE1) and the strategies, adapters and
#: jobs registered (order 0); before they are resolved (config.ORDER_RESOLVE).
ORDER_SWAP = 5


@dataclass(frozen=True)
class EnqueuedJob:
    """What one ``perform_later`` handed to the recording adapter."""

    #: the :class:`pyramid_immortus.Job` itself
    job: Any
    job_id: str
    #: the registered name (as ``Job.job_class`` and the verify JSON)
    job_class: str
    #: the Python class of the job
    job_type: type
    arguments: tuple
    kwargs: dict
    #: the class's ``queue``, else ``immortus.rq.queue``
    queue: str
    #: when a scheduled job is due (``None``: at once)
    scheduled_at: Any
    owner: str | None
    #: what ``perform`` raised, for a performed job that failed
    error: BaseException | None = None

    def __str__(self) -> str:
        args = [repr(a) for a in self.arguments]
        args += [f'{k}={v!r}' for k, v in self.kwargs.items()]
        at = '' if self.scheduled_at is None else f' at {self.scheduled_at}'
        return f'{self.job_class}({", ".join(args)}) on queue {self.queue!r}{at}'


@implementer(ICancellableQueueAdapter)
class RecordingAdapter:
    """A queue adapter that records jobs and runs none.

    ``replaces`` is the application's own ``immortus.queue_adapter``, and
    ``real`` that adapter when it is registered by name (its ``prepare``
    still runs).
    """

    strategy_name = MEMORY

    def __init__(self, replaces: Any = None, rq_queue: str = 'default') -> None:
        self.replaces = replaces
        self.rq_queue = rq_queue
        self.real: Any = None
        self._lock = threading.RLock()
        self._pending: OrderedDict[str, EnqueuedJob] = OrderedDict()
        self._performed: list[EnqueuedJob] = []
        self._running: set[str] = set()
        self._classes: dict[str, str] = {}

    @classmethod
    def from_registry(cls, registry: Any) -> RecordingAdapter:
        settings = registry.queryUtility(IImmortusSettings)
        if settings is None:
            raise ConfigurationError(
                "pyramid_immortus.testing needs config.include('pyramid_immortus')"
            )
        return cls(settings.queue_adapter, settings.rq_queue)

    # -- the adapter -----------------------------------------------------

    def prepare(self, job: Any) -> None:
        """Let the application's own adapter refuse what it cannot carry."""
        prepare = getattr(self.real, 'prepare', None)
        if prepare is not None:
            prepare(job)

    def enqueue(self, job: Any) -> None:
        """Record ``job``; it runs only in :func:`perform_enqueued_jobs`."""
        record = EnqueuedJob(
            job=job,
            job_id=job.job_id,
            job_class=job.job_class,
            job_type=type(job),
            arguments=tuple(job.arguments),
            kwargs=dict(job.kwargs),
            queue=job.queue or self.rq_queue,
            scheduled_at=getattr(job, 'scheduled_at', None),
            owner=job.owner,
        )
        with self._lock:
            self._pending[job.job_id] = record
            self._classes[job.job_id] = job.job_class

    def job_class_of(self, job_id: str) -> str | None:
        """The registered class name of a job this adapter recorded."""
        with self._lock:
            return self._classes.get(job_id)

    def cancel(self, job_id: str) -> str:
        """Take back a job that has not run (``'cancelled'``)."""
        with self._lock:
            if self._pending.pop(job_id, None) is not None:
                return 'cancelled'
            if job_id in self._running:
                raise CannotCancel('the job is running in perform_enqueued_jobs')
            if job_id in self._classes:
                raise JobAlreadyEnded(job_id)
        raise UnknownJob(job_id)

    # -- what the helpers use --------------------------------------------

    def enqueued(self) -> list[EnqueuedJob]:
        with self._lock:
            return list(self._pending.values())

    def performed(self) -> list[EnqueuedJob]:
        with self._lock:
            return list(self._performed)

    def take(self, only: Any = None) -> EnqueuedJob | None:
        """Take the oldest waiting job (of ``only``), marked running."""
        with self._lock:
            for job_id, record in self._pending.items():
                if matches(record, only):
                    del self._pending[job_id]
                    self._running.add(job_id)
                    return record
        return None

    def put_back(self, record: EnqueuedJob) -> None:
        with self._lock:
            self._running.discard(record.job_id)
            self._pending[record.job_id] = record
            self._pending.move_to_end(record.job_id, last=False)

    def done(self, record: EnqueuedJob) -> None:
        with self._lock:
            self._running.discard(record.job_id)
            self._performed.append(record)

    def retry(self, record: EnqueuedJob, retry: Any) -> None:
        """Enqueue again a job that a ``retry_on`` policy runs again."""
        job = record.job
        job.attempt = retry.attempt
        job.scheduled_at = time.time() + retry.delay
        self.enqueue(job)

    def clear_enqueued(self) -> list[EnqueuedJob]:
        with self._lock:
            cleared = list(self._pending.values())
            self._pending.clear()
            for record in cleared:
                self._classes.pop(record.job_id, None)
            return cleared

    def clear_performed(self) -> list[EnqueuedJob]:
        with self._lock:
            cleared, self._performed = self._performed, []
            return cleared


def needs_rq_adapter(registry: Any, name: str) -> bool:
    strategy = registry.queryUtility(IJobTrackingStrategy, name=name)
    return bool(getattr(strategy, 'needs_rq_adapter', False))


def use_recording_adapter(registry: Any) -> None:
    """Make the recording adapter the application's, and replace the
    strategies that it cannot feed (see the module's docstring)."""
    settings = registry.queryUtility(IImmortusSettings)
    if settings is None:
        raise ConfigurationError(
            "pyramid_immortus.testing needs config.include('pyramid_immortus')"
        )
    adapter = registry.getUtility(IQueueAdapter, name=TESTING)
    if isinstance(settings.queue_adapter, str) and settings.queue_adapter != TESTING:
        adapter.real = registry.queryUtility(IQueueAdapter, name=settings.queue_adapter)
    key = SETTINGS_PREFIX + 'tracking_strategy'
    strategy = settings.tracking_strategy
    if strategy is not None:
        strategy = resolve_strategy_spec(registry, strategy, key)
        if needs_rq_adapter(registry, strategy):
            log.info(
                '%s = %s reads what only the rq adapter writes: memory tracks '
                'jobs under pyramid_immortus.testing',
                key,
                strategy,
            )
            strategy = MEMORY
    catalog = get_catalog(registry)
    for job_class, spec in catalog.inline_strategies():
        name = resolve_strategy_spec(
            registry, spec, f'the inline strategy of {dotted_name(job_class)}'
        )
        if needs_rq_adapter(registry, name):
            log.info(
                'the inline strategy %s of %s reads what only the rq adapter '
                'writes: memory tracks it under pyramid_immortus.testing',
                name,
                dotted_name(job_class),
            )
            name = MEMORY
        catalog.set_inline_strategy(job_class, name)
    registry.registerUtility(
        dataclasses.replace(settings, queue_adapter=TESTING, tracking_strategy=strategy),
        IImmortusSettings,
    )


def includeme(config: Any) -> None:
    """Record jobs instead of running them (see the module's docstring)."""
    add_queue_adapter(config, TESTING, RecordingAdapter)
    registry = config.registry
    config.action('immortus.testing', lambda: use_recording_adapter(registry), order=ORDER_SWAP)


# -- the helpers ---------------------------------------------------------


def recording_adapter(request_or_registry: Any) -> RecordingAdapter:
    """The recording adapter of the application of a request or registry
    (or anything with a ``registry``, such as a WSGI app from
    ``make_wsgi_app()``)."""
    registry = registry_of(request_or_registry)
    settings = registry.queryUtility(IImmortusSettings)
    adapter = (
        registry.queryUtility(IQueueAdapter, name=settings.queue_adapter)
        if settings is not None
        else None
    )
    if not isinstance(adapter, RecordingAdapter):
        raise RuntimeError(
            'this application does not record jobs: add '
            "config.include('pyramid_immortus.testing') to its configuration"
        )
    return adapter


def matches(record: EnqueuedJob, only: Any) -> bool:
    """Whether ``record`` is a job of ``only``: ``None`` (any), a job
    class (or a subclass of it), a registered name, or a tuple of those."""
    if only is None:
        return True
    kinds = only if isinstance(only, (tuple, list, set, frozenset)) else (only,)
    for kind in kinds:
        if isinstance(kind, str):
            if record.job_class == kind:
                return True
        elif isinstance(kind, type) and issubclass(record.job_type, kind):
            return True
    return False


def describe_kind(only: Any) -> str:
    kinds = only if isinstance(only, (tuple, list, set, frozenset)) else (only,)
    return ', '.join(k if isinstance(k, str) else getattr(k, '__name__', repr(k)) for k in kinds)


def listing(records: Iterable[EnqueuedJob]) -> str:
    lines = [f'  {record}' for record in records]
    return '\n'.join(lines) if lines else '  (nothing)'


def enqueued_jobs(request_or_registry: Any) -> list[EnqueuedJob]:
    """The jobs recorded and not yet performed, oldest first."""
    return recording_adapter(request_or_registry).enqueued()


def performed_jobs(request_or_registry: Any) -> list[EnqueuedJob]:
    """The jobs :func:`perform_enqueued_jobs` ran, in the order they ran
    (``error`` holds what a failed one raised)."""
    return recording_adapter(request_or_registry).performed()


def clear_enqueued_jobs(request_or_registry: Any) -> list[EnqueuedJob]:
    """Forget the recorded jobs that have not run (their records in the
    strategy stay ``queued``); return them."""
    return recording_adapter(request_or_registry).clear_enqueued()


def clear_performed_jobs(request_or_registry: Any) -> list[EnqueuedJob]:
    """Forget the list of performed jobs; return it."""
    return recording_adapter(request_or_registry).clear_performed()


def perform_enqueued_jobs(
    request_or_registry: Any, only: Any = None, raise_errors: bool = True, limit: int = 1000
) -> list[EnqueuedJob]:
    """Run the recorded jobs (of ``only``, as in :func:`assert_enqueued_jobs`),
    oldest first, and the jobs they enqueue, in the calling thread through
    ``Job.run``: their strategy records them started, then finished or
    failed, as a worker would.  Returns those it ran.

    A job that raises is recorded failed; with ``raise_errors`` (the
    default) its exception propagates at once and the jobs after it stay
    enqueued, else it is kept in the performed job's ``error`` and the
    others run.  More than ``limit`` jobs in one call (a job that enqueues
    itself for ever) raise ``RuntimeError``.
    """
    registry = registry_of(request_or_registry)
    adapter = recording_adapter(registry)
    ran: list[EnqueuedJob] = []
    while True:
        record = adapter.take(only)
        if record is None:
            return ran
        if len(ran) >= limit:
            adapter.put_back(record)
            raise RuntimeError(
                f'perform_enqueued_jobs ran {limit} jobs and more are enqueued: '
                'does a job enqueue another for ever?'
            )
        manager.push({'registry': registry, 'request': None})
        try:
            record.job.run()
        except BaseException as exc:
            done = dataclasses.replace(record, error=exc)
            adapter.done(done)
            ran.append(done)
            retry = getattr(record.job, 'next_retry', None)
            if retry is not None and isinstance(exc, Exception):
                adapter.retry(record, retry)  # a retry_on policy: it runs again
                continue
            if raise_errors or not isinstance(exc, Exception):
                raise
            log.info('job %r failed in perform_enqueued_jobs', record.job, exc_info=True)
            continue
        finally:
            manager.pop()
        adapter.done(record)
        ran.append(record)


def assert_enqueued_jobs(
    request_or_registry: Any, count: int, only: Any = None
) -> list[EnqueuedJob]:
    """Assert that ``count`` jobs (of ``only``: a job class, a registered
    name, or a tuple of those) are enqueued; return them."""
    everything = enqueued_jobs(request_or_registry)
    found = [record for record in everything if matches(record, only)]
    if len(found) != count:
        what = 'job' if count == 1 else 'jobs'
        of = f' of {describe_kind(only)}' if only is not None else ''
        raise AssertionError(
            f'expected {count} enqueued {what}{of}, found {len(found)}; '
            f'enqueued:\n{listing(everything)}'
        )
    return found


_ANY = object()


def assert_enqueued_with(
    request_or_registry: Any,
    job_class: Any,
    args: Any = _ANY,
    kwargs: Any = _ANY,
    queue: Any = _ANY,
) -> EnqueuedJob:
    """Assert that a job of ``job_class`` (a class or registered name) is
    enqueued with exactly these positional ``args`` and ``kwargs`` (and on
    ``queue``), each checked only when given; return the first match."""
    everything = enqueued_jobs(request_or_registry)
    wanted_args = _ANY if args is _ANY else tuple(args)
    for record in everything:
        if not matches(record, job_class):
            continue
        if wanted_args is not _ANY and record.arguments != wanted_args:
            continue
        if kwargs is not _ANY and record.kwargs != dict(kwargs):
            continue
        if queue is not _ANY and record.queue != queue:
            continue
        return record
    wanted = [
        f'args={wanted_args!r}' if wanted_args is not _ANY else None,
        f'kwargs={kwargs!r}' if kwargs is not _ANY else None,
        f'queue={queue!r}' if queue is not _ANY else None,
    ]
    spec = ', '.join(w for w in wanted if w)
    raise AssertionError(
        f'expected a {describe_kind(job_class)} job enqueued'
        f'{" with " + spec if spec else ""}; enqueued:\n{listing(everything)}'
    )
