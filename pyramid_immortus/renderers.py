"""The ``immortus`` renderer: a job becomes ``{"job_id", "job_class"}``."""

from typing import Any

from pyramid.response import Response

from .exceptions import BackendUnavailable
from .status import dumps

#: What a client learns of a backend outage (the detail goes to the log).
UNAVAILABLE = {'error': 'backend unavailable, try again later'}
#: What a client learns of a job that could not be enqueued for another
#: reason.
NOT_ENQUEUED = {'error': 'the job could not be enqueued'}


def job_payload(value: Any) -> tuple[int, dict[str, Any]]:
    """Return ``(status, body)`` for what a job-creating view returned.

    A job (or a mapping with a ``job_id``) is ``200 {"job_id",
    "job_class"}``; :class:`BackendUnavailable` is ``503`` and any other
    exception ``500``, each with a fixed ``{"error"}`` that tells nothing of
    the backend; anything else is the Rails add-on's ``500 {}``.
    """
    if isinstance(value, BackendUnavailable):
        return 503, dict(UNAVAILABLE)
    if isinstance(value, BaseException):
        return 500, dict(NOT_ENQUEUED)
    if isinstance(value, dict):
        job_id, job_class = value.get('job_id'), value.get('job_class')
    else:
        job_id = getattr(value, 'job_id', None)
        job_class = getattr(value, 'job_class', None)
    if not job_id:
        return 500, {}
    return 200, {'job_id': job_id, 'job_class': job_class}


def json_response(data: Any, status: int = 200) -> Response:
    """A JSON response that no cache keeps."""
    return Response(
        body=dumps(data),
        status=status,
        headerlist=[('Content-Type', 'application/json'), ('Cache-Control', 'no-store')],
    )


def render_immortus(request: Any, job: Any) -> Response:
    """Return the ``Response`` the ``immortus`` renderer would give ``job``,
    for views that build their responses by hand."""
    status, data = job_payload(job)
    return json_response(data, status)


def set_json(response, status):
    """Make ``response`` a JSON answer with ``status`` that no cache keeps."""
    response.status_int = status
    response.content_type = 'application/json'
    response.cache_control = 'no-store'


class ImmortusRenderer:
    """The renderer factory registered as ``immortus``."""

    def __init__(self, info):
        self.info = info

    def __call__(self, value, system):
        status, data = job_payload(value)
        request = system.get('request')
        if request is not None:
            set_json(request.response, status)
        return dumps(data)
