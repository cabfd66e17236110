"""The rq adapter, the rq and redis strategies and immortus-worker, against
a real Redis and real worker processes."""

import json
import os
import signal
import time

import pytest

from pyramid_immortus.catalog import get_catalog
from tests.browser import read_text
from tests.integration_app import RAN
from tests.support import OWNED_KEY, create, run_burst, verify, wait_for

QUEUE = 'itest'


@pytest.fixture
def rq_app(redis_db, make_rq_app):
    return make_rq_app()


def test_job_runs_in_a_worker_and_verify_follows_it(rq_app, processes, redis_db):
    app, ini = rq_app
    job = create(app, 'Add', 2, 3)
    assert job['job_class'] == 'Add'
    queued = verify(app, job['job_id'])
    assert queued['status'] == 'queued' and queued['rq_status'] == 'queued'
    assert queued['completed'] is False and queued['enqueued_at'].endswith('Z')
    run_burst(processes, ini)
    done = verify(app, job['job_id'])
    assert done['completed'] is True and done['status'] == 'finished'
    assert done['rq_status'] == 'finished'
    assert done['started_at'] <= done['ended_at']
    assert redis_db.lrange(RAN, 0, -1) == [job['job_id'].encode()]
    # finished jobs are kept for immortus.status_ttl (rq's result_ttl)
    ttl = redis_db.ttl('rq:job:' + job['job_id'])
    assert 86000 < ttl <= 86400


STRATEGIES = ['rq', 'redis']


@pytest.mark.parametrize('strategy', STRATEGIES)
def test_each_state_through_each_redis_strategy(make_rq_app, redis_db, processes, strategy):
    app, ini = make_rq_app(**{'immortus.tracking_strategy': strategy})
    assert verify(app, 'never-enqueued', status=404)['status'] == 'unknown'
    job_id = create(app, 'Add', 1, 2)['job_id']
    queued = verify(app, job_id)
    assert (queued['status'], queued['completed'], queued['failed']) == ('queued', False, False)
    assert queued['enqueued_at'] and queued['started_at'] is None
    run_burst(processes, ini)
    done = verify(app, job_id)
    assert (done['status'], done['completed'], done['failed']) == ('finished', True, False)
    assert done['enqueued_at'] <= done['started_at'] <= done['ended_at']


@pytest.mark.parametrize('strategy', STRATEGIES)
def test_failing_job_reports_failed_with_its_error(make_rq_app, redis_db, processes, strategy):
    app, ini = make_rq_app(**{'immortus.tracking_strategy': strategy})
    job_id = create(app, 'Fails', 'bad input')['job_id']
    run_burst(processes, ini)
    data = verify(app, job_id)
    assert data['status'] == 'failed' and data['failed'] is True
    assert data['completed'] is False and data['ended_at']
    assert data.get('rq_status', 'failed') == 'failed'
    assert data['error'] == 'ValueError: bad input'
    assert data['exception'] == {'type': 'ValueError', 'message': 'bad input'}
    assert 'Traceback' not in str(data)


@pytest.mark.parametrize('strategy', ['rq', 'redis'])
def test_progress_while_running_then_finished(make_rq_app, redis_db, processes, strategy):
    app, ini = make_rq_app(**{'immortus.tracking_strategy': strategy})
    job_id = create(app, 'Slow', 1.5, 10)['job_id']
    processes.worker(ini)
    running = wait_for(
        lambda: (lambda d: d if d['status'] == 'started' and d.get('progress') else None)(
            verify(app, job_id)
        ),
        message='progress',
    )
    assert running['completed'] is False
    assert 0 <= running['progress']['current'] < 10 and running['progress']['total'] == 10
    done = wait_for(lambda: (lambda d: d if d['completed'] else None)(verify(app, job_id)))
    assert done['progress'] == {'current': 10, 'total': 10, 'percent': 100.0, 'message': 'done'}
    assert done['meta'] == {'step': 9}


@pytest.mark.parametrize('strategy', ['rq', 'redis'])
def test_killed_worker_host_reports_failed(make_rq_app, redis_db, processes, strategy):
    app, ini = make_rq_app(**{'immortus.tracking_strategy': strategy})
    job_id = create(app, 'Slow', 60, 60)['job_id']
    worker = processes.worker(ini, '--job-monitoring-interval', '1', '--lease-grace', '2')
    wait_for(lambda: verify(app, job_id)['status'] == 'started', message='start')
    horse = int(wait_for(lambda: redis_db.get('immortus-test:pid:' + job_id)))
    assert horse != worker.pid
    processes.kill(worker)  # SIGKILL the worker and its work horse
    worker.wait(5)
    try:
        os.kill(horse, signal.SIGKILL)
    except ProcessLookupError:
        pass
    wait_for(
        lambda: (
            not os.path.exists(f'/proc/{horse}')
            or read_text(f'/proc/{horse}/stat').split()[2] == 'Z'
        ),
        message='horse gone',
    )
    data = wait_for(
        lambda: (lambda d: d if d['status'] != 'started' else None)(verify(app, job_id)),
        timeout=10,
        message='failed',
    )
    assert data['status'] == 'failed' and data['failed'] is True
    assert data['exception']['type'] == 'WorkerLost'


def test_a_job_cancelled_in_rq_reads_failed(rq_app, redis_db):
    from rq.job import Job as RQJob

    app, _ = rq_app
    job_id = create(app, 'Add', 1, 2)['job_id']
    RQJob.fetch(job_id, connection=redis_db).cancel()
    data = verify(app, job_id)
    assert data['status'] == 'failed' and data['rq_status'] == 'canceled'
    assert data['exception']['type'] == 'Cancelled'
    assert data['completed'] is False


@pytest.mark.parametrize('strategy, key', [('rq', 'rq:job:'), ('redis', 'immortus:job:')])
def test_records_expire_after_status_ttl(make_rq_app, redis_db, processes, strategy, key):
    app, ini = make_rq_app(**{'immortus.tracking_strategy': strategy, 'immortus.status_ttl': '2'})
    job_id = create(app, 'Add', 1, 2)['job_id']
    run_burst(processes, ini)
    assert verify(app, job_id)['completed'] is True
    assert 0 < redis_db.ttl(key + job_id) <= 2
    wait_for(
        lambda: (
            verify(app, job_id, status='*')['status'] == 'unknown'
            if 'status' in verify(app, job_id, status='*')
            else False
        ),
        timeout=5,
        message='expiry',
    )
    assert verify(app, job_id, status=404)['error'] == 'unknown job'


def test_unknown_job_is_404(rq_app):
    app, _ = rq_app
    assert verify(app, 'no-such-job', status=404) == {
        'job_id': 'no-such-job',
        'status': 'unknown',
        'error': 'unknown job',
    }


def test_arguments_rq_cannot_carry_fail_at_perform_later(rq_app, redis_db):
    app, _ = rq_app
    registry = app.app.registry
    add = get_catalog(registry).get('Add')
    with pytest.raises(TypeError, match='cannot be sent to rq'):
        add.perform_later(registry, lambda: 1, 2)
    assert redis_db.keys('*') == [OWNED_KEY.encode()]


def test_two_workers_share_a_queue_and_run_each_job_once(rq_app, processes, redis_db):
    app, ini = rq_app
    ids = {create(app, 'Add', i, i)['job_id'] for i in range(30)}
    workers = [processes.worker(ini, '--burst', '--name', f'w{n}') for n in range(2)]
    for worker in workers:
        assert worker.wait(60) == 0
    ran = [x.decode() for x in redis_db.lrange(RAN, 0, -1)]
    assert sorted(ran) == sorted(ids)
    assert all(verify(app, job_id)['completed'] for job_id in ids)


def test_sigterm_lets_the_current_job_finish(rq_app, processes, redis_db):
    app, ini = rq_app
    job_id = create(app, 'Slow', 2, 4)['job_id']
    worker = processes.worker(ini)
    wait_for(lambda: verify(app, job_id)['status'] == 'started', message='start')
    os.kill(worker.pid, signal.SIGTERM)
    assert worker.wait(30) == 0
    assert verify(app, job_id)['status'] == 'finished'


def test_second_sigint_stops_at_once(rq_app, processes, redis_db):
    app, ini = rq_app
    job_id = create(app, 'Slow', 30, 30)['job_id']
    worker = processes.worker(ini, '--job-monitoring-interval', '1', '--lease-grace', '1')
    wait_for(lambda: verify(app, job_id)['status'] == 'started', message='start')
    os.kill(worker.pid, signal.SIGINT)
    time.sleep(1.5)  # rq ignores a second signal within 1 s of the first
    os.kill(worker.pid, signal.SIGINT)
    worker.wait(10)
    # the job did not run to its end, and does not read "started" for ever
    data = wait_for(
        lambda: (lambda d: d if d['status'] == 'failed' else None)(verify(app, job_id)),
        timeout=10,
        message='failed',
    )
    assert data['completed'] is False


def commandstats(client):
    return {
        name.split('_', 1)[1] if name.startswith('cmdstat_') else name: v['calls']
        for name, v in client.info('commandstats').items()
    }


@pytest.mark.parametrize('strategy, command', [('rq', 'hmget'), ('redis', 'hgetall')])
def test_a_verify_is_one_redis_command(make_rq_app, redis_db, strategy, command):
    app, _ = make_rq_app(**{'immortus.tracking_strategy': strategy})
    job_id = create(app, 'Add', 1, 1)['job_id']
    verify(app, job_id)  # the pool has its connection now
    before = commandstats(redis_db)
    for _ in range(10):
        verify(app, job_id)
    after = commandstats(redis_db)
    delta = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    delta.pop('info', None)
    assert delta == {command: 10}


def test_redis_strategy_publishes_each_change(make_rq_app, redis_db, processes):
    app, ini = make_rq_app(**{'immortus.tracking_strategy': 'redis_pub_sub'})
    pubsub = redis_db.pubsub()
    pubsub.psubscribe('immortus:job:*')
    job_id = create(app, 'Add', 1, 2)['job_id']
    run_burst(processes, ini)
    statuses = []
    while (message := pubsub.get_message(timeout=1)) is not None:
        # the channels are shared by every database and every test run
        if (
            message['type'] == 'pmessage'
            and message['channel'] == f'immortus:job:{job_id}'.encode()
        ):
            statuses.append(json.loads(message['data'])['status'])
    assert [s for s in statuses if s] == ['queued', 'started', 'finished']
    assert 0 < redis_db.ttl(f'immortus:job:{job_id}') <= 86400


def test_redis_down_is_503_and_recovers(make_rq_app, private_redis, processes):
    app, ini = make_rq_app(url=private_redis.url)
    job_id = create(app, 'Add', 1, 2)['job_id']
    assert verify(app, job_id)['status'] == 'queued'
    private_redis.stop()
    assert create(app, 'Add', 3, 4, status=503)['error'].startswith('backend unavailable')
    assert verify(app, job_id, status=503) == {'job_id': job_id, 'error': 'backend unavailable'}
    private_redis.start()
    assert verify(app, job_id)['status'] == 'queued'
    # the job created while Redis was down was not half-enqueued
    assert private_redis.client.llen(f'rq:queue:{QUEUE}') == 1
    assert len(private_redis.client.keys('rq:job:*')) == 1
    run_burst(processes, ini)
    assert verify(app, job_id)['completed'] is True
