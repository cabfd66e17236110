"""The example application, end to end: served by waitress, driven by a
headless Chromium, on development.ini (embedded default) and
production.ini (rq, Redis and a real immortus-worker)."""

import os
import re

import pytest

from tests.support import REDIS_URL, ROOT

EXAMPLE = os.path.join(ROOT, 'example')
ARTIFACTS = os.path.join(ROOT, 'artifacts')
#: Round one: every Start button, and the state each job ends in.
FINAL = {
    'quick': 'finished',
    'slow': 'finished',
    'scheduled': 'finished',
    'failing': 'failed',
    'flaky': 'finished',
    'invoice': 'finished',
}


def copy_ini(name, tmp_path, **replace):
    with open(os.path.join(EXAMPLE, name)) as f:
        text = f.read()
    for key, value in replace.items():
        text = re.sub(rf'^{re.escape(key)} = .*$', f'{key} = {value}', text, flags=re.M)
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.fixture(params=['development.ini', 'production.ini'])
def example(request, tmp_path, serve, processes):
    name = request.param
    if name == 'production.ini':
        request.getfixturevalue('redis_db')
        ini = copy_ini(name, tmp_path, **{'immortus.redis_url': REDIS_URL})
        # two workers, so that the slow job does not hold up the others
        processes.worker(ini)
        processes.worker(ini)
    else:
        ini = copy_ini(name, tmp_path)
    return name, serve(ini)


def test_every_button_runs_its_job_to_the_end(example, chromium):
    name, server = example
    page = chromium.new_page()
    try:
        page.goto(server.url + '/')
        # watch the slow job's progress bar, and what the scheduled and the
        # retried job show while they wait, from inside the page
        page.evaluate("""() => {
            window.bars = [];
            window.waiting = {scheduled: [], flaky: []};
            const bar = document.querySelector('#slow progress');
            setInterval(() => {
                window.bars.push(bar.value);
                for (const id of ['scheduled', 'flaky']) {
                    const text = document.querySelector('#' + id + ' .detail').textContent;
                    const seen = window.waiting[id];
                    if (text && seen[seen.length - 1] !== text) { seen.push(text); }
                }
            }, 50);
        }""")
        for section in FINAL:
            page.click(f'#{section} button.start')
        for section, state in FINAL.items():
            page.wait_for_selector(f'#{section} .state.{state}', timeout=30000)
        bars = page.evaluate('window.bars')
        assert any(0 < value < 100 for value in bars), bars
        assert bars == sorted(bars)
        assert page.eval_on_selector('#slow progress', 'e => e.value') == 100
        assert page.eval_on_selector('#invoice progress', 'e => e.value') == 100
        assert 'the report could not be generated' in page.inner_text('#failing .detail')
        # results: what perform returned, once the job finished
        assert (
            page.inner_text('#quick .result')
            == 'result: {"rows":1000,"total":123.45,"currency":"EUR"}'
        )
        assert page.inner_text('#scheduled .result') == 'result: {"rows":4000}'
        # the scheduled job read queued with its due time until it ran
        waiting = page.evaluate('window.waiting')
        assert any(text.startswith('(due at ') for text in waiting['scheduled']), waiting
        # the retried job: seen waiting for its second run, then finished on it
        assert any(
            text.startswith('(attempt 2 of 3 at ')
            and text.endswith(', after ConnectionError: the mail server did not answer)')
            for text in waiting['flaky']
        ), waiting
        assert (
            page.inner_text('#flaky .attempt')
            == 'attempt 2 of 3 (the last failed: ConnectionError: the mail server did not answer)'
        )
        assert page.inner_text('#flaky .result') == 'result: {"sent":true,"attempt":2}'
        log = page.inner_text('#log')
        assert log.count('created successfully') == 6
        assert 'is still executing ...' in log
        assert log.count('finished successfully') == 5
        assert 'failed to perform: RuntimeError: the report could not be generated' in log
        assert log.count('will run again: attempt 2 of 3 at ') == 1

        # round two, the cancels: the slow job once it runs (202, it stops
        # at its next progress; rq kills its work horse), the scheduled job
        # while it waits for its time (200, it never runs)
        page.click('#slow button.start')
        page.click('#scheduled button.start')
        page.wait_for_function(
            "document.querySelector('#slow .state').textContent === 'started'"
            " && document.querySelector('#slow progress').value > 0",
            timeout=30000,
        )
        page.click('#slow button.cancel')
        page.wait_for_selector('#scheduled .state.queued')
        page.wait_for_selector('#scheduled button.cancel:not([disabled])')
        page.click('#scheduled button.cancel')
        for section in ('slow', 'scheduled'):
            page.wait_for_selector(f'#{section} .state.failed', timeout=15000)
            assert page.inner_text(f'#{section} .detail').startswith('(Cancelled'), page.inner_text(
                f'#{section} .detail'
            )
            assert page.inner_text(f'#{section} .result') == ''
        assert 0 < page.eval_on_selector('#slow progress', 'e => e.value') < 100
        assert page.eval_on_selector('#scheduled progress', 'e => e.value') == 0
        log = page.inner_text('#log')
        assert log.count('asked to stop (202): it stops at its next progress') == 1, log
        assert log.count('cancelled before it started (200)') == 1, log
        assert log.count('failed to perform: Cancelled') == 2, log
        os.makedirs(ARTIFACTS, exist_ok=True)
        page.screenshot(path=os.path.join(ARTIFACTS, f'example-{name[:-4]}.png'), full_page=True)
    finally:
        page.close()


def test_the_custom_verify_route_answers_completed_and_percentage(example):
    import json
    import urllib.request

    _, server = example
    request = urllib.request.Request(server.url + '/jobs/invoice', method='POST')
    job = json.load(urllib.request.urlopen(request))
    answer = json.load(urllib.request.urlopen(f'{server.url}/job_custom_verify/{job["job_id"]}'))
    assert set(answer) == {'job_id', 'completed', 'failed', 'percentage'}
    assert answer['completed'] is False and answer['percentage'] in (0, 50)
