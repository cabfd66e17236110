"""The base class of jobs: the ActiveJob of this port."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from time import monotonic
from typing import TYPE_CHECKING, Any

import venusian

from . import logs
from .callbacks import notify
from .catalog import find_tracking_strategy, get_catalog
from .enqueue import create_record, enqueue, registry_of
from .exceptions import Cancelled, failure
from .retry import Retry, max_attempts, retry_for
from .scanning import on_scan
from .settings import get_settings
from .status import dumps, error_string, exception_info, finite_number, isoformat, json_value

if TYPE_CHECKING:
    from pyramid.registry import Registry
    from pyramid.request import Request
    from typing_extensions import Self

log = logging.getLogger(__name__)


class Job:
    """Subclass this and implement :meth:`perform`.

    Every subclass defined at module level is registered by
    ``config.scan()``, under its class name unless it sets ``name``.  A class
    that sets ``abstract = True`` in its own body is a base for other jobs
    and is not registered (its subclasses are, unless they say the same).

    Class attributes a job may set:

    ``name``
        the job's registered name (``job_class`` in the verify URL).
    ``queue``
        the rq queue it goes to (default: ``immortus.rq.queue``).
    ``retry_policies``
        set by :class:`pyramid_immortus.retry_on`.
    """

    abstract: bool = True
    name: str | None = None
    queue: str | None = None
    retry_policies: tuple[Any, ...] = ()
    venusian = venusian  # for testing injection

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get('abstract', False):
            return
        on_scan(
            cls,
            lambda config, codeinfo: config.add_immortus_job(cls, _info=codeinfo),
            venusian=cls.venusian,
        )

    def __init__(
        self,
        registry: Registry,
        job_id: str | None = None,
        arguments: Iterable[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        owner: Any = None,
    ) -> None:
        """A job of ``registry``'s application; ``perform_later`` and the
        workers build them, with a fresh uuid4 ``job_id`` unless given."""
        self.registry = registry
        self.job_id = job_id or str(uuid.uuid4())
        self.job_class = get_catalog(registry).name_of(type(self))
        self.arguments = tuple(arguments)
        self.kwargs = dict(kwargs or {})
        #: the user id that enqueued the job, as a string (or ``None``)
        self.owner = None if owner is None else str(owner)
        #: JSON data saved with progress and at the end (``verify``'s ``meta``)
        self.meta: dict[str, Any] = {}
        #: what the queue adapter's ``prepare`` left for its ``enqueue``
        self.prepared: Any = None
        #: the number of this run (from 1), and how many runs it may have
        self.attempt = 1
        self.max_attempts = max_attempts(type(self))
        #: when it is due (a POSIX time), for a job enqueued with ``set``
        self.scheduled_at: float | None = None
        #: set by a run that failed with an error of a ``retry_on``
        self.next_retry: Retry | None = None
        #: whether a failed run logged its failure
        self.failure_logged = False
        self._cancel = threading.Event()
        self._progress: tuple[float, float | None, Any] = (0, None, None)
        self._progress_dirty = False
        self._last_write = float('-inf')
        self._interval = get_settings(registry).progress_interval

    def __repr__(self) -> str:
        return f'<{self.job_class} job {self.job_id}>'

    def perform(self, *args: Any, **kwargs: Any) -> Any:
        """The work itself; runs in a worker with the enqueued arguments."""
        raise NotImplementedError(f'{type(self).__name__}.perform')

    @property
    def cancelled(self) -> bool:
        """``True`` once a cancel asked this running job to stop: the next
        :meth:`progress` raises :class:`~pyramid_immortus.Cancelled`, and
        the job reads failed (``Cancelled``) however it ends."""
        return self._cancel.is_set()

    def request_cancel(self) -> None:
        """Ask the job to stop (what a cancel of a running job does)."""
        self._cancel.set()

    def wait_for_cancel(self, seconds: float) -> bool:
        """Wait ``seconds``, or less if a cancel comes; whether it came."""
        return self._cancel.wait(seconds)

    @classmethod
    def set(
        cls,
        wait: float | dt.timedelta | None = None,
        wait_until: dt.datetime | None = None,
        queue: str | None = None,
    ) -> ConfiguredJob:
        """Options for the next :meth:`perform_later` (ActiveJob's ``set``):
        run it ``wait`` seconds (or a ``timedelta``) from now, or at the
        aware datetime ``wait_until``, and/or on ``queue``."""
        return ConfiguredJob(cls, wait=wait, wait_until=wait_until, queue=queue)

    @property
    def tracking_strategy(self) -> Any:
        """The strategy that tracks this job (see the lookup order)."""
        return find_tracking_strategy(self.registry, type(self))

    @classmethod
    def perform_later(cls, request: Request | Registry, *args: Any, **kwargs: Any) -> Self:
        """Enqueue a new job through the configured queue adapter.

        ``request`` is the current request or, outside a request (a job
        that enqueues another), a registry.  Returns the job, whose
        ``job_id`` the client then verifies.
        """
        return cls._create(request, args, kwargs)

    @classmethod
    def _create(cls, request, args, kwargs, scheduled_at=None, queue=None):
        job = cls(
            registry_of(request),
            arguments=args,
            kwargs=kwargs,
            owner=getattr(request, 'authenticated_userid', None),
        )
        job.scheduled_at = scheduled_at
        if queue is not None:
            job.queue = queue
        enqueue(job, request)
        return job

    @classmethod
    def perform_now(cls, request: Request | Registry, *args: Any, **kwargs: Any) -> Any:
        """Run a new job in the calling thread, with the same callbacks as
        a queued one; returns what ``perform`` returns and raises what it
        raises."""
        job = cls(
            registry_of(request),
            arguments=args,
            kwargs=kwargs,
            owner=getattr(request, 'authenticated_userid', None),
        )
        create_record(job, job.tracking_strategy)
        return job.run()

    def run(self) -> Any:
        """Run :meth:`perform` between ``job_started`` and ``job_finished``
        or ``job_failed``; workers call this.

        A failure that a ``retry_on`` policy covers leaves the job queued
        (``job_retrying``) and :attr:`next_retry` set for the adapter, and
        is raised as any failure is.  A result that is not what a page can
        read fails the job at once (no retry runs ``perform`` again for it).
        """
        strategy = self.tracking_strategy
        place = logs.where(self)
        logs.log.info('Performing %s from %s%s', logs.described(self), place, logs.arguments(self))
        started = monotonic()
        self.next_retry = None
        self.failure_logged = False
        notify(strategy, 'job_started', self.job_id)
        try:
            result = self.perform(*self.arguments, **self.kwargs)
            self._save_progress(strategy)
        except BaseException as exc:
            self._failed(strategy, exc, place, started, retry=True)
            raise
        try:
            result = self._checked_result(result)
            if self.cancelled:  # asked to stop: it cannot end finished
                raise Cancelled('cancelled on request')
        except Exception as exc:
            self._failed(strategy, exc, place, started, retry=False)
            raise
        if result is not None:
            notify(strategy, 'job_result', self.job_id, result)
        self._record_end(strategy, 'job_finished')
        logs.log.info(
            'Performed %s from %s in %s',
            logs.described(self),
            place,
            logs.milliseconds(monotonic() - started),
        )
        return result

    def _failed(self, strategy, exc, place, started, retry):
        """Record and log a failed run: a retry its policies decide (with
        ``retry``), else its end."""
        try:
            self._save_progress(strategy)
        except Exception:
            log.warning('the last progress or meta of %r could not be saved', self, exc_info=True)
        took = logs.milliseconds(monotonic() - started)
        if self.cancelled and not isinstance(exc, Cancelled):
            exc = Cancelled('cancelled on request')  # it cannot end otherwise
        info = exception_info(exc)
        self.failure_logged = True
        next_run = self._retry(exc) if retry and not self.cancelled else None
        if next_run is not None:
            self.next_retry = next_run
            logs.log.info(
                'Retrying %s in %s s (attempt %d of %d), due to %s',
                logs.described(self),
                f'{next_run.delay:g}',
                next_run.attempt,
                self.max_attempts,
                error_string(info),
            )
            retry_at = isoformat(time.time() + next_run.delay)
            notify(
                strategy,
                'job_retrying',
                self.job_id,
                next_run.attempt,
                retry_at,
                error_string(info),
            )
            return
        if self.cancelled:  # a stop asked for, not an error: no traceback
            logs.log.warning(
                'Stopped %s from %s in %s: %s',
                logs.described(self),
                place,
                took,
                error_string(info),
            )
        else:
            logs.log.error(
                'Error performing %s from %s in %s: %s',
                logs.described(self),
                place,
                took,
                error_string(info),
                exc_info=exc,
            )
        self._record_end(strategy, 'job_failed', exc)

    def _retry(self, exc):
        """The retry of this run's failure, or ``None``; a policy whose wait
        cannot be computed (its callable raised, or gave no number of
        seconds) fails the job rather than leave it running."""
        try:
            return retry_for(type(self), exc, self.attempt)
        except Exception:
            log.exception('the retry_on wait of %r could not be computed: no retry', self)
            return None

    def _checked_result(self, result):
        """``result`` as JSON data of at most ``immortus.result_max_bytes``
        once serialised, or a ``TypeError``/``ValueError`` that says why."""
        if result is None:
            return None
        result = json_value(result, f'the result of {self!r}')
        limit = get_settings(self.registry).result_max_bytes
        size = len(dumps(result))
        if size > limit:
            raise ValueError(
                f'the result of {self!r} is {size} bytes once serialised, '
                f'more than immortus.result_max_bytes ({limit})'
            )
        return result

    #: Seconds between the tries of a job's last write (its end).
    END_RETRIES = (0.1, 0.5, 2.0)

    def _record_end(self, strategy, event, exc=None):
        """Write the job's end, trying again when the store fails; the
        retries carry no more than the exception's type, so that what
        could not be written the first time has no part in it."""
        method = getattr(strategy, event, None)
        if method is None:
            return
        args = () if exc is None else (exc,)
        for delay in (*self.END_RETRIES, None):
            try:
                method(self.job_id, *args)
                return
            except Exception:
                log.warning(
                    'tracking strategy %r failed in %s for %r', strategy, event, self, exc_info=True
                )
            if delay is None:
                break
            time.sleep(delay)
            args = () if exc is None else (failure(type(exc).__name__),)
        log.error('the end of %r (%s) could not be recorded', self, event)

    def progress(self, current: float, total: float | None = None, message: Any = None) -> None:
        """Report progress from inside :meth:`perform`; raises
        :class:`~pyramid_immortus.Cancelled` once the job was asked to stop.

        ``current`` and ``total`` must be finite numbers (``TypeError`` or
        ``ValueError`` here otherwise), and :attr:`meta` JSON data
        (``TypeError`` when it is written).  Writes reach the strategy at
        most once per ``immortus.progress_interval`` seconds, together with
        :attr:`meta`; the last one is always written before the job ends.
        """
        if self.cancelled:
            raise Cancelled('cancelled on request')
        current = finite_number(current, 'progress current')
        if total is not None:
            total = finite_number(total, 'progress total')
        self._progress = (current, total, message)
        self._progress_dirty = True
        if monotonic() - self._last_write >= self._interval:
            self._save_progress(self.tracking_strategy)

    def _save_progress(self, strategy):
        self._last_write = monotonic()
        meta = json_value(self.meta, f'the meta of {self!r}') if self.meta else None
        if self._progress_dirty:
            self._progress_dirty = False
            notify(strategy, 'job_progress', self.job_id, *self._progress)
        if meta:
            notify(strategy, 'job_meta', self.job_id, meta)


class ConfiguredJob:
    """What :meth:`Job.set` returns: a job class with enqueue options."""

    def __init__(
        self,
        job_class: type[Job],
        wait: float | dt.timedelta | None = None,
        wait_until: dt.datetime | None = None,
        queue: str | None = None,
    ) -> None:
        if wait is not None and wait_until is not None:
            raise TypeError('give wait or wait_until, not both')
        due = None
        if wait is not None:
            seconds = wait.total_seconds() if isinstance(wait, dt.timedelta) else wait
            if (
                isinstance(seconds, bool)
                or not isinstance(seconds, (int, float))
                or not 0 <= seconds <= 10 * 365 * 86400
            ):
                raise ValueError(f'wait must be from 0 seconds to ten years, not {wait!r}')
            due = time.time() + seconds
        elif wait_until is not None:
            if not isinstance(wait_until, dt.datetime) or wait_until.tzinfo is None:
                raise ValueError('wait_until must be an aware datetime (with a tzinfo)')
            due = wait_until.timestamp()
        if queue is not None and not isinstance(queue, str):
            raise TypeError('queue must be a queue name')
        self.job_class = job_class
        self.scheduled_at = due
        self.queue = queue

    def perform_later(self, request: Request | Registry, *args: Any, **kwargs: Any) -> Job:
        """Enqueue a new job with these options (see
        :meth:`Job.perform_later`)."""
        return self.job_class._create(
            request, args, kwargs, scheduled_at=self.scheduled_at, queue=self.queue
        )
