"""The contracts between the add-on, tracking strategies and queue adapters."""
from zope.interface import Attribute, Interface


class IJobTrackingStrategy(Interface):
    """Tracks the state of jobs so that the verify view can report it.

    Only :meth:`completed` is required.  A strategy may also offer any of the
    methods of :class:`ITrackingCallbacks` (called as a job moves on) and of
    :class:`IStatusReport` (a richer verify answer); each is used only when
    the strategy has it, so a duck-typed strategy written as in the Rails
    documentation, without ``@implementer``, works as it is.
    """

    def completed(job_id):
        """Return ``True`` if the job has finished, ``False`` otherwise."""


class ITrackingCallbacks(Interface):
    """Optional callbacks of a tracking strategy, one per job event.

    An exception raised by a callback is logged and does not stop the job.
    Strategies may also offer ``job_owner(job_id, owner)`` (who enqueued
    it), ``job_discarded(job_id)`` (the adapter could not enqueue it) and
    ``job_heartbeat(job_id, deadline)`` (``immortus-worker`` promises its
    next heartbeat before ``deadline``, a POSIX time).
    """

    def job_enqueued(job_id):
        """The job was handed to the queue (called before any worker can
        start it)."""

    def job_started(job_id):
        """A worker is about to run the job's ``perform``."""

    def job_finished(job_id):
        """``perform`` returned."""

    def job_failed(job_id, exc):
        """``perform`` raised ``exc`` (or the job was lost or cancelled)."""

    def job_progress(job_id, current, total, message):
        """The job reported progress (throttled by the job)."""

    def job_meta(job_id, meta):
        """The job's ``meta`` dict changed (saved with progress and at the
        end)."""


class IStatusReport(Interface):
    """Optional reading methods of a tracking strategy."""

    def meta(job_id):
        """Return a dict of extra fields for the verify answer."""

    def report(job_id):
        """Return the whole verify answer for one job in one read.

        The dict holds at least ``completed``; the built-in strategies add
        ``status``, ``failed``, timestamps, ``progress`` and failure details.
        Raise :class:`pyramid_immortus.exceptions.UnknownJob` for an id the
        strategy has never seen.
        """

    def report_many(job_ids):
        """Return ``{job_id: report or exception}`` for many jobs in one
        read."""

    def owner(job_id):
        """Return the user id that enqueued the job, or ``None``."""


class IQueueAdapter(Interface):
    """Hands jobs to whatever runs them.

    An adapter may also offer ``prepare(job)``, called before anything is
    recorded: it raises ``TypeError`` for arguments the adapter cannot carry
    and may leave what it built in ``job.prepared`` for ``enqueue``.
    """

    strategy_name = Attribute(
        'The name of the tracking strategy inferred for this adapter.'
    )

    def enqueue(job):
        """Schedule ``job`` (a :class:`pyramid_immortus.Job`) to run.

        Arguments that the adapter cannot carry raise ``TypeError`` here.
        An unreachable backend raises
        :class:`pyramid_immortus.exceptions.BackendUnavailable` and leaves
        nothing half-enqueued.
        """


class ICancellableQueueAdapter(IQueueAdapter):
    """A queue adapter that can take a job back."""

    def cancel(job_id, before_stop=None):
        """Cancel a job: return ``'cancelled'`` if it had not started, or
        call ``before_stop()`` (it records the cancellation, since the job
        may be killed) and return ``'stopping'`` when a running job was asked
        to stop.  Raise :class:`pyramid_immortus.exceptions.UnknownJob`,
        :class:`pyramid_immortus.exceptions.JobAlreadyEnded` or
        :class:`pyramid_immortus.exceptions.CannotCancel`."""


class IJobCatalog(Interface):
    """The job classes of an application, by name (one per registry)."""

    def add(name, job_class):
        """Register ``job_class`` under ``name``."""

    def get(name):
        """Return the job class registered as ``name``, or ``None``."""

    def name_of(job_class):
        """Return the name ``job_class`` was registered under."""
