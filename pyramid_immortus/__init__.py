"""Start background jobs from a Pyramid page and follow them to the end.

``config.include('pyramid_immortus')`` reads the ``immortus.*`` settings and
adds the verify routes, the ``immortus`` renderer, the static JavaScript
client and the directives ``add_immortus_jobs``, ``add_immortus_job``,
``add_tracking_strategy`` and ``add_queue_adapter``.
"""

from .adapters.async_ import AsyncAdapter
from .adapters.inline import InlineAdapter
from .adapters.rq import RQAdapter
from .catalog import JobCatalog, find_tracking_strategy
from .config import (
    add_immortus_job,
    add_immortus_jobs,
    add_queue_adapter,
    add_tracking_strategy,
    setup,
)
from .decorators import strategy_config, tracking_strategy
from .exceptions import (
    BackendUnavailable,
    Cancelled,
    CannotCancel,
    CapacityExceeded,
    EnqueueFailed,
    JobAlreadyEnded,
    JobNotRegistered,
    Shutdown,
    UnknownJob,
)
from .interfaces import IJobCatalog
from .job import ConfiguredJob, Job
from .renderers import ImmortusRenderer, render_immortus
from .retry import retry_on
from .routes import CANCEL_ROUTE, VERIFY_BATCH_ROUTE, VERIFY_CLASS_ROUTE, VERIFY_ROUTE
from .settings import SETTINGS_PREFIX, ImmortusSettings, get_settings, parse_setting
from .strategies.memory import MemoryStrategy
from .strategies.redis import RedisStrategy
from .strategies.rq import RQStrategy

#: The version of this package and of its JavaScript client
#: (``Immortus.version``, checked by the tests).
__version__ = '0.1.0.dev0'

__all__ = [
    'Job',
    'ConfiguredJob',
    'retry_on',
    'tracking_strategy',
    'strategy_config',
    'render_immortus',
    'find_tracking_strategy',
    'UnknownJob',
    'BackendUnavailable',
    'JobAlreadyEnded',
    'JobNotRegistered',
    'Cancelled',
    'CannotCancel',
    'CapacityExceeded',
    'EnqueueFailed',
    'Shutdown',
    'SETTINGS_PREFIX',
    'get_settings',
    'ImmortusSettings',
    'STATIC_PATH',
    'includeme',
]

#: The asset spec of the JavaScript client's folder.
STATIC_PATH = 'pyramid_immortus:static/'

#: ``(name, factory)`` of the strategies and adapters every app has.
BUILTIN_STRATEGIES = (
    ('memory', MemoryStrategy),
    ('redis', RedisStrategy),
    ('redis_pub_sub', RedisStrategy),
    ('rq', RQStrategy),
)
BUILTIN_ADAPTERS = (('inline', InlineAdapter), ('async', AsyncAdapter), ('rq', RQAdapter))


def includeme(config):
    """Set up ``pyramid_immortus`` in a Pyramid application."""
    from pyramid.exceptions import BadCSRFOrigin, BadCSRFToken, URLDecodeError

    from .views import (
        RawPathPrefix,
        bad_csrf_view,
        cancel_view,
        enqueue_error_view,
        forbidden_view,
        not_found_view,
        url_decode_error_view,
        verify_batch_view,
        verify_view,
    )

    setup(config)
    settings = config.registry.settings
    # these two shape routes and views: read now, as the include runs
    path = parse_setting(settings, 'verify_path')
    permission = parse_setting(settings, 'verify_permission')
    config.registry.registerUtility(JobCatalog(), IJobCatalog)

    config.add_directive('add_tracking_strategy', add_tracking_strategy)
    config.add_directive('add_queue_adapter', add_queue_adapter)
    config.add_directive('add_immortus_job', add_immortus_job)
    config.add_directive('add_immortus_jobs', add_immortus_jobs)

    for name, strategy in BUILTIN_STRATEGIES:
        config.add_tracking_strategy(name, strategy)
    for name, adapter in BUILTIN_ADAPTERS:
        config.add_queue_adapter(name, adapter)

    config.add_renderer('immortus', ImmortusRenderer)
    for error in (BackendUnavailable, EnqueueFailed):
        config.add_exception_view(enqueue_error_view, context=error, renderer='immortus')
    config.add_static_view('immortus-static', STATIC_PATH)

    routes = (
        (VERIFY_ROUTE, path + '/{job_id}', 'GET', verify_view),
        (VERIFY_CLASS_ROUTE, path + '/{job_id}/{job_class}', 'GET', verify_view),
        (VERIFY_BATCH_ROUTE, path, 'GET', verify_batch_view),
        (CANCEL_ROUTE, path + '/{job_id}/cancel', 'POST', cancel_view),
    )
    for name, pattern, method, view in routes:
        config.add_route(name, pattern, request_method=method)
        config.add_view(view, route_name=name, permission=permission)
        config.add_forbidden_view(forbidden_view, route_name=name)
    for error in (BadCSRFToken, BadCSRFOrigin):
        config.add_exception_view(bad_csrf_view, context=error, route_name=CANCEL_ROUTE)
    config.add_view_predicate('immortus_raw_path_prefix', RawPathPrefix)
    config.add_exception_view(
        url_decode_error_view, context=URLDecodeError, immortus_raw_path_prefix=path
    )
    config.add_notfound_view(not_found_view, immortus_raw_path_prefix=path)
