"""Exceptions that any tracking strategy or queue adapter may raise."""


class ImmortusError(Exception):
    """Base class of this add-on's exceptions."""


class UnknownJob(ImmortusError, LookupError):
    """The strategy has never seen this job id, or its record expired.

    The default verify view answers it with ``404``.
    """

    def __init__(self, job_id):
        super().__init__(f'unknown job {job_id!r}')
        self.job_id = job_id


class BackendUnavailable(ImmortusError):
    """The store or queue behind a strategy or adapter cannot be reached.

    Views answer it with ``503`` so that clients retry later.
    """


class EnqueueFailed(ImmortusError):
    """The queue adapter failed for a reason that is not an outage: the
    create view answers a ``500`` with a fixed message (the cause is
    logged)."""


class CapacityExceeded(BackendUnavailable):
    """A strategy holds as many unfinished jobs as it may (the ``memory``
    strategy's ``immortus.memory_max_jobs``): the new job is refused with a
    ``503`` rather than pushing out another user's job."""


class JobAlreadyEnded(ImmortusError):
    """A job that has already ended cannot be cancelled (``409``)."""


class JobNotRegistered(ImmortusError, LookupError):
    """A job class was used that the configuration does not know."""


class Cancelled(ImmortusError):
    """A job was cancelled on request; strategies record it as the job's
    failure (``exception.type`` is ``"Cancelled"``)."""


class Shutdown(ImmortusError):
    """The process that held the job stopped before the job could end (the
    ``async`` adapter's jobs when the web process stops)."""


class CannotCancel(ImmortusError):
    """The adapter cannot take this job back (for instance, it is running
    on a thread that cannot be stopped): ``409``."""


def failure(kind: str, message: str = '') -> ImmortusError:
    """An exception whose class is named ``kind``: it stands for a failure
    known only by its type's name and message (reported by rq as text, or
    written again after a first write failed)."""
    return type(kind, (ImmortusError,), {})(message)
