"""A job's life in ActiveJob's log lines, on the logger ``pyramid_immortus``."""

import logging
import re

import pytest

from tests.lifecycle_app import make_app, post
from tests.support import create, read_log, verify, wait_for

ID = r'[0-9a-f-]{36}'


def lines(caplog):
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == 'pyramid_immortus']


@pytest.mark.parametrize(
    'adapter, place', [('inline', 'Inline(default)'), ('async', 'Async(default)')]
)
def test_enqueued_performing_performed(make_config, caplog, adapter, place):
    app = make_app(make_config, **{'immortus.queue_adapter': adapter})
    with caplog.at_level(logging.INFO, logger='pyramid_immortus'):
        job_id = post(app, 'Returns', 'number')
        wait_for(lambda: any('Performed' in m for _, m in lines(caplog)), message='performed')
    got = lines(caplog)
    assert ('INFO', f'Enqueued Returns (Job ID: {job_id}) to {place}') in got
    assert ('INFO', f'Performing Returns (Job ID: {job_id}) from {place}') in got
    performed = [m for _, m in got if m.startswith('Performed')]
    assert re.fullmatch(
        rf'Performed Returns \(Job ID: {job_id}\) from {re.escape(place)} '
        r'in \d+\.\d\dms',
        performed[0],
    )
    assert 'number' not in ' '.join(m for _, m in got)  # no arguments by default


def test_errors_retries_and_arguments(make_config, caplog):
    app = make_app(
        make_config, **{'immortus.queue_adapter': 'inline', 'immortus.log_arguments': 'true'}
    )
    with caplog.at_level(logging.INFO, logger='pyramid_immortus'):
        job_id = post(app, 'Flaky', 10, 'ValueError' * 20)  # an error outside retry_on
        job_id2 = post(app, 'Flaky', 1)
    got = lines(caplog)
    text = '\n'.join(m for _, m in got)
    assert (
        f'Enqueued Flaky (Job ID: {job_id}) to Inline(default) with arguments: 10, '
        f"'{('ValueError' * 20)[:96]}..." in text
    )
    errors = [r for r in caplog.records if r.name == 'pyramid_immortus' and r.levelname == 'ERROR']
    assert re.match(
        rf'Error performing Flaky \(Job ID: {job_id}\) from Inline\(default\) in '
        r'\d+\.\d\dms: KeyError',
        errors[0].getMessage(),
    )
    assert errors[0].exc_info is not None  # the traceback goes to the log, never to an answer
    assert (
        f'Retrying Flaky (Job ID: {job_id2}) in 0.2 s (attempt 2 of 3), due to '
        'ValueError: run 1' in text
    )


def test_a_cancel_gets_a_line(make_config, caplog):
    app = make_app(make_config, **{'immortus.queue_adapter': 'async'})
    with caplog.at_level(logging.INFO, logger='pyramid_immortus'):
        job_id = post(app, 'Never', wait=5)
        app.post(f'/immortus/verify/{job_id}/cancel')
    assert ('INFO', f'Cancelled Never (Job ID: {job_id}) in Async(default)') in lines(caplog)


def test_the_workers_lines(make_rq_app, redis_db, processes):
    app, ini = make_rq_app(**{'immortus.log_arguments': 'true'})
    job_id = create(app, 'Add', 2, 3)['job_id']
    failing = create(app, 'Fails', 'nope')['job_id']
    worker = processes.worker(ini, '--burst')
    assert worker.wait(60) == 0
    assert verify(app, job_id)['status'] == 'finished'
    log = read_log(worker)
    assert f'Performing Add (Job ID: {job_id}) from RQ(itest) with arguments: 2, 3' in log
    assert re.search(rf'Performed Add \(Job ID: {job_id}\) from RQ\(itest\) in \d+\.\d\dms', log)
    assert re.search(
        rf'Error performing Fails \(Job ID: {failing}\) from RQ\(itest\) in '
        r'\d+\.\d\dms: ValueError: nope\nTraceback',
        log,
    )
    assert 'Traceback' not in str(verify(app, failing))


def test_a_stopped_job_is_a_warning_without_traceback(make_config, caplog):
    app = make_app(make_config, **{'immortus.queue_adapter': 'async'})
    with caplog.at_level(logging.INFO, logger='pyramid_immortus'):
        job_id = post(app, 'Steps', 200)
        wait_for(
            lambda: app.get(f'/immortus/verify/{job_id}').json['status'] == 'started',
            message='started',
        )
        app.post(f'/immortus/verify/{job_id}/cancel', status=202)
        wait_for(lambda: any(m.startswith('Stopped') for _, m in lines(caplog)), message='stop')
    stopped = [r for r in caplog.records if r.getMessage().startswith('Stopped')][0]
    assert stopped.levelname == 'WARNING' and stopped.exc_info is None
    assert re.match(
        rf'Stopped Steps \(Job ID: {job_id}\) from Async\(default\) in '
        r'\d+\.\d\dms: Cancelled: cancelled on request',
        stopped.getMessage(),
    )
    assert ('INFO', f'Stopping Steps (Job ID: {job_id}) in Async(default)') in lines(caplog)
    assert not any(level == 'ERROR' for level, _ in lines(caplog))
