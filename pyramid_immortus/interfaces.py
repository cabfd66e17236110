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

    Only :meth:`job_created` may create a job's record; every other
    callback changes an existing record and does nothing for a missing one,
    and a record whose job has ended (finished, failed) never changes again.
    A strategy written as in the Rails documentation, without
    :meth:`job_created`, gets ``job_owner(job_id, owner)`` (if it has it and
    the job has an owner) and then :meth:`job_enqueued` instead.  An
    exception raised by :meth:`job_created` or ``job_owner`` refuses the job
    (a ``503``); one raised by any other callback is logged and does not
    stop the job.
    """

    def job_created(job_id, job_class, owner, deadline=None, max_attempts=1, scheduled_at=None):
        """Create the job's record, queued, before any worker can start it,
        with its registered class name and its owner (a string, or
        ``None``), and, where the adapter gives one, the deadline of its
        first lease (a POSIX time; see :meth:`job_heartbeat`); the most runs
        its ``retry_on`` policies allow, and when it is due (ISO 8601 UTC)
        for a job enqueued with ``Job.set``."""

    def job_retrying(job_id, attempt, retry_at, last_error):
        """A run failed with an error of a ``retry_on`` policy: the job is
        queued again for its run ``attempt`` at ``retry_at`` (ISO 8601 UTC);
        ``last_error`` is ``"Type: message"``."""

    def job_result(job_id, result):
        """What ``perform`` returned (JSON data, not ``None``), right before
        :meth:`job_finished`."""

    def job_enqueued(job_id):
        """The job was handed to the queue (called before any worker can
        start it)."""

    def job_started(job_id):
        """A worker is about to run the job's ``perform``."""

    def job_finished(job_id):
        """``perform`` returned."""

    def job_failed(job_id, exc):
        """``perform`` raised ``exc``, or the job was lost or cancelled; a
        job that has ended already keeps its first end."""

    def job_progress(job_id, current, total, message):
        """The job reported progress (throttled by the job; ``current`` and
        ``total`` are finite numbers)."""

    def job_meta(job_id, meta):
        """The job's ``meta`` dict changed (JSON data; saved with progress
        and at the end)."""

    def job_heartbeat(job_id, deadline):
        """The job's worker (or, under ``async``, its web process) is alive
        and promises another heartbeat before ``deadline``, a POSIX time;
        once that passes with no heartbeat, the job has been lost."""

    def job_discarded(job_id):
        """The adapter could not enqueue the job: forget its record."""


class IStatusReport(Interface):
    """Optional reading methods of a tracking strategy."""

    def meta(job_id):
        """Return a dict of extra fields for the verify answer."""

    def report(job_id):
        """Return the whole verify answer for one job in one read.

        The dict holds at least ``completed``; the built-in strategies add
        ``status``, ``failed``, timestamps, ``progress`` and failure details.
        It never holds the owner.  Raise
        :class:`pyramid_immortus.exceptions.UnknownJob` for an id the
        strategy has never seen.
        """

    def report_many(job_ids):
        """Return ``{job_id: report or exception}`` for many jobs in one
        read."""

    def read_many(job_ids):
        """Return ``{job_id: JobRecord or exception}`` for many jobs in one
        read: the report together with the job's class and owner, which
        the views check and never send (see
        :class:`pyramid_immortus.status.JobRecord`)."""

    def owner(job_id):
        """Return the user id that enqueued the job (a string), or
        ``None``."""


class IQueueAdapter(Interface):
    """Hands jobs to whatever runs them.

    An adapter may also offer ``lease_deadline()``, the deadline (a POSIX
    time) of the first lease of a job that it runs in the enqueuing process,
    so that the job's record reads failed if that process dies before the
    job ends, and ``activate()``, called once at commit when the
    configuration chose it.
    """

    strategy_name = Attribute('The name of the tracking strategy inferred for this adapter.')

    def prepare(job):
        """Called before anything is recorded: raise ``TypeError`` for
        arguments the adapter cannot carry, and leave what was built in
        ``job.prepared`` for :meth:`enqueue` (optional)."""

    def enqueue(job):
        """Schedule ``job`` (a :class:`pyramid_immortus.Job`) to run.

        Arguments that the adapter cannot carry raise ``TypeError`` here.
        An unreachable backend raises
        :class:`pyramid_immortus.exceptions.BackendUnavailable` and leaves
        nothing half-enqueued.
        """


class ICancellableQueueAdapter(IQueueAdapter):
    """A queue adapter that can take a job back."""

    def job_class_of(job_id):
        """Return the registered class name of a job this adapter holds,
        from its own record, or ``None`` for an id it does not hold: the
        cancel view trusts this, not the caller, for the job's class."""

    def cancel(job_id):
        """Cancel a job: return ``'cancelled'`` if it had not started (and
        never will), or ``'stopping'`` when a running job was asked to stop
        (its end is recorded where it runs).  Raise
        :class:`pyramid_immortus.exceptions.UnknownJob`,
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

    def names():
        """Return the registered job names, sorted."""

    def set_inline_strategy(job_class, strategy_name):
        """Make ``strategy_name`` the strategy of ``job_class`` and of its
        subclasses that name none."""

    def inline_strategies():
        """Return ``[(job_class, strategy)]`` as set so far."""

    def inline_strategy(job_class):
        """Return the nearest inline strategy name along the MRO, or
        ``None``."""


class IImmortusSettings(Interface):
    """Marker of the application's parsed settings
    (:class:`pyramid_immortus.settings.ImmortusSettings`)."""


class IRedisConnection(Interface):
    """Marker of the application's ``redis.Redis`` client."""
