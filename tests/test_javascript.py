"""Run the node tests of immortus.js (its logic and the Promises/A+ suite)."""

import os
import shutil
import subprocess

import pytest

from tests.services import missing_npm_packages
from tests.support import ROOT, unavailable

JS_TESTS = os.path.join(ROOT, 'tests', 'js')


@pytest.fixture(scope='module')
def node():
    path = shutil.which('node')
    if path is None:
        unavailable('node is not installed')
    if missing_npm_packages():
        unavailable('run "npm ci" in tests/js (python tests/services.py does)')
    return path


@pytest.mark.parametrize(
    'test_file', ['client.test.js', 'esm.test.js', 'aplus.test.js', 'types.test.js']
)
def test_node(node, test_file):
    result = subprocess.run(
        [node, '--test', test_file], cwd=JS_TESTS, capture_output=True, text=True, timeout=300
    )
    summary = [line for line in result.stdout.splitlines() if line.startswith('# ')]
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert '# fail 0' in summary and not any(s == '# pass 0' for s in summary), summary


def test_the_client_carries_the_package_version(node):
    import pyramid_immortus

    script = os.path.join(ROOT, 'pyramid_immortus', 'static', 'immortus.js')
    result = subprocess.run(
        [node, '-e', f'console.log(require({script!r}).version)'],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == pyramid_immortus.__version__
