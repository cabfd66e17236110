"""The one status vocabulary every built-in strategy reports in, and the
values a report may hold (JSON only, never NaN)."""

import json
import math
from datetime import datetime, timezone
from decimal import Decimal
from fractions import Fraction
from typing import Any, NamedTuple

QUEUED = 'queued'
STARTED = 'started'
FINISHED = 'finished'
FAILED = 'failed'
UNKNOWN = 'unknown'

#: Every state a verify answer's ``status`` may hold.
STATES = (QUEUED, STARTED, FINISHED, FAILED, UNKNOWN)
#: The states after which a job changes no more.
ENDED = frozenset((FINISHED, FAILED))

MAX_MESSAGE = 500


class JobRecord(NamedTuple):
    """What a strategy knows of one job: the verify answer it reports
    (``report``, without ``job_id``) and, kept apart so that they never
    reach a page, the job's registered class name and owner (``None``
    where the strategy does not keep them)."""

    report: dict[str, Any]
    job_class: str | None = None
    owner: str | None = None


def isoformat(timestamp):
    """Format a POSIX timestamp as ISO 8601 UTC with a ``Z``."""
    moment = datetime.fromtimestamp(timestamp, timezone.utc)
    return moment.isoformat(timespec='milliseconds').replace('+00:00', 'Z')


def _safe_str(value):
    try:
        return str(value)
    except Exception:
        return f'<{type(value).__name__} whose str() failed>'


def timestamp(text):
    """The POSIX time of an :func:`isoformat` string."""
    return datetime.fromisoformat(text.replace('Z', '+00:00')).timestamp()


def exception_info(exc):
    """Return ``{"type", "message"}`` for ``exc``: no traceback, ever, and
    never an error, even for an exception whose ``__str__`` raises."""
    return {'type': type(exc).__name__, 'message': _safe_str(exc)[:MAX_MESSAGE]}


def error_string(info):
    """The short ``"Type: message"`` string of an :func:`exception_info`."""
    if not info['message']:
        return info['type']
    return f'{info["type"]}: {info["message"]}'


def finite_number(value, name):
    """``value`` as an ``int`` or a finite ``float``; ``TypeError`` or
    ``ValueError`` naming ``name`` for anything else (``bool``, NaN,
    infinities, strings)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal, Fraction)):
        raise TypeError(f'{name} must be a number, not {type(value).__name__}')
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if isinstance(value, int):
        if not math.isfinite(number):
            raise ValueError(f'{name} is too large for a page to read')
        return value
    if not math.isfinite(number):
        raise ValueError(f'{name} must be a finite number, not {value!r}')
    return number


def progress_info(current, total=None, message=None):
    """The ``progress`` object of a verify answer; raises for a ``current``
    or ``total`` that is not a finite number."""
    current = finite_number(current, 'progress current')
    if total is not None:
        total = finite_number(total, 'progress total')
    percent = None
    if total:
        percent = round(100.0 * current / total, 1)
    return {
        'current': current,
        'total': total,
        'percent': percent,
        'message': None if message is None else _safe_str(message)[:MAX_MESSAGE],
    }


#: How deeply JSON data may nest (every Python parses it back).
MAX_DEPTH = 100


def problem(value, limit=MAX_DEPTH):
    """What keeps ``value`` from being plain JSON data that reads back the
    same in a page (``None`` if nothing): nesting deeper than ``limit``, a
    dict key that is not a string (``{1: 'a', '1': 'b'}`` would lose one),
    an int too large for a page's numbers."""
    level = [value]
    for _ in range(limit + 1):
        deeper: list[Any] = []
        for node in level:
            if isinstance(node, dict):
                if not all(isinstance(key, str) for key in node):
                    return 'its dict keys must be strings'
                deeper.extend(node.values())
            elif isinstance(node, (list, tuple)):
                deeper.extend(node)
            elif isinstance(node, int) and not isinstance(node, bool) and abs(node) > 2**1023:
                return 'an int is too large for a page to read'
        if not deeper:
            return None
        level = deeper
    return f'it nests more than {limit} deep'


def json_value(value, name):
    """``value`` as plain JSON data (what every strategy stores and every
    page receives), or ``TypeError`` naming ``name``."""
    trouble = problem(value)
    if trouble is not None:
        raise TypeError(f'{name} must be plain JSON data: {trouble}')
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError, RecursionError) as exc:
        raise TypeError(f'{name} must be plain JSON data: {exc}') from None


def dumps(data):
    """Compact JSON as bytes; ``ValueError`` for NaN or infinities."""
    return json.dumps(data, separators=(',', ':'), allow_nan=False).encode()


def build_report(
    status,
    enqueued_at=None,
    started_at=None,
    ended_at=None,
    progress=None,
    meta=None,
    exception=None,
    attempt=1,
    max_attempts=1,
    scheduled_at=None,
    retry_at=None,
    last_error=None,
    result=None,
):
    """Assemble a verify answer (without ``job_id``) from stored fields.

    ``attempt`` and ``max_attempts`` are always there; ``scheduled_at``
    where the job was scheduled; ``retry_at`` while a retry waits;
    ``last_error`` once a run failed and was retried; ``result`` (``null``
    when ``perform`` returned ``None``) once the job finished.
    """
    report = {
        'status': status,
        'completed': status == FINISHED,
        'failed': status == FAILED,
        'enqueued_at': enqueued_at,
        'started_at': started_at,
        'ended_at': ended_at,
        'attempt': attempt,
        'max_attempts': max_attempts,
    }
    if scheduled_at is not None:
        report['scheduled_at'] = scheduled_at
    if retry_at is not None and status == QUEUED:
        report['retry_at'] = retry_at
    if last_error is not None:
        report['last_error'] = last_error
    if progress is not None:
        report['progress'] = progress
    if meta is not None:
        report['meta'] = meta
    if exception is not None:
        report['exception'] = exception
        report['error'] = error_string(exception)
    if status == FINISHED:
        report['result'] = result
    return report


def lease_expired(status, deadline, now):
    """A job that has not ended and whose lease (``deadline``, a POSIX time
    or ``None``) ran out has lost its worker, or its web process."""
    return status not in ENDED and deadline is not None and now > deadline


def worker_lost():
    """The failure of a job whose worker (or web process) stopped
    answering: a new dict each time."""
    return {'type': 'WorkerLost', 'message': 'the worker running this job stopped responding'}
