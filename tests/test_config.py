import sys
import types

import pytest
from pyramid.exceptions import ConfigurationConflictError, ConfigurationError
from zope.interface.verify import verifyObject

from pyramid_immortus import Job, find_tracking_strategy
from pyramid_immortus.adapters.async_ import AsyncAdapter
from pyramid_immortus.adapters.inline import InlineAdapter
from pyramid_immortus.catalog import get_catalog, get_queue_adapter
from pyramid_immortus.interfaces import (
    ICancellableQueueAdapter,
    IJobCatalog,
    IJobTrackingStrategy,
    IQueueAdapter,
    IStatusReport,
    ITrackingCallbacks,
)
from pyramid_immortus.strategies.memory import MemoryStrategy
from tests.scanned import jobs
from tests.scanned.strategies import SeedStyleStrategy
from tests.support import ROOT


class Other(Job):
    def perform(self):
        pass


class GlobalStrategy:
    def completed(self, job_id):
        return True


def global_factory(registry):
    strategy = GlobalStrategy()
    strategy.registry = registry
    return strategy


def test_include_registers_routes_renderer_static_and_directives(make_config):
    config = make_config()
    config.commit()
    request_paths = {r.name: r.pattern for r in config.get_routes_mapper().get_routes()}
    assert request_paths['immortus.verify'] == '/immortus/verify/{job_id}'
    assert request_paths['immortus.verify_class'] == '/immortus/verify/{job_id}/{job_class}'
    for directive in (
        'add_immortus_jobs',
        'add_immortus_job',
        'add_tracking_strategy',
        'add_queue_adapter',
    ):
        assert callable(getattr(config, directive))
    introspector = config.registry.introspector
    assert introspector.get('renderer factories', 'immortus') is not None
    assert introspector.get('immortus tracking strategies', 'memory') is not None
    adapters = introspector.get_category('immortus queue adapters')
    assert {a['introspectable'].discriminator for a in adapters} == {'inline', 'async', 'rq'}


def test_static_url_of_the_client(make_config):
    from pyramid import testing

    config = make_config()
    config.commit()
    request = testing.DummyRequest()
    request.registry = config.registry
    assert request.static_url('pyramid_immortus:static/immortus.js').endswith(
        '/immortus-static/immortus.js'
    )


def test_verify_path_setting_moves_the_routes(make_config):
    config = make_config({'immortus.verify_path': '/jobs/check'})
    config.commit()
    patterns = {r.name: r.pattern for r in config.get_routes_mapper().get_routes()}
    assert patterns['immortus.verify'] == '/jobs/check/{job_id}'


def test_builtins_provide_their_interfaces(make_config):
    config = make_config()
    config.commit()
    registry = config.registry
    memory = registry.getUtility(IJobTrackingStrategy, 'memory')
    for iface in (IJobTrackingStrategy, ITrackingCallbacks, IStatusReport):
        assert verifyObject(iface, memory)
    assert verifyObject(IQueueAdapter, registry.getUtility(IQueueAdapter, 'inline'))
    assert verifyObject(ICancellableQueueAdapter, registry.getUtility(IQueueAdapter, 'async'))
    assert verifyObject(IJobCatalog, get_catalog(registry))


def test_default_adapter_is_async_with_memory(make_config):
    config = make_config()
    config.commit()
    adapter = get_queue_adapter(config.registry)
    assert isinstance(adapter, AsyncAdapter) and adapter.workers == 4
    assert isinstance(find_tracking_strategy(config.registry), MemoryStrategy)


def test_async_workers_setting(make_config):
    config = make_config({'immortus.async_workers': '2'})
    config.commit()
    assert get_queue_adapter(config.registry).workers == 2


def test_bad_setting_fails_the_commit(make_config):
    config = make_config({'immortus.async_workers': 'many'})
    with pytest.raises(ConfigurationError, match="'immortus.async_workers'"):
        config.commit()


def test_a_bad_verify_path_fails_at_include(make_config):
    with pytest.raises(ConfigurationError, match="'immortus.verify_path'"):
        make_config({'immortus.verify_path': 'nowhere'})


def test_setting_changed_after_include_is_parsed_at_commit(make_config):
    config = make_config()
    config.add_settings({'immortus.status_ttl': 'soon'})
    with pytest.raises(ConfigurationError, match="'immortus.status_ttl'"):
        config.commit()


def test_unknown_queue_adapter_names_the_setting(make_config):
    config = make_config({'immortus.queue_adapter': 'sidekiq'})
    with pytest.raises(ConfigurationError, match="immortus.queue_adapter: 'sidekiq'"):
        config.commit()


def test_unknown_global_strategy_names_the_setting_and_the_choices(make_config):
    config = make_config({'immortus.tracking_strategy': 'nonesuch'})
    with pytest.raises(ConfigurationError) as info:
        config.commit()
    assert 'immortus.tracking_strategy' in str(info.value)
    assert "'nonesuch'" in str(info.value) and 'memory' in str(info.value)


def test_global_strategy_by_dotted_name_called_with_the_registry(make_config):
    config = make_config({'immortus.tracking_strategy': 'tests.test_config.global_factory'})
    config.commit()
    strategy = find_tracking_strategy(config.registry)
    assert isinstance(strategy, GlobalStrategy)
    assert strategy.registry is config.registry


def test_global_strategy_changed_after_include(make_config):
    config = make_config()
    config.add_tracking_strategy('mine', GlobalStrategy)
    config.add_settings({'immortus.tracking_strategy': 'mine'})
    config.commit()
    assert isinstance(find_tracking_strategy(config.registry), GlobalStrategy)


def test_custom_adapter_by_dotted_name(make_config):
    config = make_config(
        {'immortus.queue_adapter': 'pyramid_immortus.adapters.inline.InlineAdapter'}
    )
    config.commit()
    assert isinstance(get_queue_adapter(config.registry), InlineAdapter)


def test_adapter_without_strategy_name_is_refused(make_config):
    class Bare:
        def enqueue(self, job):
            pass

    config = make_config()
    config.add_queue_adapter('bare', Bare)
    config.add_settings({'immortus.queue_adapter': 'bare'})
    with pytest.raises(ConfigurationError, match="'strategy_name'"):
        config.commit()


def test_strategy_without_completed_is_refused_at_commit(make_config):
    config = make_config()
    config.add_tracking_strategy('broken', 'tests.scanned.strategies.NotAStrategy')
    with pytest.raises(ConfigurationError, match='completed'):
        config.commit()


def test_same_strategy_name_twice_conflicts(make_config):
    config = make_config()
    config.add_tracking_strategy('twice', GlobalStrategy)
    config.add_tracking_strategy('twice', SeedStyleStrategy)
    with pytest.raises(ConfigurationConflictError):
        config.commit()


def test_application_overrides_a_builtin_strategy(make_config):
    config = make_config()
    config.add_tracking_strategy('memory', GlobalStrategy)
    config.commit()
    assert isinstance(find_tracking_strategy(config.registry), GlobalStrategy)


def test_scan_registers_concrete_jobs_only(make_config):
    config = make_config()
    config.scan('tests.scanned')
    config.commit()
    catalog = get_catalog(config.registry)
    assert catalog.names() == ['InheritsInline', 'Inline', 'InlineByClass', 'Plain', 'custom-name']
    assert catalog.get('Base') is None
    assert catalog.name_of(jobs.Renamed) == 'custom-name'


def test_import_registers_nothing(make_config):
    config = make_config()
    config.commit()
    assert get_catalog(config.registry).names() == []
    from pyramid_immortus.interfaces import IJobTrackingStrategy as I

    assert config.registry.queryUtility(I, 'seed_style') is None


def test_two_jobs_with_one_name_conflict(make_config):
    config = make_config()
    config.scan('tests.scanned.jobs')
    config.scan('tests.conflicting_jobs')
    with pytest.raises(ConfigurationConflictError):
        config.commit()


def test_add_immortus_job_with_name_and_strategy(make_config):
    config = make_config()
    config.scan('tests.scanned.strategies')
    config.add_immortus_job(Other, tracking_strategy='seed_style', name='other-job')
    config.commit()
    assert get_catalog(config.registry).get('other-job') is Other
    assert isinstance(find_tracking_strategy(config.registry, 'other-job'), SeedStyleStrategy)


def test_add_immortus_job_refuses_a_non_job(make_config):
    config = make_config()
    with pytest.raises(ConfigurationError, match='subclass of pyramid_immortus.Job'):
        config.add_immortus_job(GlobalStrategy)


def test_unknown_inline_strategy_fails_at_commit(make_config):
    config = make_config()
    config.add_immortus_job(Other, tracking_strategy='missing')
    with pytest.raises(ConfigurationError, match='tests.test_config.Other'):
        config.commit()


def test_lookup_order_inline_then_setting_then_inferred(make_config):
    config = make_config({'immortus.tracking_strategy': 'tests.test_config.GlobalStrategy'})
    config.scan('tests.scanned')
    config.commit()
    registry = config.registry
    inline = find_tracking_strategy(registry, jobs.Inline)
    assert isinstance(inline, SeedStyleStrategy)
    assert find_tracking_strategy(registry, jobs.InheritsInline) is inline
    by_class = find_tracking_strategy(registry, jobs.InlineByClass)
    assert isinstance(by_class, SeedStyleStrategy) and by_class is not inline
    assert isinstance(find_tracking_strategy(registry, jobs.Plain), GlobalStrategy)
    assert isinstance(find_tracking_strategy(registry), GlobalStrategy)


def test_without_setting_the_strategy_is_inferred(make_config):
    config = make_config({'immortus.queue_adapter': 'inline'})
    config.scan('tests.scanned')
    config.commit()
    assert isinstance(find_tracking_strategy(config.registry, jobs.Plain), MemoryStrategy)
    assert isinstance(find_tracking_strategy(config.registry, 'Inline'), SeedStyleStrategy)


def test_find_tracking_strategy_of_an_unknown_job_name(make_config):
    config = make_config()
    config.commit()
    with pytest.raises(LookupError, match="'Nope'"):
        find_tracking_strategy(config.registry, 'Nope')


def routes(config):
    config.add_route('create', '/create')


def test_add_immortus_jobs_includes_and_is_introspectable(make_config):
    config = make_config()
    config.add_immortus_jobs(routes)
    config.commit()
    names = [r.name for r in config.get_routes_mapper().get_routes()]
    assert 'create' in names and 'immortus.verify' in names
    intr = config.registry.introspector.get('immortus job groups', 'immortus.jobs')
    assert intr['include'] is routes
    related = config.registry.introspector.related(intr)
    assert {r.discriminator for r in related} == {
        'immortus.verify',
        'immortus.verify_class',
        'immortus.verify_batch',
        'immortus.cancel',
    }


def test_add_immortus_jobs_twice_conflicts(make_config):
    config = make_config()
    config.add_immortus_jobs(routes)
    config.add_immortus_jobs('tests.test_config.routes')
    with pytest.raises(ConfigurationConflictError):
        config.commit()


class DummyVenusian:
    def __init__(self):
        self.attached = []

    def attach(self, wrapped, callback, category=None, depth=1):
        self.attached.append((wrapped, callback, category))
        return types.SimpleNamespace(module=sys.modules[__name__], codeinfo=None)


class DummyScanner:
    def __init__(self, config):
        self.config = config


def test_decorators_only_attach_a_callback_at_import(make_config):
    from pyramid_immortus import strategy_config, tracking_strategy

    venusian = DummyVenusian()
    decorator = tracking_strategy('seed_style')
    decorator.venusian = venusian
    assert decorator(Other) is Other
    registering = strategy_config('dummy')
    registering.venusian = venusian
    assert registering(GlobalStrategy) is GlobalStrategy
    assert [(w, c) for w, _, c in venusian.attached] == [
        (Other, 'pyramid'),
        (GlobalStrategy, 'pyramid'),
    ]

    config = make_config()
    config.add_immortus_job(Other)
    config.scan('tests.scanned.strategies')
    # the scan runs the callbacks: only then is anything registered
    for wrapped, callback, _ in venusian.attached:
        callback(DummyScanner(config), wrapped.__name__, wrapped)
    config.commit()
    assert isinstance(find_tracking_strategy(config.registry, Other), SeedStyleStrategy)
    assert isinstance(config.registry.getUtility(IJobTrackingStrategy, 'dummy'), GlobalStrategy)


def test_job_subclass_attaches_its_registration_callback():
    venusian = DummyVenusian()

    class Base(Job):
        abstract = True

    Base.venusian = venusian

    class Concrete(Base):
        def perform(self):
            pass

    class StillAbstract(Base):
        abstract = True

    assert [(w, c) for w, _, c in venusian.attached] == [(Concrete, 'pyramid')]


@pytest.mark.parametrize(
    'settings, inline, message',
    [
        (
            {'immortus.queue_adapter': 'rq', 'immortus.tracking_strategy': 'memory'},
            None,
            "the default tracking strategy 'memory' keeps job states in the memory of one process",
        ),
        (
            {'immortus.queue_adapter': 'rq', 'immortus.tracking_strategy': 'redis'},
            'memory',
            "the tracking strategy 'memory' of job 'Pinned' keeps job states in the memory",
        ),
        (
            {'immortus.queue_adapter': 'async', 'immortus.tracking_strategy': 'rq'},
            None,
            "the default tracking strategy 'rq' reads the job records of rq",
        ),
        (
            {'immortus.queue_adapter': 'inline'},
            'rq',
            "the tracking strategy 'rq' of job 'Pinned' reads the job records of rq",
        ),
    ],
)
def test_a_strategy_that_cannot_work_with_the_adapter_is_refused(
    make_config, settings, inline, message
):
    from pyramid_immortus import Job

    class Pinned(Job):
        def perform(self):
            pass

    config = make_config(settings)
    config.add_immortus_job(Pinned, tracking_strategy=inline)
    with pytest.raises(ConfigurationError) as info:
        config.commit()
    assert message in str(info.value) and 'immortus.queue_adapter' in str(info.value)


@pytest.mark.parametrize(
    'first, second, user_file',
    [
        ('tests.scanned.jobs', 'tests.conflicting_jobs', 'conflicting_jobs.py'),
        ('tests.scanned.strategies', 'tests.conflicting_strategies', 'conflicting_strategies.py'),
    ],
)
def test_a_scan_conflict_names_the_users_lines(make_config, first, second, user_file):
    config = make_config()
    config.scan(first)
    config.scan(second)
    with pytest.raises(ConfigurationConflictError) as info:
        config.commit()
    message = str(info.value)
    first_file = first.replace('.', '/') + '.py'
    assert f'of file {ROOT}/tests/{user_file}:' in message
    assert f'of file {ROOT}/{first_file}:' in message
    assert 'pyramid_immortus/' not in message


def test_a_module_level_alias_is_not_a_conflict(make_config):
    config = make_config()
    config.scan('tests.aliased_jobs')
    config.commit()
    assert get_catalog(config.registry).names() == ['Aliased']
    assert (
        get_catalog(config.registry).inline_strategy(
            __import__('tests.aliased_jobs', fromlist=['Aliased']).Aliased
        )
        == 'redis'
    )


def test_every_builtin_provides_the_whole_contract(make_config, redis_db):
    from zope.interface.verify import verifyObject

    from pyramid_immortus.adapters.rq import RQAdapter
    from pyramid_immortus.interfaces import IImmortusSettings
    from pyramid_immortus.strategies.redis import RedisStrategy
    from pyramid_immortus.strategies.rq import RQStrategy

    config = make_config()
    config.commit()
    registry = config.registry
    for strategy in (
        registry.getUtility(IJobTrackingStrategy, 'memory'),
        RedisStrategy(redis_db),
        RQStrategy(redis_db),
    ):
        for iface in (IJobTrackingStrategy, ITrackingCallbacks, IStatusReport):
            assert verifyObject(iface, strategy)
    for adapter in (registry.getUtility(IQueueAdapter, 'async'), RQAdapter(redis_db)):
        assert verifyObject(ICancellableQueueAdapter, adapter)
    assert verifyObject(IQueueAdapter, registry.getUtility(IQueueAdapter, 'inline'))
    assert registry.queryUtility(IImmortusSettings) is not None
