"""The supported versions, tested at both ends (``pip install nox``, part of
the ``testing`` extra):

- ``nox -s tests``: the newest Python with the newest releases of every
  dependency, the whole suite;
- ``nox -s oldest``: the oldest Python with the lowest releases that
  setup.py allows, the tests that are neither slow nor in a browser.

Both need what ``python tests/services.py`` sets up (they run it first).
Arguments after ``--`` go to pytest: ``nox -s oldest -- -x tests/test_rq.py``.
"""

import glob
import os
import re

import nox

nox.options.sessions = ['tests', 'oldest']
nox.options.error_on_missing_interpreters = True

NEWEST_PYTHON = '3.13'
OLDEST_PYTHON = '3.10'

#: The lowest releases of the install_requires of setup.py.  redis is 5.0.1,
#: not 5.0.0: rq 3.0.0 (the lowest, and only, rq 3) requires redis>=5.0.1.
#: zope.interface has no lower bound in setup.py: 5.5.0 is the oldest release
#: with wheels for Python 3.10.  pyramid 2.0 imports pkg_resources, which
#: setuptools 82 removed (pyramid 2.1 asks for setuptools<82 itself).
OLDEST = [
    'pyramid==2.0',
    'rq==3.0.0',
    'redis==5.0.1',
    'venusian==3.0.0',
    'zope.interface==5.5.0',
    'setuptools<82',
]

FAST = 'not slow and not browser'


def interpreter(version):
    """``pythonX.Y`` on PATH, or else the newest pyenv build of that version
    (pyenv's shims answer only for the versions that are selected)."""
    root = os.environ.get('PYENV_ROOT', os.path.expanduser('~/.pyenv'))
    builds = glob.glob(os.path.join(root, 'versions', f'{version}.*', 'bin', f'python{version}'))
    builds = [b for b in builds if re.search(rf'/{re.escape(version)}\.\d+/bin/', b)]
    if not builds:
        return version

    def patch(path):
        return int(path.split(os.sep)[-3].rsplit('.', 1)[1])

    return max(builds, key=patch)


def install(session, *pins):
    # one pip call: the pins and the project's requirements are resolved together
    session.install('-e', '.[testing]', '-e', 'example', *pins)
    session.run('python', 'tests/services.py')


@nox.session(python=interpreter(NEWEST_PYTHON))
def tests(session):
    """The whole suite, newest Python and newest dependencies."""
    install(session)
    session.run('python', '-m', 'pytest', *session.posargs)


@nox.session(python=interpreter(OLDEST_PYTHON))
def oldest(session):
    """The fast tests, oldest Python and the lowest supported dependencies."""
    install(session, *OLDEST)
    session.run(
        'python',
        '-c',
        'import sys, pyramid, redis, rq; '
        'from importlib.metadata import version as v; '
        'print(sys.version.split()[0], "pyramid", v("pyramid"), '
        '"rq", v("rq"), "redis", v("redis"), "venusian", v("venusian"), '
        '"zope.interface", v("zope.interface"))',
    )
    session.run('python', '-m', 'pytest', '-m', FAST, *session.posargs)
