"""Server push: follow jobs over Server-Sent Events.

``immortus-events CONFIG_URI`` (or ``python -m pyramid_immortus.events``)
runs the events gateway, :mod:`pyramid_immortus.events.gateway`, which needs
the ``events`` extra (``pip install "pyramid_immortus[events]"``).

This module itself imports nothing of the gateway, so that strategies and
workers can publish their changes with :func:`publish_change` without the
extra installed.  A change of job ``ID`` is published on the Redis channel
``immortus:job:ID`` as a JSON object ``{"job_id", "status", ...the changed
public fields}``; the gateway re-reads the job through its strategy on each
message (what the message holds only tells a progress from a change of
state), so a strategy of your own takes part by publishing any such message
after each write it makes.
"""

import json

#: The channel of job ``ID`` is ``CHANNEL_PREFIX + ID``.
CHANNEL_PREFIX = 'immortus:job:'

#: Fields whose change alone is "progress" (throttled by the gateway to one
#: event per job per ``immortus.progress_interval``).
PROGRESS_FIELDS = frozenset(('progress', 'meta'))


def channel(job_id):
    """The Redis channel on which changes of ``job_id`` are published."""
    return CHANNEL_PREFIX + job_id


def change_message(job_id, status=None, **fields):
    """The JSON text of a change: ``{"job_id", "status", **fields}`` (no
    ``status`` when it is ``None``: a strategy that does not know it)."""
    message = {'job_id': job_id}
    if status is not None:
        message['status'] = status
    message.update(fields)
    return json.dumps(message)


def publish_change(connection, job_id, status=None, **fields):
    """Publish a change of ``job_id`` with a ``redis.Redis`` (or pipeline)
    ``connection``.  Call it after the write that made the change, so that
    a reader woken by it reads the new state."""
    return connection.publish(channel(job_id), change_message(job_id, status, **fields))


def main(argv=None):
    """The ``immortus-events`` console script (see
    :func:`pyramid_immortus.events.gateway.main`)."""
    from .gateway import main as run

    return run(argv)
