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


class JobAlreadyEnded(ImmortusError):
    """A job that has already ended cannot be cancelled (``409``)."""


class JobNotRegistered(ImmortusError, LookupError):
    """A job class was used that the configuration does not know."""


class Cancelled(ImmortusError):
    """A job was cancelled on request; strategies record it as the job's
    failure (``exception.type`` is ``"Cancelled"``)."""


class CannotCancel(ImmortusError):
    """The adapter cannot take this job back (for instance, it is running
    on a thread that cannot be stopped): ``409``."""
