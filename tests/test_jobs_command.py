"""``immortus-jobs CONFIG_URI``: the example's .ini files, as text and JSON,
in a process of its own; an application whose configuration fails."""

import io
import json
import os
import re
import subprocess
import sys

from pyramid.config import Configurator

from pyramid_immortus import Job
from pyramid_immortus.scripts.jobs import main
from tests.support import ROOT

EXAMPLE_JOBS = ['FailingJob', 'FlakyJob', 'GenerateInvoiceJob', 'QuickJob', 'SlowJob']


def immortus_jobs(*args):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.run(
        [sys.executable, '-m', 'pyramid_immortus.scripts.jobs', *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def example_ini(tmp_path, name, **replace):
    """A copy of an example .ini (in ``tmp_path``, so that its sqlite file is
    made there) with some settings replaced or added."""
    text = open(os.path.join(ROOT, 'example', name), encoding='utf-8').read()
    for key, value in replace.items():
        line = f'{key} = {value}'
        text, found = re.subn(rf'^{re.escape(key)} = .*$', line, text, flags=re.M)
        if not found:
            text = text.replace('[app:main]\n', f'[app:main]\n{line}\n', 1)
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def rows(text):
    """The job table's rows: ``{name: [cells]}``."""
    lines = text.split('\n\n')[0].splitlines()
    assert re.split(r'\s{2,}', lines[0]) == ['Name', 'Class', 'Strategy', 'From', 'Queue', 'Retry']
    assert set(lines[1].replace(' ', '')) == {'-'}
    return {cells[0]: cells for cells in (re.split(r'\s{2,}', line) for line in lines[2:])}


def test_the_development_ini_as_a_table(tmp_path):
    done = immortus_jobs(example_ini(tmp_path, 'development.ini'))
    assert done.returncode == 0, done.stderr
    table = rows(done.stdout)
    assert sorted(table) == EXAMPLE_JOBS
    assert table['QuickJob'] == [
        'QuickJob',
        'immortus_example.jobs.QuickJob',
        'memory',
        'setting',
        'default',
        '-',
    ]
    assert table['GenerateInvoiceJob'][2:4] == ['sqlite', 'inline']
    assert table['FlakyJob'][5] == 'retry_on(ConnectionError, attempts=3, wait=2)'
    # the columns are aligned: every row's class starts where the header's does
    lines = done.stdout.splitlines()
    column = lines[0].index('Class')
    assert all(
        line[column:].startswith('immortus_example.jobs.')
        for line in lines[2 : 2 + len(EXAMPLE_JOBS)]
    )
    assert 'Queue adapter: async (pyramid_immortus.adapters.async_.AsyncAdapter)' in done.stdout
    assert 'Default strategy: memory (setting)' in done.stdout
    strategies = done.stdout.split('\n\n')[-1]
    assert re.search(
        r'^sqlite +immortus_example\.strategies\.MyCustomTrackingStrategy$', strategies, re.M
    )
    assert re.search(r'^rq +pyramid_immortus\.strategies\.rq\.RQStrategy$', strategies, re.M)


def test_the_example_ini_files_as_json():
    development = immortus_jobs(os.path.join('example', 'development.ini'), '--format', 'json')
    production = immortus_jobs(os.path.join('example', 'production.ini'), '--format=json')
    assert development.returncode == 0 and production.returncode == 0, production.stderr
    data = json.loads(production.stdout)
    assert [job['name'] for job in data['jobs']] == EXAMPLE_JOBS
    assert data['jobs'][3] == {
        'name': 'QuickJob',
        'class': 'immortus_example.jobs.QuickJob',
        'strategy': 'redis',
        'strategy_from': 'setting',
        'queue': 'immortus-example',
        'retry': [],
    }
    assert data['jobs'][2]['strategy'] == 'sqlite' and data['jobs'][2]['strategy_from'] == 'inline'
    assert data['queue_adapter'] == {
        'name': 'rq',
        'class': 'pyramid_immortus.adapters.rq.RQAdapter',
    }
    assert data['default_strategy'] == {'name': 'redis', 'strategy_from': 'setting'}
    assert {
        'name': 'redis_pub_sub',
        'class': 'pyramid_immortus.strategies.redis.RedisStrategy',
    } in data['strategies']
    assert json.loads(development.stdout)['queue_adapter']['name'] == 'async'


def test_an_inferred_strategy_says_so(tmp_path):
    ini = example_ini(tmp_path, 'production.ini', **{'immortus.tracking_strategy': ''})
    done = immortus_jobs(ini, '--format', 'json')
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data['default_strategy'] == {'name': 'rq', 'strategy_from': 'inferred'}
    assert {job['name']: (job['strategy'], job['strategy_from']) for job in data['jobs']} == {
        'FailingJob': ('rq', 'inferred'),
        'FlakyJob': ('rq', 'inferred'),
        'GenerateInvoiceJob': ('sqlite', 'inline'),
        'QuickJob': ('rq', 'inferred'),
        'SlowJob': ('rq', 'inferred'),
    }


def test_a_configuration_that_fails_prints_the_error_and_exits_non_zero(tmp_path):
    ini = example_ini(tmp_path, 'development.ini', **{'immortus.tracking_strategy': 'nowhere'})
    done = immortus_jobs(ini)
    assert done.returncode == 1
    assert done.stdout == ''
    assert 'ConfigurationExecutionError' in done.stderr
    assert (
        "immortus.tracking_strategy: no tracking strategy is registered as 'nowhere'" in done.stderr
    )
    done = immortus_jobs(example_ini(tmp_path, 'production.ini', **{'immortus.rq.queu': 'x'}))
    assert done.returncode == 1 and "Unknown setting 'immortus.rq.queu'" in done.stderr


def test_a_missing_argument_is_a_usage_error():
    done = immortus_jobs()
    assert done.returncode == 2 and 'usage: immortus-jobs' in done.stderr


# -- in this process: retry policies and a job's own queue -----------------


class Policy:
    def __str__(self):
        return 'retry_on(ConnectionError, attempts=3)'


class Retried(Job):
    queue = 'mail'
    retry_policies = (Policy(), Policy())

    def perform(self):
        pass


def retry_app(global_config, **settings):
    with Configurator(settings=settings) as config:
        config.include('pyramid_immortus')
        config.add_immortus_job(Retried)
    return config.make_wsgi_app()


def test_retry_policies_and_a_class_queue(tmp_path):
    ini = tmp_path / 'retry.ini'
    ini.write_text(
        '[app:main]\nuse = call:tests.test_jobs_command:retry_app\n'
        'immortus.queue_adapter = inline\n'
    )
    out = io.StringIO()
    assert main([str(ini)], out=out) == 0
    (row,) = rows(out.getvalue()).values()
    assert row == [
        'Retried',
        'tests.test_jobs_command.Retried',
        'memory',
        'inferred',
        'mail',
        'retry_on(ConnectionError, attempts=3), retry_on(ConnectionError, attempts=3)',
    ]
    out = io.StringIO()
    assert main([str(ini), '--format', 'json'], out=out) == 0
    assert (
        json.loads(out.getvalue())['jobs'][0]['retry']
        == ['retry_on(ConnectionError, attempts=3)'] * 2
    )
