"""The redis and rq strategies on a real Redis, driven directly."""

import json
import time
import uuid

import pytest
from zope.interface.verify import verifyObject

from pyramid_immortus import UnknownJob
from pyramid_immortus.interfaces import IJobTrackingStrategy, IStatusReport, ITrackingCallbacks
from pyramid_immortus.strategies.redis import RedisStrategy
from pyramid_immortus.strategies.rq import RQStrategy


class Clock:
    def __init__(self):
        self.now = time.time()

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def strategy(redis_db, clock):
    return RedisStrategy(redis_db, ttl=60, max_age=600, clock=clock)


def test_provides_its_interfaces(strategy, redis_db):
    for iface in (IJobTrackingStrategy, ITrackingCallbacks, IStatusReport):
        assert verifyObject(iface, strategy)
        assert verifyObject(iface, RQStrategy(redis_db))


def test_states_and_expiry(strategy, redis_db):
    strategy.job_enqueued('a')
    assert strategy.report('a')['status'] == 'queued'
    assert 590 < redis_db.ttl('immortus:job:a') <= 600
    strategy.job_started('a')
    strategy.job_progress('a', 1, 3, 'one')
    strategy.job_meta('a', {'k': [1, 2]})
    report = strategy.report('a')
    assert report['status'] == 'started'
    assert report['progress'] == {'current': 1, 'total': 3, 'percent': 33.3, 'message': 'one'}
    assert report['meta'] == {'k': [1, 2]}
    strategy.job_finished('a')
    assert strategy.completed('a') is True
    assert 50 < redis_db.ttl('immortus:job:a') <= 60
    strategy.job_heartbeat('a', time.time() + 5)  # rq heartbeats once more at the end
    assert 50 < redis_db.ttl('immortus:job:a') <= 60
    strategy.job_enqueued('b')
    strategy.job_failed('b', ZeroDivisionError('division by zero'))
    report = strategy.report('b')
    assert report['error'] == 'ZeroDivisionError: division by zero'
    assert report['failed'] is True and report['ended_at']


def test_a_write_never_creates_a_record(strategy, redis_db):
    for write in (
        lambda: strategy.job_progress('ghost', 1, None, None),
        lambda: strategy.job_meta('ghost', {'a': 1}),
        lambda: strategy.job_heartbeat('ghost', time.time() + 5),
        lambda: strategy.job_started('ghost'),
        lambda: strategy.job_failed('ghost', ValueError()),
    ):
        write()
        assert not redis_db.exists('immortus:job:ghost')


def test_an_ended_state_never_changes(strategy, redis_db):
    strategy.job_created('a', 'Job', 'alice')
    strategy.job_failed('a', ValueError('first'))
    strategy.job_finished('a')
    strategy.job_started('a')
    strategy.job_progress('a', 1, 1, None)
    report = strategy.report('a')
    assert report['status'] == 'failed' and report['error'] == 'ValueError: first'
    assert 'progress' not in report


def test_progress_extends_the_life_of_a_live_job(redis_db, clock):
    strategy = RedisStrategy(redis_db, ttl=60, max_age=2, clock=clock)
    strategy.job_created('a', 'Job', 'alice')
    strategy.job_started('a')
    for _ in range(3):
        time.sleep(1)
        strategy.job_progress('a', 1, 2, None)
    assert strategy.read('a').owner == 'alice'
    assert 1 < redis_db.ttl('immortus:job:a') <= 2


def test_published_messages_hold_a_status_and_never_the_owner(strategy, redis_db):
    job_id = f'pub-{uuid.uuid4()}'  # channels are shared by every database
    pubsub = redis_db.pubsub()
    pubsub.subscribe(f'immortus:job:{job_id}')
    pubsub.get_message(timeout=1)
    strategy.job_created(job_id, 'Secret', 'alice')
    strategy.job_started(job_id)
    strategy.job_progress(job_id, 1, 2, 'half')
    strategy.job_finished(job_id)
    messages = []
    while (message := pubsub.get_message(timeout=1)) is not None:
        messages.append(json.loads(message['data']))
    pubsub.close()
    assert [m['status'] for m in messages] == ['queued', 'started', 'started', 'finished']
    assert messages[2]['progress']['message'] == 'half'
    for message in messages:
        assert message['job_id'] == job_id
        assert not {'owner', 'job_class', 'deadline'} & set(message)
        assert 'alice' not in json.dumps(message)


def test_jobs_that_never_end_expire_after_max_age(redis_db, clock):
    strategy = RedisStrategy(redis_db, ttl=60, max_age=1, clock=clock)
    strategy.job_enqueued('stuck')
    strategy.job_started('stuck')
    assert strategy.report('stuck')['status'] == 'started'
    time.sleep(1.2)
    with pytest.raises(UnknownJob):
        strategy.report('stuck')


def test_a_started_job_whose_lease_ran_out_is_failed(strategy, clock):
    strategy.job_enqueued('a')
    strategy.job_started('a')
    strategy.job_heartbeat('a', clock.now + 10)
    clock.now += 9
    assert strategy.report('a')['status'] == 'started'
    clock.now += 2
    report = strategy.report('a')
    assert report['status'] == 'failed' and report['exception']['type'] == 'WorkerLost'


def test_discarded_and_owner(strategy):
    import uuid

    user = uuid.UUID(int=7)
    strategy.job_created('a', 'Job', user)
    assert strategy.owner('a') == str(user)
    assert 'owner' not in strategy.report('a') and 'owner' not in strategy.meta('a')
    strategy.job_discarded('a')
    with pytest.raises(UnknownJob):
        strategy.report('a')
    with pytest.raises(UnknownJob):
        strategy.owner('a')


def test_report_many_in_one_round_trip(strategy, redis_db):
    for job_id in ('a', 'b'):
        strategy.job_enqueued(job_id)
    strategy.job_finished('b')
    reports = strategy.report_many(['a', 'b', 'c'])
    assert reports['a']['status'] == 'queued' and reports['b']['completed'] is True
    assert isinstance(reports['c'], UnknownJob)


def test_rq_strategy_falls_back_to_rqs_own_lease(redis_db, clock):
    from datetime import datetime, timezone

    from rq.utils import utcformat

    strategy = RQStrategy(redis_db, clock=clock)
    beat = datetime.fromtimestamp(clock.now, timezone.utc)
    redis_db.hset(
        'rq:job:plain',
        mapping={'status': 'started', 'last_heartbeat': utcformat(beat), 'immortus:class': 'Plain'},
    )
    clock.now += 89
    assert strategy.report('plain')['status'] == 'started'
    clock.now += 2
    assert strategy.report('plain')['exception']['type'] == 'WorkerLost'
    clock.now += 1000  # the lost job stays lost
    assert strategy.report('plain')['exception']['type'] == 'WorkerLost'
    redis_db.hset('rq:job:plain', 'status', 'finished')
    assert strategy.report('plain')['status'] == 'failed'
    redis_db.hset('rq:job:odd', mapping={'status': 'stopped', 'immortus:class': 'Odd'})
    report = strategy.report('odd')
    assert report['status'] == 'failed' and report['exception']['type'] == 'Stopped'
    assert report['rq_status'] == 'stopped'


def test_rq_jobs_not_enqueued_by_the_add_on_do_not_exist(redis_db):
    strategy = RQStrategy(redis_db)
    redis_db.hset('rq:job:foreign', mapping={'status': 'finished'})
    with pytest.raises(UnknownJob):
        strategy.report('foreign')
    strategy.job_progress('foreign', 1, 2, None)
    assert not redis_db.hexists('rq:job:foreign', 'immortus:progress')


def test_a_lease_that_ran_out_while_redis_was_down_is_not_held_against_the_job(
    private_redis, redis_db
):
    """Heartbeats cannot be written while Redis is down: until Redis has been
    up for one lease, a lease that ran out does not make a job lost."""
    import redis as redis_py

    for connection, lost in ((redis_py.Redis.from_url(private_redis.url), False), (redis_db, True)):
        clock = Clock()
        strategy = RedisStrategy(connection, clock=clock)
        strategy.job_created('a', 'Job', None, deadline=clock.now + 30)
        strategy.job_started('a')
        clock.now += 31  # the lease ran out; a fresh Redis has been up for ~1 s
        report = strategy.report('a')
        assert (report['status'] == 'failed') is lost, report
        connection.delete('immortus:job:a')


def test_the_rq_strategy_holds_no_lease_against_a_job_while_redis_restarted(
    private_redis, redis_db
):
    from datetime import datetime, timezone

    import redis as redis_py
    from rq.utils import utcformat

    for connection, lost in ((redis_py.Redis.from_url(private_redis.url), False), (redis_db, True)):
        clock = Clock()
        beat = datetime.fromtimestamp(clock.now, timezone.utc)
        connection.hset(
            'rq:job:beat',
            mapping={
                'status': 'started',
                'last_heartbeat': utcformat(beat),
                'immortus:deadline': repr(clock.now + 30),
                'immortus:class': 'Job',
            },
        )
        clock.now += 31
        report = RQStrategy(connection, clock=clock).report('beat')
        assert (report['status'] == 'failed') is lost, report
        connection.delete('rq:job:beat')
