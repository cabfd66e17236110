"""``@retry_on``: run a job again when it fails with one of some errors."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypeVar, cast

T = TypeVar('T', bound=type)

Wait = float | Sequence[float] | Callable[[int], float]


class Retry(NamedTuple):
    """A decision to run a failed job again: its next ``attempt`` (from 2)
    starts ``delay`` seconds from now."""

    attempt: int
    delay: float


def _seconds(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f'{what} must be a number of seconds, not {value!r}')
    if not math.isfinite(value) or not 0 <= value <= 10 * 365 * 86400:
        raise ValueError(f'{what} must be from 0 to ten years of seconds, not {value!r}')
    return float(value)


class retry_on:
    """Run a job again when ``perform`` raises one of ``exception_types``,
    up to ``attempts`` runs in all (ActiveJob's ``retry_on``)::

        @retry_on(ConnectionError, TimeoutError, attempts=5, wait=(1, 5, 30))
        class SyncInvoices(Job):
            ...

    ``wait`` is the seconds before the next run: a number, a sequence (one
    entry per retry, the last one repeated), or a callable taking the number
    of the attempt that failed (from 1).  Decorators stack: the top-most one
    whose types match the exception decides; a subclass inherits its bases'
    policies after its own.  Any other exception fails the job at once.

    A policy is part of the class, like its ``queue``: it takes effect when
    the class is defined (in the web process and in the workers alike), with
    no scan.
    """

    def __init__(
        self, *exception_types: type[BaseException], attempts: int = 3, wait: Wait = 0
    ) -> None:
        if not exception_types or not all(
            isinstance(t, type) and issubclass(t, BaseException) for t in exception_types
        ):
            raise TypeError('retry_on needs one or more exception classes')
        if isinstance(attempts, bool) or not isinstance(attempts, int) or not 1 <= attempts <= 1000:
            raise ValueError(f'attempts must be a whole number from 1 to 1000, not {attempts!r}')
        if callable(wait):
            pass
        elif isinstance(wait, Sequence) and not isinstance(wait, str):
            if not wait:
                raise ValueError('wait must not be an empty sequence')
            for item in wait:
                _seconds(item, 'each wait')
        else:
            _seconds(wait, 'wait')
        self.exception_types = exception_types
        self.attempts = attempts
        self.wait = wait

    def __call__(self, job_class: T) -> T:
        policies = (self, *getattr(job_class, 'retry_policies', ()))
        cast(Any, job_class).retry_policies = policies
        return job_class

    def __repr__(self) -> str:
        names = ', '.join(t.__name__ for t in self.exception_types)
        return f'retry_on({names}, attempts={self.attempts}, wait={self.wait!r})'

    def matches(self, exc: BaseException) -> bool:
        """Whether this policy is the one for ``exc``."""
        return isinstance(exc, self.exception_types)

    def delay(self, failed_attempt: int) -> float:
        """Seconds before the run after ``failed_attempt`` (from 1)."""
        wait = self.wait
        if callable(wait):
            return _seconds(wait(failed_attempt), 'the wait its callable returned')
        if isinstance(wait, Sequence):
            return float(wait[min(failed_attempt, len(wait)) - 1])
        return float(wait)


def max_attempts(job_class: type) -> int:
    """The most runs any of ``job_class``'s policies allows (1 without)."""
    return max((policy.attempts for policy in getattr(job_class, 'retry_policies', ())), default=1)


def retry_for(job_class: type, exc: BaseException, attempt: int) -> Retry | None:
    """The retry that ``job_class``'s policies decide when its run
    ``attempt`` raised ``exc``, or ``None`` (the job fails)."""
    for policy in getattr(job_class, 'retry_policies', ()):
        if policy.matches(exc):
            if attempt >= policy.attempts:
                return None
            return Retry(attempt + 1, policy.delay(attempt))
    return None
