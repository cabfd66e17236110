"""The base class of jobs: the ActiveJob of this port."""
from __future__ import annotations

import logging
import time
import uuid
from time import monotonic

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import venusian

from .callbacks import notify
from .catalog import find_tracking_strategy, get_catalog
from .enqueue import create_record, enqueue, registry_of
from .exceptions import failure
from .scanning import on_scan
from .settings import get_settings
from .status import finite_number, json_value

if TYPE_CHECKING:
    from typing_extensions import Self

    from pyramid.registry import Registry
    from pyramid.request import Request

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
    """

    abstract: bool = True
    name: str | None = None
    queue: str | None = None
    venusian = venusian  # for testing injection

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get('abstract', False):
            return
        on_scan(cls, lambda config, codeinfo: config.add_immortus_job(cls, _info=codeinfo),
                venusian=cls.venusian)

    def __init__(self, registry: Registry, job_id: str | None = None,
                 arguments: Iterable[Any] = (), kwargs: Mapping[str, Any] | None = None,
                 owner: Any = None) -> None:
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
        job = cls(registry_of(request), arguments=args, kwargs=kwargs,
                  owner=getattr(request, 'authenticated_userid', None))
        enqueue(job, request)
        return job

    @classmethod
    def perform_now(cls, request: Request | Registry, *args: Any, **kwargs: Any) -> Any:
        """Run a new job in the calling thread, with the same callbacks as
        a queued one; returns what ``perform`` returns and raises what it
        raises."""
        job = cls(registry_of(request), arguments=args, kwargs=kwargs,
                  owner=getattr(request, 'authenticated_userid', None))
        create_record(job, job.tracking_strategy)
        return job.run()

    def run(self) -> Any:
        """Run :meth:`perform` between ``job_started`` and ``job_finished``
        or ``job_failed``; workers call this."""
        strategy = self.tracking_strategy
        notify(strategy, 'job_started', self.job_id)
        try:
            result = self.perform(*self.arguments, **self.kwargs)
            self._save_progress(strategy)
        except BaseException as exc:
            try:
                self._save_progress(strategy)
            except Exception:
                log.warning('the last progress or meta of %r could not be saved', self,
                            exc_info=True)
            self._record_end(strategy, 'job_failed', exc)
            raise
        self._record_end(strategy, 'job_finished')
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
                log.warning('tracking strategy %r failed in %s for %r', strategy, event,
                            self, exc_info=True)
            if delay is None:
                break
            time.sleep(delay)
            args = () if exc is None else (failure(type(exc).__name__),)
        log.error('the end of %r (%s) could not be recorded', self, event)

    def progress(self, current: float, total: float | None = None,
                 message: Any = None) -> None:
        """Report progress from inside :meth:`perform`.

        ``current`` and ``total`` must be finite numbers (``TypeError`` or
        ``ValueError`` here otherwise), and :attr:`meta` JSON data
        (``TypeError`` when it is written).  Writes reach the strategy at
        most once per ``immortus.progress_interval`` seconds, together with
        :attr:`meta`; the last one is always written before the job ends.
        """
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
