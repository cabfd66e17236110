"""How the gateway reads a changed job: the batch verify's entry of it.

Each entry is what the batch verify answers for the job (``judge`` of its
record, plus ``code``), without the owner check, which each stream's own
batch verify made when it opened.  Two ways to the same record:

- in the event loop, for a strategy whose records are in the gateway's
  Redis (``redis_read``, ``key``, ``decode``: the built-in ``redis`` and
  ``rq``): one script (:data:`READ`) makes the reads of all the changed
  jobs and answers them as one JSON text, which costs the event loop one
  ``json.loads`` instead of parsing every field of every record; the raw
  records are decoded with ``settle=None``;
- in a thread, through the strategy itself (``read_records``, as the batch
  verify reads), for any other strategy, for a record the event loop may
  not decode (one to settle: its lease ran out), and when the event loop's
  read failed (the thread's read then tells it as the batch verify does).
"""

import json

from pyramid.threadlocal import manager
from redis.asyncio.connection import parse_url

from ..catalog import find_tracking_strategy
from ..exceptions import UnknownJob
from ..views import judge, read_records

#: What must match for two Redis clients to read the same database.
SAME_REDIS = ('host', 'port', 'path', 'db', 'username', 'password')

#: The reads of many records.  KEYS: the records.  ARGV: the command of one
#: read, then its arguments after the key (a strategy's ``redis_read``).
#: Answers a JSON array of the replies: an object for an ``HGETALL``, an
#: array (``false`` for a missing field) for any other command.
READ = """
local out = {}
for i, key in ipairs(KEYS) do
  local reply = redis.call(ARGV[1], key, unpack(ARGV, 2))
  if ARGV[1] == 'hgetall' then
    local record = {}
    for j = 1, #reply, 2 do record[reply[j]] = reply[j + 1] end
    reply = record
  end
  out[i] = reply
end
return cjson.encode(out)
"""


def entry_of(job_id, record, job_class):
    """The batch verify's entry (verify JSON plus ``code``) of ``record``
    (a ``JobRecord`` or the exception its read raised)."""
    status, data = judge(None, job_id, record, job_class, False)
    return dict(data, code=status)


def read_entries(registry, job_class, job_ids):
    """``{job_id: entry}`` of ``job_ids``: one read of their strategy (in a
    thread: the strategy may block)."""
    manager.push({'registry': registry, 'request': None})
    try:
        try:
            strategy = find_tracking_strategy(registry, job_class)
            records = read_records(strategy, job_ids, False)
        except Exception as exc:
            records = dict.fromkeys(job_ids, exc)
        return {
            job_id: entry_of(job_id, records.get(job_id, UnknownJob(job_id)), job_class)
            for job_id in job_ids
        }
    finally:
        manager.pop()


def same_redis(connection, url):
    """Whether the ``redis.Redis`` ``connection`` reaches the database of
    ``url`` (the gateway's)."""
    try:
        ours = connection.connection_pool.connection_kwargs
    except AttributeError:
        return False
    theirs = parse_url(url)
    return all(ours.get(name) == theirs.get(name) for name in SAME_REDIS)


def loop_readable(registry, job_class, url):
    """The strategy of ``job_class`` if the event loop can read its records
    in the Redis of ``url``, else ``None``."""
    try:
        strategy = find_tracking_strategy(registry, job_class)
    except LookupError:
        return None  # the thread's read answers it as the batch verify does
    if (
        getattr(strategy, 'redis_read', None) is None
        or not hasattr(strategy, 'key')
        or not same_redis(getattr(strategy, 'connection', None), url)
    ):
        return None
    return strategy


def as_raw(reply):
    """One reply of :data:`READ` as redis-py gives the read: a dict of bytes
    for an object, else a list of bytes or ``None``."""
    if isinstance(reply, dict):
        return {name.encode(): value.encode() for name, value in reply.items()}
    return [None if value is False else value.encode() for value in reply]


async def fetch_raw(script, strategy, job_ids):
    """The raw records of ``job_ids``: ``strategy.redis_read`` of each, in
    one call of ``script`` (:data:`READ` on the gateway's
    :class:`.commands.Client`)."""
    text = await script(
        keys=[strategy.key(job_id) for job_id in job_ids], args=list(strategy.redis_read)
    )
    return [as_raw(reply) for reply in json.loads(text)]


async def read_in_loop(script, strategy, job_class, job_ids):
    """``{job_id: entry}`` of those of ``job_ids`` that the event loop can
    read: the others (a record to settle, raising ``Unsettled``, one that
    does not decode) are left to :func:`read_entries`.  Raises what the
    read raises."""
    entries = {}
    for job_id, raw in zip(job_ids, await fetch_raw(script, strategy, job_ids), strict=True):
        try:
            record = strategy.decode(job_id, raw, settle=None)
        except UnknownJob as exc:
            record = exc
        except Exception:  # Unsettled, or a record that does not decode
            continue
        entries[job_id] = entry_of(job_id, record, job_class)
    return entries
