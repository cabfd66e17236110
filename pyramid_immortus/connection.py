"""One Redis connection pool per application, and its errors."""

from contextlib import contextmanager

import redis

from .exceptions import BackendUnavailable
from .interfaces import IRedisConnection
from .settings import get_settings

#: Connection errors that mean "try again later", not "this is a bug".
UNAVAILABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.ReadOnlyError,
)


def connect(url, **options):
    """A ``redis.Redis`` for ``url`` that gives up quickly when Redis is
    down (so that views answer 503 instead of hanging)."""
    options.setdefault('socket_connect_timeout', 2)
    options.setdefault('socket_timeout', 10)
    options.setdefault('health_check_interval', 30)
    return redis.Redis.from_url(url, **options)


def register_redis(registry):
    """Register the client of ``immortus.redis_url`` (it connects only when
    a command is sent, so an application that never uses Redis never
    connects)."""
    client = connect(get_settings(registry).redis_url)
    registry.registerUtility(client, IRedisConnection)


def get_redis(registry):
    """Return the application's ``redis.Redis`` client."""
    return registry.getUtility(IRedisConnection)


@contextmanager
def backend_errors():
    """Turn Redis connection errors into :class:`BackendUnavailable`."""
    try:
        yield
    except UNAVAILABLE as exc:
        raise BackendUnavailable(f'redis: {exc}') from exc
