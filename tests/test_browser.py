"""immortus.js in a real headless Chromium, against a real Pyramid app
served by waitress on loopback (the embedded default: no Redis)."""

import pytest

from tests.support import write_ini


@pytest.fixture
def page(tmp_path, serve, chromium):
    ini = write_ini(
        tmp_path / 'browser.ini',
        {
            'immortus.queue_adapter': 'async',
            'immortus.async_workers': '1',
            'immortus.progress_interval': '0',
        },
    )
    server = serve(ini)
    tab = chromium.new_page()
    tab.goto(server.url + '/page')
    tab.wait_for_selector('#ready')
    yield tab
    tab.close()


def run(page, script, count_until):
    page.evaluate(script)
    page.wait_for_function(count_until, timeout=20000)
    return page.evaluate('window.events')


def test_progress_then_completion(page):
    events = run(
        page,
        "track('Steps', [1.0, 5])",
        "window.events.some(e => e[0] === 'finished' || e[0] === 'failed')",
    )
    kinds = [kind for kind, _ in events]
    assert kinds[0] == 'created' and kinds[-1] == 'finished'
    progress = [data for kind, data in events if kind == 'progress']
    assert len(progress) >= 2
    currents = [p['progress']['current'] for p in progress if 'progress' in p]
    assert currents == sorted(currents) and currents[-1] >= 2
    finished = events[-1][1]
    assert finished['completed'] is True and finished['status'] == 'finished'
    assert finished['progress']['percent'] == 100.0
    assert finished['job_id'] == events[0][1]['job_id']


def test_progress_then_failure_reaches_the_reject_path(page):
    events = run(
        page,
        "track('Steps', [0.6, 3, 'disk full'])",
        "window.events.some(e => e[0] === 'finished' || e[0] === 'failed')",
    )
    assert [k for k, _ in events if k != 'progress'] == ['created', 'failed']
    assert any(k == 'progress' for k, _ in events)
    failure = events[-1][1]
    assert failure['failed'] is True and failure['status'] == 'failed'
    assert failure['error'] == 'RuntimeError: disk full'
    assert failure['exception'] == {'type': 'RuntimeError', 'message': 'disk full'}
    assert failure['progress']['current'] == 3


def test_an_error_status_is_reported_through_reject(page):
    result = page.evaluate("""() => Immortus.verify({job_id: 'never-seen'})
        .then(() => 'resolved', (e) => ({rejected: e, state: Immortus.status(e)}))""")
    assert result == {
        'rejected': {'job_id': 'never-seen', 'status': 'unknown', 'error': 'unknown job'},
        'state': 'unknown',
    }
    result = page.evaluate("""() => Immortus.verify({job_id: 'bad id!'})
        .then(() => 'resolved', (e) => e)""")
    assert result['error'] == 'malformed job id'


def test_create_sends_the_csrf_token_of_the_page(page):
    echoed = page.evaluate("() => Immortus.create('/echo', {data: {x: 1}})")
    assert echoed == {'csrf': 'page-token', 'content_type': 'application/json', 'body': '{"x":1}'}
    echoed = page.evaluate("() => Immortus.create('/echo', {csrfToken: 'explicit'})")
    assert echoed['csrf'] == 'explicit'


def test_the_es_module_loads_in_the_browser(page):
    assert (
        page.evaluate("""async () => {
        const mod = await import('/immortus-static/immortus.mjs');
        return typeof mod.default.verify === 'function' && mod.create === mod.default.create;
    }""")
        is True
    )


def test_verify_all_follows_many_jobs_with_one_poll(page):
    result = page.evaluate("""async () => {
        const jobs = [];
        for (let i = 0; i < 3; i++) {
            jobs.push(await Immortus.create('/create/Steps', {data: {args: [0.2, 2]}}));
        }
        const updates = [];
        const all = await Immortus.verifyAll(jobs, {polling: {interval: 100}})
            .progress((entry) => updates.push(entry.job_id));
        return {ids: jobs.map((j) => j.job_id), all, updates};
    }""")
    assert sorted(result['all']['jobs']) == sorted(result['ids'])
    assert all(
        entry['completed'] and entry['code'] == 200 for entry in result['all']['jobs'].values()
    )
    assert set(result['updates']) <= set(result['ids'])


def test_cancel_a_queued_job_from_the_page(page):
    result = page.evaluate("""async () => {
        const running = await Immortus.create('/create/Steps', {data: {args: [1.0, 2]}});
        const queued = await Immortus.create('/create/Steps', {data: {args: [0.1, 1]}});
        const cancelled = await Immortus.cancel(queued);
        const seen = await Immortus.verify(queued).then(() => 'finished', (e) => e);
        const first = await Immortus.verify(running, {polling: {interval: 100}});
        return {cancelled, seen, first: first.status};
    }""")
    assert result['cancelled']['cancelled'] is True
    assert result['seen']['status'] == 'failed'
    assert result['seen']['exception']['type'] == 'Cancelled'
    assert result['first'] == 'finished'
