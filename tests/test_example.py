"""The example application, end to end: served by waitress, driven by a
headless Chromium, on development.ini (embedded default) and
production.ini (rq, Redis and a real immortus-worker)."""
import os
import re

import pytest

from tests.conftest import REDIS_URL, ROOT

EXAMPLE = os.path.join(ROOT, 'example')
ARTIFACTS = os.path.join(ROOT, 'artifacts')
FINAL = {'quick': 'finished', 'slow': 'finished', 'failing': 'failed', 'invoice': 'finished'}


def copy_ini(name, tmp_path, **replace):
    text = open(os.path.join(EXAMPLE, name)).read()
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
        processes.worker(ini)
    else:
        ini = copy_ini(name, tmp_path)
    return name, serve(ini)


def test_every_button_runs_its_job_to_the_end(example, chromium):
    name, server = example
    page = chromium.new_page()
    try:
        page.goto(server.url + '/')
        # watch the slow job's progress bar from inside the page
        page.evaluate("""() => {
            window.bars = [];
            const bar = document.querySelector('#slow progress');
            setInterval(() => window.bars.push(bar.value), 50);
        }""")
        for section in FINAL:
            page.click(f'#{section} button')
        for section, state in FINAL.items():
            page.wait_for_selector(f'#{section} .state.{state}', timeout=30000)
        bars = page.evaluate('window.bars')
        assert any(0 < value < 100 for value in bars), bars
        assert bars == sorted(bars) and page.eval_on_selector('#slow progress', 'e => e.value') == 100
        assert page.eval_on_selector('#invoice progress', 'e => e.value') == 100
        assert 'the report could not be generated' in page.inner_text('#failing .detail')
        log = page.inner_text('#log')
        assert log.count('created successfully') == 4
        assert 'is still executing ...' in log
        assert log.count('finished successfully') == 3
        assert 'failed to perform: RuntimeError: the report could not be generated' in log
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
    answer = json.load(urllib.request.urlopen(f"{server.url}/job_custom_verify/{job['job_id']}"))
    assert set(answer) == {'job_id', 'completed', 'failed', 'percentage'}
    assert answer['completed'] is False and answer['percentage'] in (0, 50)
