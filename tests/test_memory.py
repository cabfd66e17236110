import threading

import pytest

from pyramid_immortus import CapacityExceeded, UnknownJob
from pyramid_immortus.strategies.memory import MemoryStrategy


class Clock:
    def __init__(self):
        self.now = 1_700_000_000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


def test_each_state(clock):
    memory = MemoryStrategy(clock=clock)
    memory.job_enqueued('a')
    report = memory.report('a')
    assert report['status'] == 'queued' and not report['completed'] and not report['failed']
    assert report['enqueued_at'] == '2023-11-14T22:13:20.000Z'
    memory.job_started('a')
    memory.job_progress('a', 3, 4, 'three')
    report = memory.report('a')
    assert report['status'] == 'started'
    assert report['progress'] == {'current': 3, 'total': 4, 'percent': 75.0, 'message': 'three'}
    clock.now += 1.5
    memory.job_finished('a')
    report = memory.report('a')
    assert report['status'] == 'finished' and report['completed'] is True
    assert report['ended_at'] == '2023-11-14T22:13:21.500Z'
    assert memory.completed('a') is True
    memory.job_enqueued('b')
    memory.job_failed('b', KeyError('missing'))
    report = memory.report('b')
    assert report['status'] == 'failed' and report['failed'] is True
    assert report['exception'] == {'type': 'KeyError', 'message': "'missing'"}
    assert report['error'] == "KeyError: 'missing'"
    assert memory.completed('b') is False


def test_unknown_id(clock):
    memory = MemoryStrategy(clock=clock)
    with pytest.raises(UnknownJob):
        memory.report('nope')
    assert memory.completed('nope') is False
    assert isinstance(memory.report_many(['nope'])['nope'], UnknownJob)


def test_finished_records_expire_after_ttl(clock):
    memory = MemoryStrategy(ttl=10, max_age=1000, clock=clock)
    memory.job_enqueued('a')
    memory.job_finished('a')
    clock.now += 9.9
    assert memory.report('a')['status'] == 'finished'
    clock.now += 0.2
    with pytest.raises(UnknownJob):
        memory.report('a')
    assert len(memory) == 0


def test_jobs_that_never_end_expire_after_max_age(clock):
    memory = MemoryStrategy(ttl=10, max_age=100, clock=clock)
    memory.job_enqueued('stuck')
    clock.now += 50
    memory.job_started('stuck')  # a write extends the bound
    clock.now += 99
    assert memory.report('stuck')['status'] == 'started'
    clock.now += 2
    with pytest.raises(UnknownJob):
        memory.report('stuck')


def test_never_grows_beyond_max_jobs_and_pushes_out_ended_jobs_only(clock):
    memory = MemoryStrategy(ttl=10, max_age=100, max_jobs=50, clock=clock)
    for i in range(1000):
        memory.job_created(f'j{i}', 'Job', 'alice')
        memory.job_started(f'j{i}')
        memory.job_finished(f'j{i}')
        clock.now += 0.001
    assert len(memory) == 50
    assert memory.report('j999')['status'] == 'finished'
    with pytest.raises(UnknownJob):
        memory.report('j0')
    assert len(memory._expiry) <= 2 * 50 + 1024 + 2


def test_unfinished_jobs_are_never_pushed_out_new_ones_are_refused(clock):
    memory = MemoryStrategy(ttl=10, max_age=100, max_jobs=3, clock=clock)
    memory.job_created('victim', 'Job', 'alice')
    memory.job_created('done', 'Job', 'bob')
    memory.job_finished('done')
    memory.job_created('other', 'Job', 'bob')
    memory.job_created('pushes-done-out', 'Job', 'mallory')  # the ended one goes
    with pytest.raises(UnknownJob):
        memory.report('done')
    with pytest.raises(CapacityExceeded) as info:
        memory.job_created('one-too-many', 'Job', 'mallory')
    assert 'immortus.memory_max_jobs' in str(info.value)
    assert memory.read('victim').owner == 'alice'
    assert memory.report('victim')['status'] == 'queued'


def test_writes_never_create_a_record_and_an_end_never_changes(clock):
    memory = MemoryStrategy(clock=clock)
    for write in (
        lambda: memory.job_progress('ghost', 1, 2, None),
        lambda: memory.job_meta('ghost', {'a': 1}),
        lambda: memory.job_started('ghost'),
        lambda: memory.job_finished('ghost'),
        lambda: memory.job_failed('ghost', ValueError()),
    ):
        write()
        with pytest.raises(UnknownJob):
            memory.report('ghost')
    memory.job_created('a', 'Job', None)
    memory.job_failed('a', ValueError('first'))
    memory.job_finished('a')
    memory.job_progress('a', 9, 9, 'late')
    report = memory.report('a')
    assert report['status'] == 'failed' and report['error'] == 'ValueError: first'
    assert 'progress' not in report


def test_progress_keeps_a_live_job_alive(clock):
    memory = MemoryStrategy(ttl=10, max_age=100, clock=clock)
    memory.job_created('a', 'Job', 'alice')
    memory.job_started('a')
    for _ in range(5):
        clock.now += 60
        memory.job_progress('a', 1, 2, None)
    assert memory.report('a')['status'] == 'started'
    assert memory.read('a').owner == 'alice'


def test_discarded_job_is_unknown(clock):
    memory = MemoryStrategy(clock=clock)
    memory.job_enqueued('a')
    memory.job_discarded('a')
    with pytest.raises(UnknownJob):
        memory.report('a')


def test_meta_and_owner(clock):
    memory = MemoryStrategy(clock=clock)
    memory.job_created('a', 'Job', 42)
    memory.job_meta('a', {'rows': 3})
    assert memory.owner('a') == '42'
    assert memory.read('a').job_class == 'Job'
    meta = memory.meta('a')
    assert meta['meta'] == {'rows': 3} and 'completed' not in meta
    assert 'owner' not in meta and 'owner' not in memory.report('a')


def test_thread_safe_under_concurrent_writers():
    memory = MemoryStrategy(max_jobs=100_000)

    def work(n):
        for i in range(2000):
            job_id = f'{n}-{i}'
            memory.job_enqueued(job_id)
            memory.job_started(job_id)
            memory.job_finished(job_id)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(memory) == 8000
    assert all(memory.completed(f'{n}-1999') for n in range(4))
