"""The ``immortus.*`` settings: one prefix, one table, one parser."""

import math
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from pyramid.exceptions import ConfigurationError

SETTINGS_PREFIX = 'immortus.'

_TRUE = frozenset(('true', 'yes', 'on', '1', 't', 'y'))
_FALSE = frozenset(('false', 'no', 'off', '0', 'f', 'n', ''))
_PATH = re.compile(r'^(/[A-Za-z0-9._~-]+)+$')


def as_strict_bool(value):
    """Like :func:`pyramid.settings.asbool`, but junk is an error, not False."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError('expected true or false')


#: Ten years: the longest time any setting may name (Redis, rq's alarms
#: and thread waits all refuse much longer ones).
LONGEST = 10 * 365 * 86400


def number(kind, minimum, maximum=LONGEST):
    """A converter to ``kind`` between ``minimum`` and ``maximum``."""

    def convert(value):
        try:
            result = kind(value)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f'expected a number, not {value!r}') from None
        if not math.isfinite(result):
            raise ValueError('expected a finite number')
        if not minimum <= result <= maximum:
            raise ValueError(f'expected a number from {minimum} to {maximum}')
        return result

    convert.__name__ = f'{kind.__name__}_from_{minimum}_to_{maximum}'
    return convert


positive_int = number(int, 1)
non_negative_float = number(float, 0)
positive_float = number(float, 0.001)


def optional(convert):
    """Let an empty value mean "unset" (``None``) before ``convert`` runs."""

    def maybe(value):
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        return convert(value)

    return maybe


def as_name(value):
    """A non-empty string: a registered name or a dotted Python path."""
    if not isinstance(value, str):
        return value  # an object given directly from Python code
    text = value.strip()
    if not text:
        raise ValueError('expected a name or a dotted path')
    return text


def as_url_path(value):
    """A URL path such as ``/immortus/verify`` (leading slash, no trailing)."""
    text = str(value).strip()
    if not _PATH.match(text):
        raise ValueError('expected a path like /immortus/verify')
    return text


def as_redis_url(value):
    """A ``redis://``, ``rediss://`` or ``unix://`` URL."""
    text = str(value).strip()
    parsed = urlparse(text)
    if parsed.scheme not in ('redis', 'rediss', 'unix'):
        raise ValueError('expected a redis://, rediss:// or unix:// URL')
    if parsed.scheme != 'unix' and not parsed.hostname:
        raise ValueError('the URL names no host')
    try:
        parsed.port  # noqa: B018 -- raises for a port that is not a number
    except ValueError:
        raise ValueError('the URL has a bad port') from None
    return text


def as_queue_name(value):
    """An rq queue name."""
    text = as_name(value)
    if not re.match(r'^[A-Za-z0-9_.:-]+$', text):
        raise ValueError('expected letters, digits, "_", ".", ":" or "-"')
    return text


def as_origins(value):
    """Origins such as ``http://localhost:3000``, separated by spaces,
    commas or lines (``scheme://host[:port]``, nothing after it)."""
    if isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = re.split(r'[\s,]+', str(value).strip())
    origins = []
    for item in items:
        if not item:
            continue
        parsed = urlparse(item)
        try:
            parsed.port  # noqa: B018 -- raises for a port that is not a number
        except ValueError:
            raise ValueError(f'{item!r} has a bad port') from None
        if (
            parsed.scheme not in ('http', 'https')
            or not parsed.hostname
            or parsed.path
            or parsed.query
            or parsed.fragment
            or parsed.username
        ):
            raise ValueError(f'{item!r} is not an origin like https://app.example:8443')
        origins.append(item.rstrip('/'))
    return tuple(origins)


def without_password(url):
    """``url`` with its passwords masked: the userinfo's and a
    ``password=`` query argument (redis-py reads both)."""
    parsed = urlparse(url)
    query = re.sub(r'(?i)(^|&)(password=)[^&]*', r'\1\2***', parsed.query)
    if parsed.password is None and query == parsed.query:
        return url
    if parsed.password is not None:
        userinfo, _, host = parsed.netloc.rpartition('@')
        parsed = parsed._replace(netloc=f'{userinfo.partition(":")[0]}:***@{host}')
    return parsed._replace(query=query).geturl()


def shown(key, raw):
    """What an error message may show of the value of ``key``."""
    if key == SETTINGS_PREFIX + 'redis_url' and isinstance(raw, str):
        try:
            return without_password(raw)
        except ValueError:
            return '<a URL that does not parse>'
    return raw


#: ``(name, converter, default)``: every setting this add-on reads.
SETTINGS = (
    ('queue_adapter', as_name, 'async'),
    ('tracking_strategy', optional(as_name), None),
    ('verify_path', as_url_path, '/immortus/verify'),
    ('async_workers', number(int, 1, 1000), 4),
    ('async_lease', number(float, 0.1, 86400), 30.0),
    ('async_shutdown_grace', number(float, 0, 3600), 10.0),
    ('status_ttl', positive_int, 86400),
    ('status_max_age', positive_int, 7 * 86400),
    ('memory_max_jobs', number(int, 1, 10_000_000), 10000),
    ('progress_interval', number(float, 0, 3600), 0.2),
    ('redis_url', as_redis_url, 'redis://localhost:6379/0'),
    ('rq.queue', as_queue_name, 'default'),
    ('rq.job_timeout', optional(positive_int), None),
    ('rq.result_ttl', optional(positive_int), None),
    ('rq.failure_ttl', optional(positive_int), None),
    ('verify_owner_only', as_strict_bool, False),
    ('verify_permission', optional(as_name), None),
    ('cancel_require_csrf', as_strict_bool, True),
    ('enqueue_after_commit', as_strict_bool, True),
    ('batch_max', number(int, 1, 10_000), 100),
    ('log_arguments', as_strict_bool, False),
    ('result_max_bytes', number(int, 0, 64 * 1024 * 1024), 65536),
    # the events gateway (pyramid_immortus.events)
    ('events_path', as_url_path, '/immortus/events'),
    ('events.allow_origins', as_origins, ()),
    ('events.keepalive', number(float, 0.001, 3600), 15.0),
)


#: ``{name: (converter, default)}`` of :data:`SETTINGS`.
CONVERTERS = {name: (convert, default) for name, convert, default in SETTINGS}


@dataclass(frozen=True)
class ImmortusSettings:
    """The parsed ``immortus.*`` settings of an application (``rq.queue``
    is ``rq_queue``); :func:`get_settings` returns them."""

    queue_adapter: Any
    tracking_strategy: Any
    verify_path: str
    async_workers: int
    async_lease: float
    async_shutdown_grace: float
    status_ttl: int
    status_max_age: int
    memory_max_jobs: int
    progress_interval: float
    redis_url: str
    rq_queue: str
    rq_job_timeout: int | None
    rq_result_ttl: int | None
    rq_failure_ttl: int | None
    verify_owner_only: bool
    verify_permission: str | None
    cancel_require_csrf: bool
    enqueue_after_commit: bool
    batch_max: int
    log_arguments: bool
    result_max_bytes: int
    events_path: str = '/immortus/events'
    events_allow_origins: tuple = ()
    events_keepalive: float = 15.0

    @property
    def result_ttl(self) -> int:
        """rq's ``result_ttl``: ``rq.result_ttl``, else ``status_ttl``."""
        return self.status_ttl if self.rq_result_ttl is None else self.rq_result_ttl


def parse_setting(settings, name):
    """Parse one ``immortus.<name>`` setting of ``settings`` (a mapping of
    raw values), or raise :class:`ConfigurationError` naming it."""
    convert, default = CONVERTERS[name]
    key = SETTINGS_PREFIX + name
    raw = settings.get(key, default)
    try:
        return default if raw is None else convert(raw)
    except ValueError as exc:
        raise ConfigurationError(
            f'Invalid value {shown(key, raw)!r} for setting {key!r}: {exc}'
        ) from None


def parse_settings(settings):
    """Parse every ``immortus.*`` setting of ``settings``, defaults filled
    in, into an :class:`ImmortusSettings`.

    A value that does not convert raises
    :class:`pyramid.exceptions.ConfigurationError` naming the setting; so
    does an ``immortus.*`` key this add-on does not know (a typo would
    otherwise be ignored silently).
    """
    known = {SETTINGS_PREFIX + name for name, _, _ in SETTINGS}
    unknown = sorted(
        key for key in settings if key.startswith(SETTINGS_PREFIX) and key not in known
    )
    if unknown:
        raise ConfigurationError(
            f'Unknown setting {unknown[0]!r}; the immortus.* settings are: '
            + ', '.join(sorted(known))
        )
    return ImmortusSettings(
        **{name.replace('.', '_'): parse_setting(settings, name) for name, _, _ in SETTINGS}
    )


def get_settings(request_or_registry) -> ImmortusSettings:
    """The parsed ``immortus.*`` settings of the application of a request
    or registry (available once the configuration is committed)."""
    from .interfaces import IImmortusSettings

    registry = getattr(request_or_registry, 'registry', request_or_registry)
    return registry.getUtility(IImmortusSettings)
