"""A status that never lies, with real processes: foreign rq jobs, records
rq fails before ``Job.run``, cancels that race a worker, a web process that
dies or is stopped under ``async``."""

import json
import os
import pickle
import signal
import time
import urllib.request

import pytest
from pyramid.paster import get_app
from rq import Queue
from webtest import TestApp

from tests.browser import read_text
from tests.integration_app import RAN
from tests.support import REDIS_URL, create, descendants, read_log, verify, wait_for, write_ini

ENDED = ('finished', 'failed')
QUEUE = 'itest'


def post(url, data=None):
    request = urllib.request.Request(
        url,
        method='POST',
        data=json.dumps(data or {}).encode(),
        headers={'Content-Type': 'application/json'},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as res:
            return res.status, json.load(res)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as res:
            return res.status, json.load(res)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


# -- 4. foreign rq jobs do not exist for the add-on -----------------------


def test_an_applications_own_rq_jobs_are_unknown(make_rq_app, redis_db):
    app, _ = make_rq_app()
    queue = Queue('itest', connection=redis_db)
    foreign = queue.enqueue('os.getpid', job_id='report-1')
    for url in ('/immortus/verify/report-1', '/immortus/verify/report-1/Add'):
        assert app.get(url, status=404).json['status'] == 'unknown'
    assert app.get('/immortus/verify?ids=report-1').json['jobs']['report-1']['code'] == 404
    app.post('/immortus/verify/report-1/cancel', status=404)
    assert foreign.get_status(refresh=True) == 'queued'
    assert queue.job_ids == ['report-1']


# -- 8. cancel reads what it needs without unpickling ---------------------


def test_cancel_never_unpickles(make_rq_app, redis_db, monkeypatch):
    from rq.serializers import DefaultSerializer

    app, _ = make_rq_app()
    job_id = create(app, 'Add', 1, 2)['job_id']
    redis_db.hset(f'rq:job:{job_id}', 'meta', pickle.dumps({'set by': 'another tool'}))

    unpickled = []
    monkeypatch.setattr(DefaultSerializer, 'loads', staticmethod(unpickled.append))
    assert app.post(f'/immortus/verify/{job_id}/cancel').json == {
        'job_id': job_id,
        'cancelled': True,
    }
    data = verify(app, job_id)
    assert data['status'] == 'failed' and data['exception']['type'] == 'Cancelled'
    assert unpickled == []


# -- 11. failures before Job.run reach the job's strategy -----------------


@pytest.mark.parametrize('strategy', ['rq', 'redis'])
def test_a_job_rq_fails_before_run_reads_failed(make_rq_app, redis_db, processes, strategy):
    app, ini = make_rq_app(**{'immortus.tracking_strategy': strategy})
    job_id = create(app, 'Add', 1, 2)['job_id']
    redis_db.hset(f'rq:job:{job_id}', 'data', b'\x80\x04garbage')
    worker = processes.worker(ini, '--burst')
    assert worker.wait(60) == 0, read_log(worker)
    data = verify(app, job_id)
    assert data['status'] == 'failed', data
    assert data['exception']['type'] not in ('JobFailed', 'WorkerLost'), data
    assert redis_db.lrange(RAN, 0, -1) == []


# -- 13. a cancel never races a worker into a changed end -----------------


@pytest.mark.parametrize('strategy', ['rq', 'redis'])
def test_cancels_racing_a_worker_never_change_an_end(make_rq_app, redis_db, processes, strategy):
    app, ini = make_rq_app(**{'immortus.tracking_strategy': strategy})
    processes.worker(ini, '--job-monitoring-interval', '1', '--lease-grace', '2')
    warm = create(app, 'Add', 0, 0)['job_id']
    wait_for(lambda: verify(app, warm)['status'] == 'finished', timeout=30, message='a worker')
    redis_db.delete(RAN)
    job_ids = [create(app, 'Add', i, i)['job_id'] for i in range(40)]
    answers = {}
    for job_id in job_ids:  # while the worker takes them
        res = app.post(f'/immortus/verify/{job_id}/cancel', expect_errors=True)
        answers[job_id] = (res.status_int, verify(app, job_id)['status'])
        time.sleep(0.01)
    wait_for(
        lambda: all(verify(app, j)['status'] in ENDED for j in job_ids),
        timeout=60,
        message='every job ended',
    )
    time.sleep(1.5)  # anything late would land now
    ran = {j.decode() for j in redis_db.lrange(RAN, 0, -1)}
    codes = {}
    for job_id in job_ids:
        code, seen = answers[job_id]
        codes[code] = codes.get(code, 0) + 1
        data = verify(app, job_id)
        if code == 200:  # cancelled: it never ran and reads so for ever
            assert job_id not in ran
            assert data['status'] == 'failed' and data['exception']['type'] == 'Cancelled'
        elif seen in ENDED:
            assert data['status'] == seen, (job_id, seen, data)
        if data['status'] == 'finished':
            assert job_id in ran
    print('cancel answers:', codes)
    assert set(codes) <= {200, 202, 409}, codes
    assert codes.get(200) and (codes.get(409) or codes.get(202)), codes


# -- 9. and 10. the embedded default's jobs when its process goes ---------


def async_ini(tmp_path, **extra):
    return write_ini(
        tmp_path / 'async.ini',
        {
            'immortus.queue_adapter': 'async',
            'immortus.async_workers': '1',
            'immortus.tracking_strategy': 'redis',
            'immortus.redis_url': REDIS_URL,
            'immortus.async_lease': '1.5',
            'immortus.async_shutdown_grace': '1',
            **extra,
        },
    )


def start_slow_and_waiting(server):
    status, running = post(server.url + '/create/Slow', {'args': [30, 30]})
    assert status == 200
    status, waiting = post(server.url + '/create/Add', {'args': [1, 2]})
    assert status == 200
    wait_for(
        lambda: get(f'{server.url}/immortus/verify/{running["job_id"]}')[1]['status'] == 'started',
        message='started',
    )
    return running['job_id'], waiting['job_id']


def test_jobs_of_a_killed_web_process_read_failed_within_the_lease(
    tmp_path, serve, processes, redis_db
):
    ini = async_ini(tmp_path)
    server = serve(ini)
    running, waiting = start_slow_and_waiting(server)
    processes.kill(server.proc)
    server.proc.wait(5)
    killed_at = time.monotonic()
    other = TestApp(get_app(ini))
    assert verify(other, waiting)['status'] == 'queued'
    for job_id in (running, waiting):
        data = wait_for(
            lambda job_id=job_id: (lambda d: d if d['status'] in ENDED else None)(
                verify(other, job_id)
            ),
            timeout=10,
            message='failed',
        )
        assert data['exception']['type'] == 'WorkerLost'
    assert time.monotonic() - killed_at < 1.5 + 1.0
    assert redis_db.lrange(RAN, 0, -1) == []


@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGINT])
def test_stopping_the_web_process_ends_its_jobs_in_the_grace(tmp_path, serve, redis_db, sig):
    ini = async_ini(tmp_path)
    server = serve(ini)
    running, waiting = start_slow_and_waiting(server)
    stopped_at = time.monotonic()
    os.kill(server.proc.pid, sig)
    server.proc.wait(10)
    assert time.monotonic() - stopped_at < 1 + 2.0  # the grace, not the backlog
    other = TestApp(get_app(ini))
    data = verify(other, waiting)
    assert data['status'] == 'failed' and data['exception'] == {
        'type': 'Shutdown',
        'message': 'the process stopped before the job could run',
    }
    data = verify(other, running)
    assert data['status'] == 'failed' and data['exception'] == {
        'type': 'Shutdown',
        'message': 'the process stopped while the job was running',
    }
    log = read_log(server.proc)
    assert 'had not started when the process stopped' in log
    assert 'was still running 1.0 s after the process began to stop' in log
    assert redis_db.lrange(RAN, 0, -1) == []


def test_a_job_that_ends_within_the_grace_keeps_its_end(tmp_path, serve, redis_db):
    ini = async_ini(tmp_path, **{'immortus.async_shutdown_grace': '5'})
    server = serve(ini)
    status, job = post(server.url + '/create/Slow', {'args': [1.5, 3]})
    wait_for(
        lambda: get(f'{server.url}/immortus/verify/{job["job_id"]}')[1]['status'] == 'started',
        message='started',
    )
    os.kill(server.proc.pid, signal.SIGTERM)
    server.proc.wait(10)
    other = TestApp(get_app(ini))
    assert verify(other, job['job_id'])['status'] == 'finished'


def test_a_class_the_worker_does_not_know_fails_in_the_jobs_own_strategy(
    make_rq_app, redis_db, processes, tmp_path
):
    app, ini = make_rq_app()  # the default strategy is rq; Pinned's own is redis
    job_id = create(app, 'Pinned')['job_id']
    assert app.get(f'/immortus/verify/{job_id}/Pinned').json['status'] == 'queued'
    worker_ini = write_ini(
        tmp_path / 'forgetful.ini',
        {
            'immortus.queue_adapter': 'rq',
            'immortus.redis_url': REDIS_URL,
            'immortus.rq.queue': 'itest',
        },
        app='call:tests.integration_app:forgetful',
    )
    worker = processes.worker(worker_ini, '--burst')
    assert worker.wait(60) == 0, read_log(worker)
    data = app.get(f'/immortus/verify/{job_id}/Pinned').json
    assert data['status'] == 'failed' and data['exception']['type'] == 'JobNotRegistered'
    assert redis_db.lrange(RAN, 0, -1) == []


def test_a_job_waiting_for_its_retry_outlives_a_killed_worker(make_rq_app, redis_db, processes):
    app, ini = make_rq_app()
    options = ('--job-monitoring-interval', '1', '--lease-grace', '2')
    first = processes.worker(ini, *options)
    job_id = create(app, 'Patient')['job_id']
    # killed once its retry is scheduled (a worker killed while it records
    # the retry leaves a job that reads failed, WorkerLost, once its lease ends)
    wait_for(lambda: redis_db.zscore(f'rq:scheduled:{QUEUE}', job_id), message='the retry wait')
    assert verify(app, job_id)['retry_at']
    children = descendants(first.pid)  # rq's scheduler process among them
    os.kill(first.pid, signal.SIGKILL)  # the worker alone: its children must follow it
    first.wait(5)
    wait_for(
        lambda: (
            not any(
                os.path.exists(f'/proc/{pid}') and read_text(f'/proc/{pid}/stat').split()[2] != 'Z'
                for pid in children
            )
        ),
        timeout=5,
        message='its children gone',
    )
    processes.worker(ini, *options)
    data = wait_for(
        lambda: (lambda d: d if d['status'] in ENDED else None)(verify(app, job_id)),
        timeout=30,
        message='the second run',
    )
    assert data['status'] == 'finished' and data['result'] == 2 and data['attempt'] == 2
    assert redis_db.lrange(RAN, 0, -1) == [job_id.encode()]
