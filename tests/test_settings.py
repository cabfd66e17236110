import pytest
from pyramid.exceptions import ConfigurationError

from pyramid_immortus.settings import SETTINGS, SETTINGS_PREFIX, parse_settings


def test_defaults():
    parsed = parse_settings({})
    assert parsed['immortus.queue_adapter'] == 'async'
    assert parsed['immortus.tracking_strategy'] is None
    assert parsed['immortus.verify_path'] == '/immortus/verify'
    assert parsed['immortus.async_workers'] == 4
    assert parsed['immortus.status_ttl'] == 86400
    assert parsed['immortus.rq.result_ttl'] == 86400
    assert parsed['immortus.verify_owner_only'] is False
    assert len(parsed) == len(SETTINGS)


def test_values_from_an_ini_are_converted():
    parsed = parse_settings({
        'immortus.async_workers': ' 8 ',
        'immortus.status_ttl': '60',
        'immortus.verify_owner_only': 'yes',
        'immortus.progress_interval': '0.5',
        'immortus.tracking_strategy': 'redis',
        'immortus.verify_path': '/jobs/check',
        'other.setting': 'ignored',
    })
    assert parsed['immortus.async_workers'] == 8
    assert parsed['immortus.rq.result_ttl'] == 60
    assert parsed['immortus.verify_owner_only'] is True
    assert parsed['immortus.progress_interval'] == 0.5
    assert parsed['immortus.tracking_strategy'] == 'redis'
    assert parsed['immortus.verify_path'] == '/jobs/check'


def test_parsing_twice_gives_the_same_values():
    once = parse_settings({'immortus.async_workers': '3', 'immortus.redis_url': 'redis://h:1/2'})
    assert parse_settings(once) == once


def test_an_empty_optional_setting_is_unset():
    assert parse_settings({'immortus.tracking_strategy': '  '})['immortus.tracking_strategy'] is None


@pytest.mark.parametrize('key, value', [
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
    ('immortus.queue_adapter', ''),
])
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
    assert all(key in parse_settings({}) for key in
               (SETTINGS_PREFIX + name for name, _, _ in SETTINGS))


@pytest.mark.parametrize('url', ['redis://:hunter2@localhost:port/0',
                                 'http://user:hunter2@localhost:6379/0'])
def test_a_bad_redis_url_does_not_print_its_password(url):
    with pytest.raises(ConfigurationError) as info:
        parse_settings({'immortus.redis_url': url})
    assert 'hunter2' not in str(info.value)
    assert "'immortus.redis_url'" in str(info.value) and '***' in str(info.value)


@pytest.mark.parametrize('flag, value', [('--job-monitoring-interval', '0'),
                                         ('--job-monitoring-interval', '-5'),
                                         ('--lease-grace', '-1'),
                                         ('--lease-grace', 'soon')])
def test_worker_flags_that_cannot_work_are_usage_errors(capsys, flag, value):
    from pyramid_immortus.worker import parse_args

    with pytest.raises(SystemExit) as info:
        parse_args(['app.ini', flag, value])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and value in err
