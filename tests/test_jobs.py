import logging
import threading
import time
import uuid

import pytest

from pyramid_immortus import EnqueueFailed, Job, JobNotRegistered
from pyramid_immortus.catalog import find_tracking_strategy


class Recorder:
    """A strategy that records every callback, in order."""

    def __init__(self):
        self.events = []
        self.fail_on = set()

    def _record(self, event, *args):
        self.events.append((event,) + args)
        if event in self.fail_on:
            raise RuntimeError(f'{event} broke')

    def completed(self, job_id):
        return ('job_finished', job_id) in self.events

    def job_enqueued(self, job_id):
        self._record('job_enqueued', job_id)

    def job_started(self, job_id):
        self._record('job_started', job_id)

    def job_finished(self, job_id):
        self._record('job_finished', job_id)

    def job_failed(self, job_id, exc):
        self._record('job_failed', job_id, type(exc).__name__)

    def job_progress(self, job_id, current, total, message):
        self._record('job_progress', job_id, current, total, message)

    def job_meta(self, job_id, meta):
        self._record('job_meta', job_id, meta)


class Add(Job):
    def perform(self, a, b=0):
        return a + b


class Boom(Job):
    def perform(self):
        raise ValueError('boom')


class Chatty(Job):
    def perform(self, n):
        for i in range(n):
            self.progress(i + 1, n, f'step {i + 1}')
            self.meta['last'] = i
        return n


class Spawner(Job):
    def perform(self):
        return Add.perform_later(self.registry, 1, 2).job_id


class Unregistered(Job):
    def perform(self):
        pass


@pytest.fixture
def recorder():
    return Recorder()


@pytest.fixture
def registry(make_config, recorder):
    config = make_config({'immortus.queue_adapter': 'inline', 'immortus.progress_interval': '0.2'})
    config.add_tracking_strategy('recorder', lambda: recorder)
    for job in (Add, Boom, Chatty, Spawner):
        config.add_immortus_job(job, tracking_strategy='recorder')
    config.commit()
    return config.registry


def names(events):
    return [e[0] for e in events]


def test_perform_later_returns_the_job(registry, recorder):
    job = Add.perform_later(registry, 1, b=2)
    assert str(uuid.UUID(job.job_id, version=4)) == job.job_id
    assert job.job_class == 'Add'
    assert job.arguments == (1,) and job.kwargs == {'b': 2}
    assert names(recorder.events) == ['job_enqueued', 'job_started', 'job_finished']
    assert {e[1] for e in recorder.events} == {job.job_id}


def test_job_ids_are_fresh(registry):
    assert Add.perform_later(registry, 1).job_id != Add.perform_later(registry, 1).job_id


def test_failure_calls_job_failed_and_keeps_the_job(registry, recorder, caplog):
    with caplog.at_level(logging.ERROR):
        job = Boom.perform_later(registry)
    assert recorder.events == [
        ('job_enqueued', job.job_id),
        ('job_started', job.job_id),
        ('job_failed', job.job_id, 'ValueError'),
    ]
    assert 'boom' in caplog.text


def test_perform_now_runs_here_and_raises(registry, recorder):
    assert Add.perform_now(registry, 2, b=3) == 5
    assert names(recorder.events) == ['job_enqueued', 'job_started', 'job_finished']
    with pytest.raises(ValueError, match='boom'):
        Boom.perform_now(registry)
    assert names(recorder.events)[-1] == 'job_failed'


def test_a_broken_callback_is_logged_and_the_job_goes_on(registry, recorder, caplog):
    recorder.fail_on = {'job_enqueued', 'job_started'}
    with caplog.at_level(logging.ERROR):
        assert Add.perform_now(registry, 1, b=1) == 2
    assert names(recorder.events) == ['job_enqueued', 'job_started', 'job_finished']
    assert 'failed in job_enqueued' in caplog.text
    assert 'failed in job_started' in caplog.text


def test_a_job_may_enqueue_another_with_its_registry(registry, recorder):
    spawned = Spawner.perform_now(registry)
    assert ('job_finished', spawned) in recorder.events


def test_unregistered_job_class_says_what_to_do(registry):
    with pytest.raises(JobNotRegistered, match='config.scan'):
        Unregistered.perform_later(registry)


def test_progress_is_throttled_but_the_last_one_is_written(registry, recorder):
    started = time.perf_counter()
    Chatty.perform_now(registry, 200_000)
    elapsed = time.perf_counter() - started
    progress = [e for e in recorder.events if e[0] == 'job_progress']
    assert progress[0][2:] == (1, 200_000, 'step 1')
    assert progress[-1][2:] == (200_000, 200_000, 'step 200000')
    # one write at the start, then at most one per 0.2 s, plus the last
    assert len(progress) <= 2 + elapsed / 0.2
    metas = [e for e in recorder.events if e[0] == 'job_meta']
    assert metas[-1][2] == {'last': 199_999}
    assert names(recorder.events)[-3:] == ['job_progress', 'job_meta', 'job_finished']


def test_progress_interval_zero_writes_every_call(make_config, recorder):
    config = make_config({'immortus.queue_adapter': 'inline', 'immortus.progress_interval': '0'})
    config.add_tracking_strategy('recorder', lambda: recorder)
    config.add_immortus_job(Chatty, tracking_strategy='recorder')
    config.commit()
    Chatty.perform_now(config.registry, 5)
    assert len([e for e in recorder.events if e[0] == 'job_progress']) == 5


def test_enqueue_failure_discards_the_record(make_config):
    class Down:
        strategy_name = 'memory'

        def enqueue(self, job):
            raise ConnectionError('queue down')

    config = make_config()
    config.add_queue_adapter('down', Down)
    config.add_settings({'immortus.queue_adapter': 'down'})
    config.add_immortus_job(Add)
    config.commit()
    with pytest.raises(EnqueueFailed) as info:
        Add.perform_later(config.registry, 1)
    assert isinstance(info.value.__cause__, ConnectionError)
    assert len(find_tracking_strategy(config.registry)) == 0


def test_prepare_refuses_before_anything_is_recorded(make_config, recorder):
    class Picky:
        strategy_name = 'recorder'

        def prepare(self, job):
            raise TypeError('cannot carry that')

        def enqueue(self, job):
            raise AssertionError('not reached')

    config = make_config()
    config.add_tracking_strategy('recorder', lambda: recorder)
    config.add_queue_adapter('picky', Picky)
    config.add_settings({'immortus.queue_adapter': 'picky'})
    config.add_immortus_job(Add)
    config.commit()
    with pytest.raises(TypeError, match='cannot carry'):
        Add.perform_later(config.registry, object())
    assert recorder.events == []


class Gate(Job):
    def perform(self, gate, running, lock):
        with lock:
            running.append(1)
        gate.wait(5)


def test_async_adapter_runs_jobs_on_a_bounded_pool(make_config):
    config = make_config({'immortus.async_workers': '2'})
    config.add_immortus_job(Gate)
    config.commit()
    registry = config.registry
    gate, running, lock = threading.Event(), [], threading.Lock()
    jobs = [Gate.perform_later(registry, gate, running, lock) for _ in range(5)]
    strategy = find_tracking_strategy(registry)
    deadline = time.monotonic() + 5
    while len(running) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    states = [strategy.report(j.job_id)['status'] for j in jobs]
    assert sorted(states) == ['queued'] * 3 + ['started'] * 2
    gate.set()
    deadline = time.monotonic() + 5
    while not all(strategy.completed(j.job_id) for j in jobs):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert len(running) == 5
