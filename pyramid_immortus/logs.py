"""The log lines of a job's life, in ActiveJob's words, on the logger
``pyramid_immortus``."""

import logging

from .catalog import get_queue_adapter
from .settings import get_settings

log = logging.getLogger('pyramid_immortus')

#: How much of each argument's ``repr`` a log line shows.
MAX_ARGUMENT = 100


def where(job):
    """``Async(default)``, ``Inline(default)``, ``RQ(reports)``: the adapter
    and queue of ``job``, as ActiveJob names them."""
    return where_queue(job.registry, job.queue)


def where_queue(registry, queue):
    """:func:`where` for a job of ``queue`` (a job class's ``queue``, or
    ``None`` for the adapter's default)."""
    adapter = get_queue_adapter(registry)
    name = getattr(adapter, 'log_name', type(adapter).__name__.removesuffix('Adapter'))
    label = getattr(adapter, 'queue_label', None)
    return f'{name}({label(queue) if label is not None else queue or "default"})'


def described(job):
    """``GenerateInvoice (Job ID: <id>)``."""
    return f'{job.job_class} (Job ID: {job.job_id})'


def arguments(job):
    """`` with arguments: ...`` when ``immortus.log_arguments`` is on (the
    arguments often hold personal data), else nothing."""
    if not get_settings(job.registry).log_arguments:
        return ''
    shown = [_cut(repr(value)) for value in job.arguments]
    shown += [f'{name}={_cut(repr(value))}' for name, value in job.kwargs.items()]
    return ' with arguments: ' + ', '.join(shown)


def _cut(text):
    return text if len(text) <= MAX_ARGUMENT else text[: MAX_ARGUMENT - 3] + '...'


def milliseconds(seconds):
    """``12.34ms``."""
    return f'{seconds * 1000:.2f}ms'
