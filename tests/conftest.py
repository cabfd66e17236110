"""Fixtures of the test suite, and the markers each test gets.

Helpers (``wait_for``, ``write_ini``, ``Processes``, ``REDIS_URL``...) live
in ``tests/support.py``: import them from there.
"""

import fnmatch
import warnings

import pytest
from pyramid.config import Configurator
from pyramid.paster import get_app
from webtest import TestApp

# The helpers are imported from tests.support; the names test modules used
# to import from here (``from tests.conftest import wait_for``) still work,
# but new code imports them from tests.support.
from tests.support import (  # noqa: F401
    IN_CI,
    REDIS_URL,
    ROOT,
    PrivateRedis,
    Processes,
    descendants,
    empty_test_db,
    free_port,
    mark_test_db,
    rq_settings,
    start_server,
    unavailable,
    wait_for,
    write_ini,
)

# -- markers ------------------------------------------------------------------

#: A test that uses one of these fixtures (directly or through another
#: fixture) gets the marker.  The markers are declared in pyproject.toml.
FIXTURE_MARKERS = {
    'redis': {'redis_db', 'private_redis', 'make_rq_app'},
    'workers': {'processes', 'serve'},
    'browser': {'chromium'},
}

#: Markers that the fixtures cannot tell, by node id (relative to the
#: rootdir): ``path::name`` is the test and all its parametrizations,
#: ``path::name[id]`` one of them, ``path::*[id]`` each test of the module
#: with that id.  ``slow``: 3 s or more on the project's 2-core machine
#: (``python -m pytest --durations=0``; setup, call and teardown together).
NODE_MARKERS = {
    'redis': [
        'tests/test_properties.py::*[rq]',  # its module fixture empties the test db
        'tests/test_example.py::*[production.ini]',  # asks for redis_db at run time
    ],
    'slow': [
        'tests/test_chaos.py::test_chaos_jobs_survive_killed_workers_redis_and_web_restarts',
        'tests/test_events.py::test_a_client_that_stops_reading_costs_bounded_memory_and_delays_nobody',
        'tests/test_events_js.py::test_node_against_the_gateway',
        'tests/test_example.py::test_every_button_runs_its_job_to_the_end',
        'tests/test_hostile.py::test_a_shutdown_is_bounded_even_when_the_store_hangs',
        'tests/test_javascript.py::test_node[aplus.test.js]',
        'tests/test_javascript.py::test_node[client.test.js]',
        'tests/test_javascript.py::test_node[types.test.js]',
        'tests/test_load_faults.py::test_200_pages_polling_for_20_seconds',
        'tests/test_load_faults.py::test_redis_restarted_while_a_page_polls',
        'tests/test_redis_strategy.py::test_progress_extends_the_life_of_a_live_job',
        'tests/test_rq.py::test_killed_worker_host_reports_failed',
        'tests/test_rq.py::test_second_sigint_stops_at_once',
        'tests/test_truth.py::test_cancels_racing_a_worker_never_change_an_end',
    ],
}


def _node_pattern(entry):
    """The fnmatch pattern of a ``NODE_MARKERS`` entry: ``*`` is a wildcard,
    brackets are themselves."""
    return ''.join({'[': '[[]', ']': '[]]'}.get(c, c) for c in entry)


def _matches(nodeid, entry):
    name = nodeid.split('[', 1)[0]
    if '[' not in entry:
        return name == entry
    return fnmatch.fnmatchcase(nodeid, _node_pattern(entry))


def pytest_collection_modifyitems(config, items):
    used = set()
    for item in items:
        names = set(getattr(item, 'fixturenames', ()))
        for marker, fixtures in FIXTURE_MARKERS.items():
            if names & fixtures:
                item.add_marker(marker)
        for marker, entries in NODE_MARKERS.items():
            for entry in entries:
                if _matches(item.nodeid, entry):
                    item.add_marker(marker)
                    used.add(entry)
    # an entry of a module that was collected whole but that names no test in
    # it is out of date (a test renamed): say so
    if any('::' in arg for arg in config.args):
        return
    modules = {item.nodeid.split('::', 1)[0] for item in items}
    for entries in NODE_MARKERS.values():
        for entry in entries:
            if entry not in used and entry.split('::', 1)[0] in modules:
                warnings.warn(
                    pytest.PytestWarning(
                        f'tests/conftest.py: NODE_MARKERS names no collected test: {entry}'
                    ),
                    stacklevel=2,
                )


def pytest_sessionfinish(session):
    # the test database holds what the tests wrote: say it is the suite's
    mark_test_db()


# -- fixtures -----------------------------------------------------------------


@pytest.fixture
def make_config():
    """Build an uncommitted Configurator that includes the add-on."""

    def make(settings=None, include=True):
        config = Configurator(settings=dict(settings or {}))
        if include:
            config.include('pyramid_immortus')
        return config

    return make


@pytest.fixture
def redis_db():
    """A client on the test database (``REDIS_URL``), emptied before each
    test; a database holding keys the suite did not write is refused."""
    client = empty_test_db()
    yield client
    mark_test_db(client)
    client.close()


@pytest.fixture
def processes(tmp_path):
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()


@pytest.fixture
def serve(processes):
    """Serve a .ini's app with waitress on a port from the OS."""

    def start(ini):
        return start_server(processes, ini)

    return start


@pytest.fixture(scope='session')
def chromium(tmp_path_factory):
    """A headless Chromium for the session, stopped by its pid at the end."""
    from tests.browser import Chromium, find_chromium

    if find_chromium() is None:
        unavailable('chromium is not installed')
    try:
        import playwright  # noqa: F401
    except ImportError:
        unavailable('playwright is not installed')
    browser = Chromium(tmp_path_factory.mktemp('chromium-profile')).start()
    yield browser
    browser.stop()


@pytest.fixture
def private_redis(processes, tmp_path):
    """A redis-server of this test's own, on a port from the OS, that keeps
    its data across a restart (append-only file)."""
    server = PrivateRedis(processes, tmp_path)
    try:
        return server.start()
    except FileNotFoundError:
        unavailable('redis-server is not installed')


@pytest.fixture
def make_rq_app(tmp_path):
    """Build the integration app on the rq adapter: ``(TestApp, ini path)``."""

    def make(**settings):
        ini = write_ini(tmp_path / 'app.ini', rq_settings(**settings))
        return TestApp(get_app(ini)), ini

    return make
