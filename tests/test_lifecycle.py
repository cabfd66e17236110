"""A job's whole life: results, retries, scheduling and stopping a running
job, through the inline, async and rq adapters and the memory, redis and rq
strategies (rq with real immortus-worker processes and rq's scheduler)."""

import datetime as dt
import logging
import threading
import time

import pytest

from pyramid_immortus import retry_on
from tests.integration_app import RAN
from tests.lifecycle_app import Flaky, Returns, make_app, post
from tests.support import REDIS_URL, create, verify, wait_for

ENDED = ('finished', 'failed')


ADAPTERS_AND_STRATEGIES = [
    ('inline', 'memory'),
    ('inline', 'redis'),
    ('async', 'memory'),
    ('async', 'redis'),
]


@pytest.fixture(params=ADAPTERS_AND_STRATEGIES, ids=lambda p: '-'.join(p))
def app(request, make_config, redis_db):
    adapter, strategy = request.param
    return make_app(
        make_config,
        **{
            'immortus.queue_adapter': adapter,
            'immortus.tracking_strategy': strategy,
            'immortus.redis_url': REDIS_URL,
        },
    )


def ended(app, job_id, timeout=15):
    return wait_for(
        lambda: (lambda d: d if d['status'] in ENDED else None)(
            app.get(f'/immortus/verify/{job_id}').json
        ),
        timeout=timeout,
        message='the end',
    )


# -- results ---------------------------------------------------------------


def test_a_finished_job_carries_its_result(app):
    job_id = post(app, 'Returns', 'dict')
    data = ended(app, job_id)
    assert data['status'] == 'finished'
    assert data['result'] == {'total': 3, 'lines': ['a', 'b']}
    assert data['attempt'] == 1 and data['max_attempts'] == 1
    batch = app.get(f'/immortus/verify?ids={job_id}').json['jobs'][job_id]
    assert batch['result'] == data['result']
    assert ended(app, post(app, 'Returns', 'none'))['result'] is None


@pytest.mark.parametrize(
    'kind, error',
    [
        ('set', 'TypeError: the result of <Returns job'),
        ('big', 'ValueError: the result of <Returns job'),
    ],
)
def test_a_result_that_is_not_json_or_too_large_fails_the_job(app, kind, error, caplog):
    with caplog.at_level(logging.ERROR):
        job_id = post(app, 'Returns', kind)
        data = ended(app, job_id)
    assert data['status'] == 'failed' and data['error'].startswith(error)
    assert 'result' not in data
    assert 'immortus.result_max_bytes' in data['error'] or kind == 'set'
    assert f'Error performing Returns (Job ID: {job_id})' in caplog.text


# -- retries ---------------------------------------------------------------


def states(app, job_id, until):
    """Every distinct answer of a verify until ``until(answer)``."""
    seen = []

    def look():
        data = app.get(f'/immortus/verify/{job_id}').json
        key = (data['status'], data['attempt'], data.get('retry_at'), data.get('last_error'))
        if not seen or seen[-1][0] != key:
            seen.append((key, data))
        return until(data)

    wait_for(look, timeout=15, interval=0.01, message='the states')
    return [data for _, data in seen]


def test_a_retried_job_reads_queued_between_runs_then_finishes(app):
    job_id = post(app, 'Flaky', 2)
    if app.registry.settings['immortus.queue_adapter'] == 'inline':
        seen = [app.get(f'/immortus/verify/{job_id}').json]  # inline ran them all
    else:
        seen = states(app, job_id, lambda d: d['status'] in ENDED)
    final = seen[-1]
    assert final['status'] == 'finished' and final['result'] == {'runs': 3}
    assert final['attempt'] == 3 and final['max_attempts'] == 3
    assert final['last_error'] == 'ValueError: run 2'
    waiting = [d for d in seen if d['status'] == 'queued' and 'retry_at' in d]
    if app.registry.settings['immortus.queue_adapter'] == 'async':
        assert [d['attempt'] for d in waiting] == [2, 3]
        assert waiting[0]['last_error'] == 'ValueError: run 1'
        assert waiting[1]['last_error'] == 'ValueError: run 2'
        assert all(d['retry_at'].endswith('Z') for d in waiting)
        assert not any(d['status'] == 'failed' for d in seen)


def test_a_job_that_keeps_failing_fails_after_its_attempts(app):
    job_id = post(app, 'Flaky', 10)
    data = ended(app, job_id)
    assert data['status'] == 'failed' and data['error'] == 'ValueError: run 3'
    assert data['attempt'] == data['max_attempts'] == 3
    assert app.registry.runs[job_id] == 3


@pytest.mark.parametrize('error, runs', [('TypeError', 1), ('KeyError', 2)])
def test_each_error_follows_its_own_policy(app, error, runs):
    job_id = post(app, 'Flaky', 10, error)
    data = ended(app, job_id)
    assert data['status'] == 'failed' and data['exception']['type'] == error
    assert app.registry.runs[job_id] == runs


def test_retry_on_is_inherited_and_checked():
    class Child(Flaky):
        pass

    assert Child.retry_policies == Flaky.retry_policies
    assert [p.attempts for p in Flaky.retry_policies] == [2, 3]  # top-most first
    for bad in (dict(attempts=0), dict(wait=-1), dict(wait=[]), dict(wait=float('nan'))):
        with pytest.raises((TypeError, ValueError)):
            retry_on(ValueError, **bad)
    with pytest.raises(TypeError):
        retry_on('ValueError')
    assert retry_on(ValueError, wait=(1, 5)).delay(1) == 1
    assert retry_on(ValueError, wait=(1, 5)).delay(7) == 5
    assert retry_on(ValueError, wait=lambda attempt: attempt * 2).delay(3) == 6


# -- scheduling and stopping (async; inline refuses to run a job later) ---


@pytest.fixture(params=['memory', 'redis'])
def async_app(request, make_config, redis_db):
    return make_app(
        make_config,
        **{
            'immortus.queue_adapter': 'async',
            'immortus.tracking_strategy': request.param,
            'immortus.redis_url': REDIS_URL,
        },
    )


def test_a_scheduled_job_waits_queued_then_runs(async_app):
    before = time.time()
    job_id = post(async_app, 'Returns', 'number', wait=0.6)
    data = async_app.get(f'/immortus/verify/{job_id}').json
    assert data['status'] == 'queued' and data['scheduled_at'].endswith('Z')
    due = dt.datetime.fromisoformat(data['scheduled_at'].replace('Z', '+00:00')).timestamp()
    assert 0.5 < due - before < 0.8
    time.sleep(0.3)
    assert async_app.get(f'/immortus/verify/{job_id}').json['status'] == 'queued'
    data = ended(async_app, job_id)
    assert data['status'] == 'finished' and data['result'] == 42
    started = dt.datetime.fromisoformat(data['started_at'].replace('Z', '+00:00')).timestamp()
    assert started >= due - 0.01


def test_a_cancelled_scheduled_job_never_runs(async_app):
    job_id = post(async_app, 'Never', wait=0.5)
    res = async_app.post(f'/immortus/verify/{job_id}/cancel')
    assert res.json == {'job_id': job_id, 'cancelled': True}
    time.sleep(0.8)
    data = async_app.get(f'/immortus/verify/{job_id}').json
    assert data['status'] == 'failed' and data['exception']['type'] == 'Cancelled'
    assert 'never' not in async_app.registry.runs


def test_a_running_job_stops_at_its_next_progress(async_app):
    job_id = post(async_app, 'Steps', 200)
    wait_for(
        lambda: async_app.get(f'/immortus/verify/{job_id}').json['status'] == 'started',
        message='started',
    )
    asked = time.monotonic()
    res = async_app.post(f'/immortus/verify/{job_id}/cancel', status=202)
    assert res.json == {'job_id': job_id, 'stopping': True}
    data = ended(async_app, job_id)
    assert time.monotonic() - asked < 0.05 + 0.05 + 0.5  # a step, an interval, slack
    assert data['status'] == 'failed' and data['exception'] == {
        'type': 'Cancelled',
        'message': 'cancelled on request',
    }
    async_app.post(f'/immortus/verify/{job_id}/cancel', status=409)


def test_inline_refuses_a_job_due_later(make_config):
    app = make_app(make_config, **{'immortus.queue_adapter': 'inline'})
    with pytest.raises(NotImplementedError, match='use "async" or "rq"'):
        Returns.set(wait=5).perform_later(app.registry, 'none')
    assert Returns.set(wait=0).perform_later(app.registry, 'none').job_id


def test_set_checks_its_options():
    with pytest.raises(ValueError):
        Returns.set(wait_until=dt.datetime(2030, 1, 1))  # naive
    with pytest.raises(TypeError):
        Returns.set(wait=1, wait_until=dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc))
    with pytest.raises(ValueError):
        Returns.set(wait=-1)
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    assert abs(Returns.set(wait_until=later).scheduled_at - later.timestamp()) < 1e-3
    assert Returns.set(queue='reports').queue == 'reports'


# -- the same through rq and immortus-worker (with rq's scheduler) ---------


@pytest.mark.parametrize('strategy', ['rq', 'redis'])
def test_rq_retries_schedules_and_results(make_rq_app, redis_db, processes, strategy):
    app, ini = make_rq_app(**{'immortus.tracking_strategy': strategy})
    processes.worker(ini, '--job-monitoring-interval', '1', '--lease-grace', '2')
    flaky = create(app, 'Flaky', 2)['job_id']
    failing = create(app, 'Flaky', 5)['job_id']
    other = create(app, 'Flaky', 5, 'KeyError')['job_id']
    scheduled = app.post_json('/create/Add', {'args': [20, 22], 'wait': 1.5}).json['job_id']
    cancelled = app.post_json('/create/Add', {'args': [0, 0], 'wait': 1.0}).json['job_id']
    assert verify(app, scheduled)['scheduled_at'].endswith('Z')
    assert verify(app, scheduled)['status'] == 'queued'
    assert app.post(f'/immortus/verify/{cancelled}/cancel').json['cancelled'] is True

    seen = []

    def follow():
        data = verify(app, flaky)
        if data['status'] == 'queued' and 'retry_at' in data:
            seen.append((data['attempt'], data['last_error']))
        return data['status'] in ENDED

    wait_for(follow, timeout=30, interval=0.02, message='the flaky job')
    data = verify(app, flaky)
    assert data['status'] == 'finished' and data['result'] == {'runs': 3}
    assert data['attempt'] == 3 and data['max_attempts'] == 3
    assert sorted(set(seen)) == [(2, 'ValueError: run 1'), (3, 'ValueError: run 2')]
    data = wait_for(
        lambda: (lambda d: d if d['status'] in ENDED else None)(verify(app, failing)),
        timeout=30,
        message='the failing job',
    )
    assert data['status'] == 'failed' and data['error'] == 'ValueError: run 3'
    assert data['attempt'] == 3
    data = wait_for(
        lambda: (lambda d: d if d['status'] in ENDED else None)(verify(app, other)),
        timeout=30,
        message='the other error',
    )
    assert data['status'] == 'failed' and data['exception']['type'] == 'KeyError'
    assert data['attempt'] == 1
    data = wait_for(
        lambda: (lambda d: d if d['status'] in ENDED else None)(verify(app, scheduled)),
        timeout=30,
        message='the scheduled job',
    )
    assert data['status'] == 'finished' and data['result'] == 42
    time.sleep(0.5)
    assert verify(app, cancelled)['exception']['type'] == 'Cancelled'
    ran = [j.decode() for j in redis_db.lrange(RAN, 0, -1)]
    assert cancelled not in ran and ran.count(flaky) == 1


# -- found by the second hostile review --------------------------------------


def test_a_retry_wait_that_cannot_be_computed_fails_the_job(app, caplog):
    with caplog.at_level(logging.ERROR):
        job_id = post(app, 'BadWait')
        data = ended(app, job_id)
    assert data['status'] == 'failed' and data['error'] == 'ValueError: first'
    assert 'the retry_on wait of <BadWait job' in caplog.text


@pytest.mark.parametrize(
    'kind, error',
    [
        ('set', 'Object of type set is not JSON serializable'),
        ('keys', 'its dict keys must be strings'),
        ('int', 'an int is too large for a page to read'),
    ],
)
def test_a_bad_result_fails_at_once_whatever_the_retry_policy(app, kind, error):
    job_id = post(app, 'BadResult', kind)
    data = ended(app, job_id)
    assert data['status'] == 'failed' and data['exception']['type'] == 'TypeError'
    assert error in data['error'] and data['attempt'] == 1
    assert app.registry.runs[job_id] == 1


@pytest.mark.parametrize('adapter', ['inline', 'async'])
def test_cancelling_a_job_that_waits_for_its_retry_ends_it(make_config, adapter):
    app = make_app(make_config, **{'immortus.queue_adapter': adapter})
    job_ids = []
    creator = threading.Thread(target=lambda: job_ids.append(post(app, 'SlowRetry')))
    creator.start()  # under inline, the request itself waits for the retry
    job_id = wait_for(
        lambda: (
            next(iter(app.registry.runs), None)
            and app.get(f'/immortus/verify/{next(iter(app.registry.runs))}').json.get('retry_at')
            and next(iter(app.registry.runs))
        ),
        message='the retry wait',
    )
    res = app.post(f'/immortus/verify/{job_id}/cancel')
    assert res.json == {'job_id': job_id, 'cancelled': True}
    creator.join(10)
    time.sleep(2.3)  # past the retry's time
    data = app.get(f'/immortus/verify/{job_id}').json
    assert data['status'] == 'failed' and data['exception']['type'] == 'Cancelled'
    assert app.registry.runs[job_id] == 1


def test_a_retry_asked_for_while_the_process_stops_ends_the_job(make_config, redis_db):
    from pyramid_immortus.adapters.async_ import AsyncAdapter
    from pyramid_immortus.catalog import find_tracking_strategy

    app = make_app(make_config, **{'immortus.queue_adapter': 'inline'})
    adapter = AsyncAdapter(workers=1, lease=1.0, shutdown_grace=1.0)
    job = Flaky(app.registry, arguments=(10,))
    find_tracking_strategy(app.registry).job_created(job.job_id, 'Flaky', None)
    adapter.enqueue(job)
    adapter.shutdown()
    data = app.get(f'/immortus/verify/{job.job_id}').json
    assert data['status'] == 'failed' and data['exception']['type'] in ('Shutdown',)


def test_a_scheduled_jobs_record_lives_until_it_is_due(redis_db):
    from pyramid_immortus.status import isoformat
    from pyramid_immortus.strategies.redis import RedisStrategy

    strategy = RedisStrategy(redis_db, max_age=4)
    strategy.job_created('later', 'Job', None, scheduled_at=isoformat(time.time() + 100))
    assert 100 < redis_db.ttl('immortus:job:later') <= 104
    strategy.job_started('later')
    strategy.job_retrying('later', 2, isoformat(time.time() + 50), 'ValueError: x')
    assert 50 < redis_db.ttl('immortus:job:later') <= 54
