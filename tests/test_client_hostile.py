"""immortus.js in headless Chromium against other origins and hostile pages:
the CSRF token goes only to the page's own origin, and immortus.mjs exports
its own implementation whatever the page's global ``Immortus`` is.

Two ``tests.js_hostile_app.Site`` servers on 127.0.0.1 (two ports, two
origins): ``page`` serves the page, ``other`` is the other origin."""

import pytest

import pyramid_immortus
from tests.js_hostile_app import Site
from tests.js_hostile_app import page as html_page


@pytest.fixture
def sites():
    started = []
    try:
        for _ in range(2):
            started.append(Site().start())
        yield started
    finally:
        for site in started:
            site.stop()


@pytest.fixture
def open_page(chromium):
    tabs = []

    def open_(site, path):
        tab = chromium.new_page()
        tabs.append(tab)
        tab.goto(site.url + path)
        tab.wait_for_selector('#ready')
        return tab

    yield open_
    for tab in tabs:
        tab.close()


def csrf_seen(site):
    """The X-CSRF-Token of each request ``site`` got (None: absent), and
    whether any preflight asked to send one."""
    tokens = [r['headers'].get('x-csrf-token') for r in site.requests if r['method'] != 'OPTIONS']
    asked = [
        r['headers'].get('access-control-request-headers', '')
        for r in site.requests
        if r['method'] == 'OPTIONS'
    ]
    return tokens, any('x-csrf-token' in a.lower() for a in asked)


def test_the_csrf_token_goes_only_to_the_page_origin(sites, open_page):
    page, other = sites
    page.pages['/page'] = html_page(page)
    tab = open_page(page, '/page')
    cross = tab.evaluate(
        """async (other) => [
        await Immortus.create(other + '/create', {data: {x: 1}}),
        await Immortus.create(other + '/create', {csrfToken: 'explicit'}),
        await Immortus.cancel({job_id: 'j1'}, {verifyPath: other + '/v'}),
        await Immortus.cancel({job_id: 'j1'}, {verifyPath: other + '/v', csrfToken: 'explicit'}),
    ]""",
        other.url,
    )
    assert [a['job_id'] for a in cross] == ['j1'] * 4
    assert [r['path'] for r in other.posts()] == [
        '/create',
        '/create',
        '/v/j1/cancel',
        '/v/j1/cancel',
    ]
    assert csrf_seen(other) == ([None] * 4, False)

    same = tab.evaluate(
        """async (self) => [
        await Immortus.create('/create', {data: {x: 1}}),
        await Immortus.create(self + '/create'),
        await Immortus.create('/create', {csrfToken: 'explicit'}),
        await Immortus.cancel({job_id: 'j1'}, {verifyPath: '/v'}),
        await Immortus.cancel({job_id: 'j1'}, {verifyPath: self + '/v', csrfToken: 'explicit'}),
    ].map((answer) => answer.csrf)""",
        page.url,
    )
    assert same == ['page-token', 'page-token', 'explicit', 'page-token', 'explicit']
    assert [r['headers'].get('x-csrf-token') for r in page.posts()] == same


def test_a_base_element_pointing_elsewhere_does_not_get_the_token(sites, open_page):
    page, other = sites
    page.pages['/based'] = html_page(page, head=f'<base href="{other.url}/">')
    tab = open_page(page, '/based')
    tab.evaluate("""async () => {
        await Immortus.create('create', {data: {x: 1}});
        await Immortus.cancel({job_id: 'j1'});
    }""")
    assert [r['path'] for r in other.posts()] == ['/create', '/immortus/verify/j1/cancel']
    assert csrf_seen(other) == ([None, None], False)
    assert page.posts() == []


def test_sending_the_token_cross_origin_is_an_explicit_opt_in(sites, open_page):
    page, other = sites
    page.pages['/page'] = html_page(page)
    tab = open_page(page, '/page')
    answers = tab.evaluate(
        """async (other) => [
        await Immortus.create(other + '/create', {data: {}, csrfCrossOrigin: true}),
        await Immortus.cancel({job_id: 'j1'}, {verifyPath: other + '/v', csrfToken: 'explicit',
                                               csrfCrossOrigin: true}),
    ].map((answer) => answer.csrf)""",
        other.url,
    )
    assert answers == ['page-token', 'explicit']


@pytest.mark.parametrize(
    'hostile', ['<script>window.Immortus = {fake: true};</script>', '<div id="Immortus"></div>']
)
def test_the_es_module_exports_its_own_implementation(sites, open_page, hostile):
    page, _ = sites
    page.pages['/hostile'] = (
        '<!doctype html><html><head><meta charset="utf-8"></head><body>'
        + hostile
        + '<p id="ready">ready</p></body></html>'
    )
    tab = open_page(page, '/hostile')
    result = tab.evaluate(
        """async (self) => {
        const before = window.Immortus;
        const mod = await import(self + '/static/immortus.mjs');
        return {verify: typeof mod.default.verify, create: mod.create === mod.default.create,
                version: mod.default.version, notTheGlobal: mod.default !== window.Immortus,
                globalUntouched: window.Immortus === before};
    }""",
        page.url,
    )
    assert result == {
        'verify': 'function',
        'create': True,
        'version': pyramid_immortus.__version__,
        'notTheGlobal': True,
        'globalUntouched': True,
    }


def test_the_es_module_ignores_another_copy_loaded_by_a_script_tag(sites, open_page):
    page, _ = sites
    page.pages['/page'] = html_page(page)
    tab = open_page(page, '/page')
    result = tab.evaluate(
        """async (self) => {
        window.Immortus.version = 'an older copy';
        const mod = await import(self + '/static/immortus.mjs');
        return {version: mod.default.version, notTheGlobal: mod.default !== window.Immortus,
                verify: typeof mod.default.verify};
    }""",
        page.url,
    )
    assert result == {
        'version': pyramid_immortus.__version__,
        'notTheGlobal': True,
        'verify': 'function',
    }
