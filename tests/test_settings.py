import dataclasses

import pytest
from pyramid.exceptions import ConfigurationError

from pyramid_immortus.catalog import get_queue_adapter
from pyramid_immortus.settings import SETTINGS, SETTINGS_PREFIX, get_settings, parse_settings


def test_defaults():
    parsed = parse_settings({})
    assert parsed.queue_adapter == 'async'
    assert parsed.tracking_strategy is None
    assert parsed.verify_path == '/immortus/verify'
    assert parsed.async_workers == 4
    assert parsed.status_ttl == 86400
    assert parsed.rq_result_ttl is None and parsed.result_ttl == 86400
    assert parsed.verify_owner_only is False
    assert len(dataclasses.fields(parsed)) == len(SETTINGS)


def test_values_from_an_ini_are_converted():
    parsed = parse_settings(
        {
            'immortus.async_workers': ' 8 ',
            'immortus.status_ttl': '60',
            'immortus.verify_owner_only': 'yes',
            'immortus.progress_interval': '0.5',
            'immortus.tracking_strategy': 'redis',
            'immortus.verify_path': '/jobs/check',
            'other.setting': 'ignored',
        }
    )
    assert parsed.async_workers == 8
    assert parsed.result_ttl == 60
    assert parsed.verify_owner_only is True
    assert parsed.progress_interval == 0.5
    assert parsed.tracking_strategy == 'redis'
    assert parsed.verify_path == '/jobs/check'


def test_an_empty_optional_setting_is_unset():
    assert parse_settings({'immortus.tracking_strategy': '  '}).tracking_strategy is None


def test_settings_are_parsed_once_at_commit_and_left_as_written(make_config):
    """The application may change them after the include (rq's result_ttl
    follows status_ttl then too), and registry.settings keeps only what the
    application wrote."""
    config = make_config({'immortus.queue_adapter': 'rq'})
    config.add_settings({'immortus.status_ttl': '60'})
    config.commit()
    registry = config.registry
    assert get_settings(registry).result_ttl == 60
    assert get_queue_adapter(registry).options['result_ttl'] == 60
    assert registry.settings['immortus.status_ttl'] == '60'
    assert 'immortus.rq.result_ttl' not in registry.settings
    assert 'immortus.batch_max' not in registry.settings


def test_a_bad_value_set_after_the_include_fails_the_commit(make_config):
    config = make_config()
    config.add_settings({'immortus.batch_max': 'many'})
    with pytest.raises(ConfigurationError, match="'immortus.batch_max'"):
        config.commit()


@pytest.mark.parametrize(
    'key, value',
    [
        ('immortus.async_workers', '0'),
        ('immortus.async_workers', 'four'),
        ('immortus.status_ttl', '-1'),
        ('immortus.verify_owner_only', 'maybe'),
        ('immortus.enqueue_after_commit', 'tru'),
        ('immortus.verify_path', 'no-slash'),
        ('immortus.verify_path', '/trailing/'),
        ('immortus.verify_path', '/with/{placeholder}'),
        ('immortus.redis_url', 'http://localhost:6379'),
        ('immortus.redis_url', 'redis://'),
        ('immortus.redis_url', 'redis://localhost:port/0'),
        ('immortus.rq.queue', 'bad queue'),
        ('immortus.progress_interval', '-0.1'),
        ('immortus.progress_interval', 'nan'),
        ('immortus.progress_interval', 'inf'),
        ('immortus.async_lease', '0'),
        ('immortus.async_lease', 'inf'),
        ('immortus.async_shutdown_grace', 'nan'),
        ('immortus.cancel_require_csrf', 'sometimes'),
        ('immortus.status_max_age', '10000000000000000'),
        ('immortus.status_ttl', '10000000000000000'),
        ('immortus.rq.job_timeout', '10000000000'),
        ('immortus.async_shutdown_grace', '10000000000'),
        ('immortus.async_lease', '1e9'),
        ('immortus.queue_adapter', ''),
    ],
)
def test_a_bad_value_names_its_setting(key, value):
    with pytest.raises(ConfigurationError) as info:
        parse_settings({key: value})
    assert repr(key) in str(info.value)
    assert repr(value) in str(info.value)


def test_an_unknown_setting_under_the_prefix_is_an_error():
    with pytest.raises(ConfigurationError, match="'immortus.queue_adaptor'"):
        parse_settings({'immortus.queue_adaptor': 'rq'})


def test_every_setting_shares_the_prefix():
    assert SETTINGS_PREFIX == 'immortus.'
    fields = {field.name for field in dataclasses.fields(parse_settings({}))}
    assert fields == {name.replace('.', '_') for name, _, _ in SETTINGS}


@pytest.mark.parametrize(
    'url',
    [
        'redis://:hunter2@localhost:port/0',
        'http://user:hunter2@localhost:6379/0',
        'redis://localhost:port/0?password=hunter2',
    ],
)
def test_a_bad_redis_url_does_not_print_its_password(url):
    with pytest.raises(ConfigurationError) as info:
        parse_settings({'immortus.redis_url': url})
    assert 'hunter2' not in str(info.value)
    assert "'immortus.redis_url'" in str(info.value) and '***' in str(info.value)


@pytest.mark.parametrize(
    'flag, value',
    [
        ('--job-monitoring-interval', '0'),
        ('--job-monitoring-interval', '-5'),
        ('--lease-grace', '-1'),
        ('--lease-grace', '0'),
        ('--job-monitoring-interval', '10000000000'),
        ('--lease-grace', '1e16'),
        ('--lease-grace', 'soon'),
    ],
)
def test_worker_flags_that_cannot_work_are_usage_errors(capsys, flag, value):
    from pyramid_immortus.worker import parse_args

    with pytest.raises(SystemExit) as info:
        parse_args(['app.ini', flag, value])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and value in err
