"""The configuration directives of ``pyramid_immortus``."""

import dataclasses
import inspect
from typing import Any

from pyramid.config import Configurator
from pyramid.config.actions import action_method
from pyramid.exceptions import ConfigurationError
from pyramid.interfaces import PHASE1_CONFIG
from pyramid.path import DottedNameResolver

from .catalog import get_catalog, get_queue_adapter, strategy_name_for
from .connection import register_redis
from .interfaces import IImmortusSettings, IJobTrackingStrategy, IQueueAdapter
from .routes import CANCEL_ROUTE, VERIFY_BATCH_ROUTE, VERIFY_CLASS_ROUTE, VERIFY_ROUTE
from .settings import SETTINGS_PREFIX, get_settings, parse_settings

#: Runs after the strategies, adapters and jobs (order 0) are registered.
ORDER_RESOLVE = 10


def call_factory(factory, registry):
    """Build a strategy or adapter: ``factory.from_registry(registry)`` if it
    has one, else ``factory(registry)`` if it takes an argument, else
    ``factory()`` (a class written as in the Rails documentation)."""
    from_registry = getattr(factory, 'from_registry', None)
    if from_registry is not None:
        return from_registry(registry)
    try:
        inspect.signature(factory).bind(registry)
    except TypeError:
        return factory()
    except ValueError:  # no signature to inspect (some builtins)
        pass
    return factory(registry)


def dotted_name(obj):
    """The ``module.Name`` of a class or function."""
    return f'{obj.__module__}.{obj.__qualname__}'


def check_strategy(strategy, name):
    """Refuse an object that cannot answer ``completed(job_id)``."""
    if not callable(getattr(strategy, 'completed', None)):
        raise ConfigurationError(
            f'Tracking strategy {name!r} ({strategy!r}) has no completed(job_id) '
            'method; a strategy must provide completed (see IJobTrackingStrategy)'
        )


def add_tracking_strategy(config: Configurator, name: str, factory: Any) -> None:
    """Register a tracking strategy under ``name``.

    ``factory`` (an object or dotted name) is called with the registry, or
    with nothing, when the configuration is committed; what it returns must
    have a ``completed(job_id)`` method.  The same name registered twice is
    a configuration conflict (the application's call overrides an
    include's).
    """
    factory = config.maybe_dotted(factory)
    intr = config.introspectable(
        'immortus tracking strategies', name, name, 'immortus tracking strategy'
    )
    intr['factory'] = factory

    def register():
        strategy = call_factory(factory, config.registry)
        check_strategy(strategy, name)
        config.registry.registerUtility(strategy, IJobTrackingStrategy, name=name)
        intr['strategy'] = strategy

    config.action(('immortus.tracking_strategy', name), register, introspectables=(intr,))


def add_queue_adapter(config: Configurator, name: str, factory: Any) -> None:
    """Register a queue adapter under ``name`` (built as strategies are);
    ``immortus.queue_adapter`` chooses among them."""
    factory = config.maybe_dotted(factory)
    intr = config.introspectable('immortus queue adapters', name, name, 'immortus queue adapter')
    intr['factory'] = factory

    def register():
        adapter = make_adapter(factory, config.registry, name)
        config.registry.registerUtility(adapter, IQueueAdapter, name=name)
        intr['adapter'] = adapter

    config.action(('immortus.queue_adapter', name), register, introspectables=(intr,))


def make_adapter(factory, registry, name):
    """Build an adapter and check that it can enqueue and names a strategy."""
    adapter = call_factory(factory, registry)
    for attr in ('enqueue', 'strategy_name'):
        if getattr(adapter, attr, None) is None:
            raise ConfigurationError(
                f'Queue adapter {name!r} ({adapter!r}) has no {attr!r} (see IQueueAdapter)'
            )
    return adapter


def add_immortus_job(
    config: Configurator, job_class: Any, tracking_strategy: Any = None, name: str | None = None
) -> None:
    """Register a :class:`pyramid_immortus.Job` subclass.

    ``name`` defaults to the class's own ``name`` attribute, then to its
    ``__name__``; two jobs with one name conflict.  ``tracking_strategy``
    (a strategy name, dotted name or class) is its inline strategy, as
    ``@tracking_strategy`` would set it.
    """
    from .job import Job

    job_class = config.maybe_dotted(job_class)
    if not (inspect.isclass(job_class) and issubclass(job_class, Job)):
        raise ConfigurationError(
            f'add_immortus_job needs a subclass of pyramid_immortus.Job, not {job_class!r}'
        )
    name = name or job_class.__dict__.get('name') or job_class.__name__
    intr = config.introspectable('immortus jobs', name, name, 'immortus job')
    intr['job_class'] = job_class

    def register():
        get_catalog(config.registry).add(name, job_class)

    config.action(('immortus.job', name), register, introspectables=(intr,))
    if tracking_strategy is not None:
        set_inline_strategy(config, job_class, tracking_strategy)


@action_method
def set_inline_strategy(config, job_class, spec):
    """Make ``spec`` the inline strategy of ``job_class`` (and of its
    subclasses that name none); resolved when the configuration commits."""

    def register():
        get_catalog(config.registry).set_inline_strategy(job_class, spec)

    config.action(('immortus.inline_strategy', job_class), register)


def add_immortus_jobs(config: Configurator, include: Any) -> None:
    """Group an application's job routes, as ``immortus_jobs do ... end``.

    ``include`` (a callable or dotted name taking a Configurator) declares
    the job-creation routes and any custom verify routes.  The default
    verify routes exist already (``config.include('pyramid_immortus')``
    adds them); the group is recorded as an introspectable related to
    them.  A second call is a configuration conflict.
    """
    include = config.maybe_dotted(include)
    intr = config.introspectable(
        'immortus job groups', 'immortus.jobs', 'immortus_jobs', 'immortus jobs'
    )
    intr['include'] = include
    for route in (VERIFY_ROUTE, VERIFY_CLASS_ROUTE, VERIFY_BATCH_ROUTE, CANCEL_ROUTE):
        intr.relate('routes', route)
    config.action('immortus.jobs', introspectables=(intr,))
    config.include(include)


def import_factory(registry, iface, spec, message):
    """Import ``spec`` (a dotted name, or an object as it is), or raise
    ``ConfigurationError`` with ``message`` and the names registered for
    ``iface``."""
    try:
        return DottedNameResolver().maybe_resolve(spec)
    except (ImportError, ValueError, AttributeError):
        known = ', '.join(sorted(n for n, _ in registry.getUtilitiesFor(iface)))
        raise ConfigurationError(f'{message}; registered: {known}') from None


def resolve_strategy_spec(registry, spec, setting=None):
    """Turn a strategy name, dotted name or class into a registered name.

    A name that resolves to nothing raises ``ConfigurationError`` that names
    ``setting`` (or the job) and the registered names.
    """
    if not isinstance(spec, str):
        name = dotted_name(spec)
        factory = spec
    elif registry.queryUtility(IJobTrackingStrategy, name=spec) is not None:
        return spec
    else:
        name = spec
        factory = import_factory(
            registry,
            IJobTrackingStrategy,
            spec,
            f'{setting}: no tracking strategy is registered as {spec!r} and it is '
            'not an importable dotted name',
        )
    if registry.queryUtility(IJobTrackingStrategy, name=name) is None:
        strategy = call_factory(factory, registry)
        check_strategy(strategy, name)
        registry.registerUtility(strategy, IJobTrackingStrategy, name=name)
    return name


def resolve_adapter(registry):
    """Make ``immortus.queue_adapter`` name a registered adapter."""
    key = SETTINGS_PREFIX + 'queue_adapter'
    spec = get_settings(registry).queue_adapter
    name = spec if isinstance(spec, str) else dotted_name(spec)
    if registry.queryUtility(IQueueAdapter, name=name) is None:
        factory = import_factory(
            registry,
            IQueueAdapter,
            spec,
            f'{key}: {spec!r} is neither a registered queue adapter nor an '
            'importable dotted name of an adapter factory',
        )
        adapter = make_adapter(factory, registry, name)
        registry.registerUtility(adapter, IQueueAdapter, name=name)
    return name


def resolve_strategies(registry):
    """Resolve every strategy the lookup order can reach, so that a name
    that leads nowhere fails now rather than at the first request."""
    settings = get_settings(registry)
    key = SETTINGS_PREFIX + 'tracking_strategy'
    strategy = settings.tracking_strategy
    if strategy is not None:
        strategy = resolve_strategy_spec(registry, strategy, key)
    # from now on, the settings name what is registered
    registry.registerUtility(
        dataclasses.replace(
            settings, queue_adapter=resolve_adapter(registry), tracking_strategy=strategy
        ),
        IImmortusSettings,
    )
    catalog = get_catalog(registry)
    for job_class, spec in catalog.inline_strategies():
        catalog.set_inline_strategy(
            job_class,
            resolve_strategy_spec(
                registry, spec, f'the inline strategy of {dotted_name(job_class)}'
            ),
        )
    inferred = strategy_name_for(registry)
    if registry.queryUtility(IJobTrackingStrategy, name=inferred) is None:
        raise ConfigurationError(
            f'{SETTINGS_PREFIX}queue_adapter: its inferred tracking strategy '
            f'{inferred!r} is not registered; set {key}'
        )
    check_strategies(registry)
    activate = getattr(get_queue_adapter(registry), 'activate', None)
    if activate is not None:
        activate()


def keeps_owners(strategy):
    """Whether ``strategy`` can record a job's owner and read it back."""
    writes = hasattr(strategy, 'job_created') or hasattr(strategy, 'job_owner')
    reads = hasattr(strategy, 'read_many') or hasattr(strategy, 'owner')
    return writes and reads


def check_strategies(registry):
    """Refuse a strategy that cannot work with the queue adapter, or that
    cannot keep owners when ``immortus.verify_owner_only`` is on, for the
    default strategy and for each job's own."""
    settings = get_settings(registry)
    adapter_key = SETTINGS_PREFIX + 'queue_adapter'
    adapter = get_queue_adapter(registry)
    owner_only = settings.verify_owner_only
    catalog = get_catalog(registry)
    for name, job_class in [(None, None), *((n, catalog.get(n)) for n in catalog.names())]:
        strategy_name = strategy_name_for(registry, job_class)
        strategy = registry.getUtility(IJobTrackingStrategy, name=strategy_name)
        whose = (
            f'the tracking strategy {strategy_name!r} of job {name!r}'
            if name
            else f'the default tracking strategy {strategy_name!r}'
        )
        if getattr(strategy, 'process_local', False) and getattr(adapter, 'out_of_process', False):
            raise ConfigurationError(
                f'{adapter_key} = {settings.queue_adapter}: {whose} keeps job states in '
                'the memory of one process, where the workers of this adapter cannot '
                'write them; use "redis" or "rq"'
            )
        if getattr(strategy, 'needs_rq_adapter', False) and not getattr(adapter, 'rq', False):
            raise ConfigurationError(
                f'{adapter_key} = {settings.queue_adapter}: {whose} reads the job records '
                'of rq, which only the "rq" queue adapter writes'
            )
        if owner_only and not keeps_owners(strategy):
            raise ConfigurationError(
                f'{SETTINGS_PREFIX}verify_owner_only = true: {whose} cannot record '
                'owners (it needs job_created or job_owner, and read_many or owner); '
                'a job it tracks would be public'
            )


def setup(config):
    """Parse the settings once, in a deferred action (so that an
    application may change them until it commits), and register what is
    resolved from them."""
    registry = config.registry

    def register():
        registry.registerUtility(parse_settings(registry.settings), IImmortusSettings)
        register_redis(registry)

    config.action('immortus.settings', register, order=PHASE1_CONFIG)
    config.action('immortus.resolve', lambda: resolve_strategies(registry), order=ORDER_RESOLVE)
