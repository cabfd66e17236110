"""The README's code is the code that runs."""

import os
import re
import sys
import time

from webtest import TestApp

from tests.support import ROOT


def readme():
    with open(os.path.join(ROOT, 'README.md'), encoding='utf-8') as f:
        return f.read()


def section(text, title):
    start = text.index(f'\n## {title}\n')
    end = text.find('\n## ', start + 1)
    return text[start : end if end > 0 else None]


def test_the_quick_start_commands_are_what_ci_runs():
    block = re.search(r'```\n(.*?)```', section(readme(), 'Quick start'), re.S).group(1)
    commands = [line for line in block.splitlines() if line.strip()]
    assert len(commands) == 2
    assert 'pserve example/development.ini' in commands[0]
    with open(os.path.join(ROOT, '.ci', 'run')) as f:
        assert commands[1] in f.read()


def test_your_first_job_runs_as_written(tmp_path, monkeypatch):
    code = re.search(r'```python\n(.*?)```', section(readme(), 'Your first job'), re.S).group(1)
    assert len([line for line in code.splitlines() if line.strip()]) <= 20
    (tmp_path / 'readme_quickstart.py').write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    import readme_quickstart

    try:
        app = TestApp(readme_quickstart.main({}))
        job = app.post_json('/invoices', {'order_id': 42}).json
        assert job['job_class'] == 'GenerateInvoice'
        deadline = time.monotonic() + 10
        while not (data := app.get(f'/immortus/verify/{job["job_id"]}').json)['completed']:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert data['progress'] == {
            'current': 10,
            'total': 10,
            'percent': 100.0,
            'message': 'line 10 of order 42',
        }
    finally:
        sys.modules.pop('readme_quickstart', None)


def test_the_page_snippet_uses_the_client_api():
    html = re.search(r'```html\n(.*?)```', section(readme(), 'Your first job'), re.S).group(1)
    assert "request.static_url('pyramid_immortus:static/immortus.js')" in html
    with open(os.path.join(ROOT, 'pyramid_immortus', 'static', 'immortus.js')) as f:
        client = f.read()
    for call in re.findall(r'Immortus\.(\w+)\(', html):
        assert f'    {call}: {call},' in client
