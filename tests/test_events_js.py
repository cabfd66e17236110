"""The JavaScript client over the real events gateway: node
(tests/js/events.test.js) and headless Chromium."""

import os
import shutil
import subprocess

import pytest

from tests.services import missing_npm_packages
from tests.support import REDIS_URL, ROOT, start_gateway, unavailable, write_ini

JS_TESTS = os.path.join(ROOT, 'tests', 'js')


def app_settings(**extra):
    """The integration app with jobs on threads of the web process, tracked
    in Redis (so that the gateway, another process, sees them)."""
    return {
        'immortus.queue_adapter': 'async',
        'immortus.tracking_strategy': 'redis',
        'immortus.redis_url': REDIS_URL,
        'immortus.progress_interval': '0',
        'immortus.async_workers': '4',
        **extra,
    }


@pytest.fixture
def servers(tmp_path, serve, processes, redis_db):
    web = serve(write_ini(tmp_path / 'web.ini', app_settings()))
    ini = write_ini(
        tmp_path / 'events.ini', app_settings(**{'immortus.events.allow_origins': web.url})
    )
    _, events = start_gateway(processes, ini)
    return web.url, events


def test_node_against_the_gateway(servers):
    node = shutil.which('node')
    if node is None:
        unavailable('node is not installed')
    if missing_npm_packages():
        unavailable('run "npm ci" in tests/js (python tests/services.py does)')
    web, events = servers
    env = dict(os.environ, IMMORTUS_WEB_URL=web, IMMORTUS_EVENTS_URL=events + '/immortus/events')
    result = subprocess.run(
        [node, '--test', 'events.test.js'],
        cwd=JS_TESTS,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    summary = [line for line in result.stdout.splitlines() if line.startswith('# ')]
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert '# fail 0' in summary and '# pass 0' not in summary, summary


def test_chromium_follows_over_a_gateway_on_another_origin(servers, chromium):
    web, events = servers
    tab = chromium.new_page()
    try:
        tab.goto(web + '/page')
        tab.wait_for_selector('#ready')
        result = tab.evaluate(
            """async (events) => {
            const opened = [];
            const Native = window.EventSource;
            window.EventSource = function (url, init) {
                const source = new Native(url, init);
                opened.push({url, withCredentials: source.withCredentials});
                return source;
            };
            const job = await Immortus.create('/create/Steps', {data: {args: [0.6, 3]}});
            const progress = [];
            const done = await Immortus.verify(job, {eventsUrl: events + '/immortus/events',
                                                     verifyPath: '/nowhere'})
                .progress((p) => progress.push(p.status));
            const jobs = [await Immortus.create('/create/Steps', {data: {args: [0.3, 2]}}),
                          await Immortus.create('/create/Steps', {data: {args: [0.1, 1, 'no']}})];
            const all = await Immortus.verifyAll(jobs, {eventsUrl: events + '/immortus/events',
                                                        verifyPath: '/nowhere'})
                .then(() => 'resolved', (e) => e);
            const settled = await Promise.all(jobs.map((j) => Immortus.verify(j)
                .then((d) => d.status, (e) => e.status)));
            // a gateway that does not let this origin read: the client polls
            const other = await Immortus.create('/create/Steps', {data: {args: [0.2, 2]}});
            const polled = await Immortus.verify(other, {
                eventsUrl: events.replace('127.0.0.1', 'localhost') + '/immortus/events',
                polling: {interval: 100}});
            return {done, progress, opened, all, settled, polled: polled.status};
        }""",
            events,
        )
    finally:
        tab.close()
    assert result['done']['status'] == 'finished' and result['done']['completed'] is True
    assert result['progress'] and set(result['progress']) <= {'queued', 'started'}
    assert len(result['opened']) == 3  # verify, verifyAll (one for both jobs), the refused one
    assert result['opened'][0]['withCredentials'] is True
    assert 'ids=' in result['opened'][1]['url'] and '%2C' not in result['opened'][1]['url']
    assert result['settled'] == ['finished', 'failed'], result
    assert result['polled'] == 'finished'
