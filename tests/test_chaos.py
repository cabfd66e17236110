"""THE CHAOS TEST: the product's promises under faults, bounded in time.

A few hundred jobs (quick, slow with progress, failing; half tracked by the
``rq`` strategy, half by ``redis``) go through two ``immortus-worker``
processes on a private redis-server, created by two users through a waitress
web process, while a chaos loop, at moments drawn from a seeded RNG:

- SIGKILLs a worker alone (its work horse runs on, orphaned), a work horse
  alone, or both (a dead host);
- restarts Redis (SIGTERM, down for a while, start; the append-only file
  keeps the data);
- restarts the web process (SIGKILL, served again on a new port).

Pollers read every job all the time, as its owner and as the other user,
through the batch verify view and the single verify view (with the job's
class, as the JavaScript client asks).  Afterwards the invariants:

1. every job ended (finished or failed) within a bound after the end of
   the chaos (the lease, the slowest job, a worker's boot, and what the two
   workers still had to do then: see BOUND_BASE); and no job read
   ``started`` for longer than its own run plus the heartbeat lease
   (monitoring interval 1 s + grace 2 s), plus slack and the outages it
   lived through;
2. an ended state never changes: once the owner read finished or failed,
   every read sent after that answer shows the same status (and, for
   failed, the same exception type); the owner never reads ``unknown``;
3. no job ran to its end twice (``chaos:ran``), a job read finished ran
   exactly once (and began once, ``chaos:starts``), a ``Failing`` job never
   reads finished;
4. the other user never gets a 200 for a job that is not theirs.

The jobs of ``Quick``, ``Slow`` and ``Failing`` are tracked by ``rq``, those
of ``RQuick``, ``RSlow`` and ``RFailing`` by ``redis`` (``tests/chaos_app.py``).
Seed: ``IMMORTUS_CHAOS_SEED`` (printed either way; the decisions repeat, their
timing cannot).  About 35 to 55 s.  Run with ``-s`` to see the summary line,
and each violation with the job's timeline and its records in Redis; the
report is also written to ``chaos-report.txt`` in the test's tmp_path.
"""

import collections
import http.client
import json
import os
import random
import re
import signal
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from tests.chaos_app import RAN, STARTS
from tests.support import descendants, write_ini

USERS = ('alice', 'bob')
OTHER = {'alice': 'bob', 'bob': 'alice'}
RECORDS_RUN = {'Quick', 'Slow', 'RQuick', 'RSlow'}
FAILS = {'Failing', 'RFailing'}
ENDED = ('finished', 'failed')

JOBS = int(os.environ.get('IMMORTUS_CHAOS_JOBS', 260))
SHARE_B = 1 / 7  # of the jobs created by the second user
KINDS = {'quick': 0.63, 'failing': 0.3, 'slow': 0.07}
SLOW_SECONDS = (0.5, 4.0)
CREATE_SECONDS = 16  # the driver spreads the creates over this
CHAOS_SECONDS = 26  # the chaos loop runs this long
MONITORING, GRACE = 1, 2
LEASE = MONITORING + GRACE  # a dead worker's job reads failed this long after its last beat
#: after the chaos (everything up again), every job has ended within the
#: lease, the slowest job and a worker's boot (BOUND_BASE), plus the time
#: two workers need for the jobs still waiting then (OVERHEAD per job, on top
#: of its own run, times DRAIN_SLACK: this machine's 2 cores are shared)
BOUND_BASE = LEASE + SLOW_SECONDS[1] + 5
OVERHEAD = 0.15
DRAIN_SLACK = 1.5
STARTED_SLACK = 2.5  # polling, scheduling and Redis retries on top of run + lease
SETTLE = 4  # reads go on this long once every job has ended


@dataclass
class Tracked:
    job_id: str
    job_class: str
    owner: str
    args: list
    created: float
    seconds: float = 0.0


@dataclass
class Read:
    t0: float
    t1: float
    job_id: str
    user: str
    code: int
    status: str
    exc: str
    source: str


@dataclass
class Chaos:
    kills: collections.Counter = field(default_factory=collections.Counter)
    redis_restarts: int = 0
    web_restarts: int = 0
    worker_exits: int = 0  # workers that stopped without being killed
    worker_starts: int = 0
    skipped: int = 0
    outages: list = field(default_factory=list)  # (kind, start, end)
    events: list = field(default_factory=list)  # (t, text)


class Web:
    """The web process, restartable; ``url`` is None while it is down."""

    def __init__(self, serve, ini):
        self.serve = serve
        self.ini = ini
        self.served = serve(ini)
        self.url = self.served.url

    def restart(self):
        proc = self.served.proc
        self.url = None
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        self.served = self.serve(self.ini)
        self.url = self.served.url


def call(web, method, path, user, body=None, timeout=15):
    """``(code, json)``; ``(None, reason)`` when the web process cannot be
    reached."""
    url = web.url
    if url is None:
        return None, 'web down'
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url + path,
        method=method,
        data=data,
        headers={'X-User': user, 'Accept': 'application/json', 'Content-Type': 'application/json'},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as res:
            return res.status, json.load(res)
    except urllib.error.HTTPError as err:
        try:
            return err.code, json.load(err)
        except (OSError, ValueError, http.client.HTTPException) as exc:
            return None, f'{err.code}, then {exc!r}'  # the body was cut short
    except (OSError, ValueError, http.client.HTTPException) as exc:  # refused, reset, cut short
        return None, repr(exc)


def status_of(code, data):
    if code == 200:
        exc = (
            (data.get('exception') or {}).get('type', '') if data.get('status') == 'failed' else ''
        )
        return data.get('status'), exc
    if code == 404 and data.get('status') == 'unknown':
        return 'unknown', ''
    return f'http{code}', ''


def test_chaos_jobs_survive_killed_workers_redis_and_web_restarts(
    tmp_path, processes, serve, private_redis
):
    """The chaos test (see the module docstring)."""
    seed = int(os.environ.get('IMMORTUS_CHAOS_SEED', random.randrange(2**32)))
    print(f'\nchaos: seed={seed} (IMMORTUS_CHAOS_SEED={seed} repeats the decisions)')
    chaos_rng, jobs_rng = random.Random(seed), random.Random(seed + 1)
    ini = write_ini(
        tmp_path / 'chaos.ini',
        {
            'immortus.queue_adapter': 'rq',
            'immortus.redis_url': private_redis.url,
            'immortus.rq.queue': 'chaos',
            'immortus.verify_owner_only': 'true',
        },
        app='call:tests.chaos_app:main',
    )
    epoch = time.monotonic()

    def now():
        return time.monotonic() - epoch

    web = Web(serve, ini)
    chaos = Chaos()
    workers = []
    chaos_over = [float('inf')]
    killed = set()
    orphans = set()

    def start_worker():
        chaos.worker_starts += 1
        return processes.worker(
            ini, '--job-monitoring-interval', str(MONITORING), '--lease-grace', str(GRACE)
        )

    workers += [start_worker(), start_worker()]

    jobs = []
    reads = []
    errors = collections.Counter()
    stop_creating = threading.Event()
    stop_polling = threading.Event()

    # -- the driver: creates the jobs, retrying what could not be created --
    plan = []
    for _ in range(JOBS):
        user = 'bob' if jobs_rng.random() < SHARE_B else 'alice'
        kind = jobs_rng.choices(list(KINDS), list(KINDS.values()))[0]
        prefix = '' if jobs_rng.random() < 0.5 else 'R'
        if kind == 'quick':
            plan.append((user, prefix + 'Quick', [], 0.0))
        elif kind == 'failing':
            plan.append((user, prefix + 'Failing', ['chaos'], 0.0))
        else:
            seconds = round(jobs_rng.uniform(*SLOW_SECONDS), 2)
            plan.append((user, prefix + 'Slow', [seconds, 6], seconds))

    def drive():
        start = time.monotonic()
        for n, (user, job_class, args, seconds) in enumerate(plan):
            delay = start + n * CREATE_SECONDS / len(plan) - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            while not stop_creating.is_set():
                code, data = call(web, 'POST', f'/create/{job_class}', user, {'args': args})
                if code == 200:
                    jobs.append(Tracked(data['job_id'], job_class, user, args, now(), seconds))
                    break
                errors[f'create {code}'] += 1
                if code not in (None, 503):
                    errors[f'create {code}: {str(data)[:120]}'] += 1
                time.sleep(0.2)

    # -- the pollers ----------------------------------------------------------
    def record(t0, t1, job_id, user, code, data, source):
        status, exc = status_of(code, data)
        reads.append(Read(t0, t1, job_id, user, code, status, exc, source))

    def poll_batches():
        while not stop_polling.is_set():
            snapshot = list(jobs)
            by_class = collections.defaultdict(list)
            for job in snapshot:
                by_class[job.job_class].append(job.job_id)
            for user in USERS:
                for job_class, ids in by_class.items():
                    for i in range(0, len(ids), 100):
                        chunk = ids[i : i + 100]
                        t0 = now()
                        code, data = call(
                            web,
                            'GET',
                            '/immortus/verify?ids=' + ','.join(chunk) + '&job_class=' + job_class,
                            user,
                        )
                        t1 = now()
                        if code != 200:
                            errors[f'batch {code}'] += 1
                            continue
                        for job_id, answer in data['jobs'].items():
                            record(t0, t1, job_id, user, answer['code'], answer, 'batch')
            stop_polling.wait(0.15)

    def poll_singles(part):
        while not stop_polling.is_set():
            snapshot = list(jobs)[part::2]
            if not snapshot:
                stop_polling.wait(0.1)
            for job in snapshot:
                for user in (job.owner, OTHER[job.owner]):
                    if stop_polling.is_set():
                        return
                    t0 = now()
                    code, data = call(
                        web, 'GET', f'/immortus/verify/{job.job_id}/{job.job_class}', user
                    )
                    t1 = now()
                    if code is None:
                        errors['single None'] += 1
                        stop_polling.wait(0.1)
                        continue
                    record(t0, t1, job.job_id, user, code, data, 'single')
                    stop_polling.wait(0.02)

    def latest_owner_status():
        last = {}
        for r in list(reads):
            if r.user == owners.get(r.job_id) and r.code in (200, 404):
                if r.job_id not in last or last[r.job_id].t0 < r.t0:
                    last[r.job_id] = r
        return last

    crashed = []

    def guarded(target, *args):
        def run():
            try:
                target(*args)
            except BaseException as exc:  # a harness bug: fail the test with it
                crashed.append(f'{threading.current_thread().name}: {exc!r}')
                raise

        return threading.Thread(target=run, name=target.__name__ + ''.join(map(str, args)))

    threads = [
        guarded(drive),
        guarded(poll_batches),
        guarded(poll_singles, 0),
        guarded(poll_singles, 1),
    ]
    owners = {}

    # -- the chaos loop (this thread) -------------------------------------------
    def event(text):
        chaos.events.append((now(), text))

    def supervise():
        for n, worker in enumerate(workers):
            if worker.poll() is not None:
                if worker.pid not in killed:
                    chaos.worker_exits += 1
                    event(
                        f'worker {worker.pid} exited by itself (code {worker.returncode}: '
                        f'{why_quit(worker.log_path)})'
                    )
                workers[n] = start_worker()
                if now() > chaos_over[0]:
                    event(f'worker {workers[n].pid} started')

    def horses():
        return [(w, h) for w in workers if w.poll() is None for h in descendants(w.pid)]

    def running_jobs():
        """``{horse pid: job}`` from ``chaos:starts`` (empty when Redis is down)."""
        try:
            entries = private_redis.client.lrange(STARTS, -20, -1)
        except Exception:
            return {}
        by_id = {job.job_id: job for job in list(jobs)}
        found = {}
        for entry in entries:
            job_id, pid = entry.decode().split()
            if job_id in by_id:
                found[int(pid)] = by_id[job_id]
        return found

    def slow_horses_worker(wait):
        """A worker whose horse runs a job longer than the lease, if one
        turns up within ``wait`` seconds."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            running = running_jobs()
            for worker, horse in horses():
                job = running.get(horse)
                if job is not None and job.seconds > LEASE:
                    return worker
            time.sleep(0.05)
        return None

    def kill(kind):
        if kind == 'horse':
            deadline = time.monotonic() + 1.5
            while not (found := horses()) and time.monotonic() < deadline:
                time.sleep(0.02)
            if not found:
                chaos.skipped += 1
                return
            worker, horse = chaos_rng.choice(found)
            try:
                os.kill(horse, signal.SIGKILL)
            except ProcessLookupError:
                chaos.skipped += 1
                return
            event(f'SIGKILL horse {horse} of worker {worker.pid}')
        else:
            alive = [w for w in workers if w.poll() is None]
            if not alive:
                chaos.skipped += 1
                return
            worker = chaos_rng.choice(alive)
            if kind == 'worker':
                # an orphaned horse matters most when its job outlives the lease
                worker = slow_horses_worker(1.5) or worker
            below = descendants(worker.pid)
            killed.add(worker.pid)
            if kind == 'worker':
                os.kill(worker.pid, signal.SIGKILL)
                orphans.update(below)
            else:
                processes.kill(worker)  # the worker and its horse: a dead host
            worker.wait(10)
            event(f'SIGKILL {kind} {worker.pid} (horses {below})')
        chaos.kills[kind] += 1

    def restart_redis():
        down = chaos_rng.uniform(0.3, 3.0)
        start = now()
        event(f'redis stop for {down:.1f}s')
        private_redis.stop()
        time.sleep(down)
        private_redis.start()
        chaos.outages.append(('redis', start, now()))
        chaos.redis_restarts += 1
        event('redis up')

    def restart_web():
        start = now()
        event('web SIGKILL')
        web.restart()
        chaos.outages.append(('web', start, now()))
        chaos.web_restarts += 1
        event(f'web up on {web.url}')

    actions = {
        'worker': lambda: kill('worker'),
        'horse': lambda: kill('horse'),
        'host': lambda: kill('host'),
        'redis': restart_redis,
        'web': restart_web,
    }
    weights = {'worker': 0.18, 'horse': 0.34, 'host': 0.18, 'redis': 0.15, 'web': 0.15}

    def draw(n):
        return chaos_rng.choices(list(weights), list(weights.values()), k=n)

    # every kind of fault early on (twice for restarts), then at random
    faults = ['redis', 'redis', 'web', 'web', 'worker', 'horse', 'host'] + draw(3)
    chaos_rng.shuffle(faults)
    faults += draw(40)

    try:
        for thread in threads:
            thread.start()
        chaos_end = time.monotonic() + CHAOS_SECONDS
        next_event = time.monotonic() + chaos_rng.uniform(0.5, 1.5)
        while time.monotonic() < chaos_end:
            supervise()
            if time.monotonic() >= next_event:
                actions[faults.pop(0)]()
                next_event = time.monotonic() + chaos_rng.uniform(0.5, 2.0)
            time.sleep(0.05)
        # the chaos is over: everything is up again, dead workers restarted
        threads[0].join(60)
        assert not threads[0].is_alive(), 'the driver did not finish creating jobs'
        supervise()
        t_end = chaos_over[0] = now()
        event('chaos over')
        owners.update({job.job_id: job.owner for job in jobs})
        last = latest_owner_status()
        waiting = [
            job
            for job in jobs
            if job.job_id not in last or last[job.job_id].status not in ENDED + ('started',)
        ]
        bound = BOUND_BASE + DRAIN_SLACK * sum(job.seconds + OVERHEAD for job in waiting) / 2
        event(f'{len(waiting)} jobs waiting: bound {bound:.1f}s')
        while now() < t_end + bound:
            supervise()
            owners.update({job.job_id: job.owner for job in jobs})
            last = latest_owner_status()
            if len(last) == len(jobs) and all(r.status in ENDED for r in last.values()):
                break
            time.sleep(0.25)
        t_all_ended = now()
        time.sleep(SETTLE)
    finally:
        stop_creating.set()
        stop_polling.set()
        for thread in threads:
            thread.join(30)
        for pid in orphans:  # horses whose worker was killed: ours if they run our ini
            try:
                with open(f'/proc/{pid}/cmdline', 'rb') as f:
                    if ini.encode() in f.read():
                        os.kill(pid, signal.SIGKILL)
            except (FileNotFoundError, ProcessLookupError):
                pass

    assert not crashed, crashed

    # final reads, one by one, as owner and as the other user
    for job in jobs:
        for user in (job.owner, OTHER[job.owner]):
            t0 = now()
            code, data = call(web, 'GET', f'/immortus/verify/{job.job_id}/{job.job_class}', user)
            if code is not None:
                record(t0, now(), job.job_id, user, code, data, 'final')
    t_final = now()
    ran = collections.Counter(x.decode() for x in private_redis.client.lrange(RAN, 0, -1))
    starts = collections.Counter(
        x.decode().split()[0] for x in private_redis.client.lrange(STARTS, 0, -1)
    )

    violations, notes, timelines = check(jobs, reads, ran, starts, chaos, t_end, bound)
    for job_id in {v[1] for v in violations} | {n[1] for n in notes}:
        timelines[job_id] += f'\n    ran={ran[job_id]} began={starts[job_id]} ' + redis_record(
            private_redis.client, job_id
        )
    by_class = collections.Counter(v[0] for v in violations)
    outcome = collections.Counter()
    last = {}
    for r in sorted(
        (r for r in reads if r.user == owners.get(r.job_id) and r.code in (200, 404)),
        key=lambda r: r.t0,
    ):
        last[r.job_id] = r
    for job in jobs:
        r = last.get(job.job_id)
        outcome[
            f'{job.job_class}:{r.status if r else "never read"}{"/" + r.exc if r and r.exc else ""}'
        ] += 1
    summary = (
        f'chaos: seed={seed} jobs={len(jobs)} (alice {sum(j.owner == "alice" for j in jobs)}, '
        f'bob {sum(j.owner == "bob" for j in jobs)}) reads={len(reads)} '
        f'kills={sum(chaos.kills.values())} ({dict(chaos.kills)}) '
        f'redis_restarts={chaos.redis_restarts} web_restarts={chaos.web_restarts} '
        f'worker_self_exits={chaos.worker_exits} worker_starts={chaos.worker_starts} '
        f'skipped={chaos.skipped} chaos_end={t_end:.1f}s all_ended_at={t_all_ended:.1f}s '
        f'(bound {t_end + bound:.1f}s) total={t_final:.1f}s violations={len(violations)}'
    )
    report = [
        summary,
        'violations by class: ' + json.dumps(dict(by_class)),
        'outcomes: ' + json.dumps(dict(sorted(outcome.items()))),
        'request errors: ' + json.dumps(dict(errors)),
        'notes: ' + json.dumps(dict(collections.Counter(n[0] for n in notes))),
    ]
    shown = collections.Counter()
    for kind, job_id, text in violations:
        shown[kind] += 1
        if shown[kind] <= 6:
            report.append(
                f'VIOLATION [{kind}] {job_id}: {text}\n    timeline: {timelines.get(job_id, "")}'
            )
    for kind, job_id, text in notes[:8]:
        report.append(f'note [{kind}] {job_id}: {text}\n    timeline: {timelines.get(job_id, "")}')
    report.append('chaos events: ' + '; '.join(f'{t:.1f} {e}' for t, e in chaos.events))
    text = '\n'.join(report)
    print(text)
    (tmp_path / 'chaos-report.txt').write_text(text)
    assert chaos.redis_restarts and chaos.web_restarts and sum(chaos.kills.values()) >= 3, (
        'the chaos did not happen: ' + summary
    )
    assert not violations, text


RQ_FIELDS = (
    'status',
    'enqueued_at',
    'started_at',
    'ended_at',
    'last_heartbeat',
    'worker_name',
    'immortus:deadline',
    'immortus:exception',
    'immortus:owner',
    'immortus:ended',
    'immortus:stop',
)


def redis_record(client, job_id):
    """What Redis holds about ``job_id``: rq's hash (the fields that
    matter), the ``redis`` strategy's hash, and where rq lists it."""
    rq_hash = {
        k.decode(): v.decode()
        for k, v in client.hgetall('rq:job:' + job_id).items()
        if k.decode() in RQ_FIELDS
    }
    ours = {
        k.decode(): v.decode()
        for k, v in client.hgetall('immortus:job:' + job_id).items()
        if k.decode() not in ('progress', 'meta')
    }
    where = [
        name
        for name, found in (
            ('queue', client.lpos('rq:queue:chaos', job_id) is not None),
            ('intermediate', client.lpos('rq:queue:chaos:intermediate', job_id) is not None),
            (
                'wip',
                client.zscore('rq:wip:chaos', job_id) is not None
                or any(m.decode().startswith(job_id) for m in client.zrange('rq:wip:chaos', 0, -1)),
            ),
            ('failed', client.zscore('rq:failed:chaos', job_id) is not None),
            ('finished', client.zscore('rq:finished:chaos', job_id) is not None),
        )
        if found
    ]
    return f'rq={rq_hash} immortus={ours} in={where}'


def why_quit(log_path):
    """Why a worker stopped: the exception after rq's last "quitting" line,
    else the log's last exception (the log holds its horses' too)."""
    try:
        with open(log_path, encoding='utf-8', errors='replace') as f:
            lines = f.read().splitlines()
    except OSError:
        return ''
    quits = [n for n, line in enumerate(lines) if 'quitting' in line]
    traceback = []
    for line in lines[quits[-1] + 1 :] if quits else lines:
        if quits and re.match(r'\d{4}-\d\d-\d\d ', line):
            break  # the next log record
        traceback.append(line)
    raised = [line for line in traceback if re.match(r'[A-Za-z_][\w.]*(Error|Exception)\b', line)]
    return (raised[-1] if raised else lines[-1] if lines else '')[:160]


def timeline(owner_reads):
    """``status[exc]@first-last`` segments of one job's owner reads."""
    segments = []
    for r in owner_reads:
        label = r.status + (f'[{r.exc}]' if r.exc else '')
        if segments and segments[-1][0] == label:
            segments[-1][2] = r.t1
        else:
            segments.append([label, r.t0, r.t1])
    return ' -> '.join(f'{label}@{a:.1f}-{b:.1f}' for label, a, b in segments)


def overlap(outages, a, b):
    return sum(max(0.0, min(b, end) - max(a, start)) for _, start, end in outages)


def check(jobs, reads, ran, starts, chaos, t_end, bound):
    """``(violations, notes, timelines)``; a violation is ``(class, job_id,
    text)``."""
    violations, notes, timelines = [], [], {}
    by_job = collections.defaultdict(list)
    for r in reads:
        by_job[r.job_id].append(r)
    for job in jobs:
        job_reads = sorted(by_job[job.job_id], key=lambda r: r.t0)
        mine = [r for r in job_reads if r.user == job.owner and r.code in (200, 404)]
        timelines[job.job_id] = (
            f'{job.job_class} owner={job.owner} args={job.args} '
            f'created@{job.created:.1f}: ' + timeline(mine)
        )

        # (4) the other user never reads the job
        for r in job_reads:
            if r.user != job.owner and r.code == 200:
                violations.append(
                    (
                        'privacy',
                        job.job_id,
                        f'{r.user} got 200 status={r.status} at {r.t0:.1f} ({r.source})',
                    )
                )
                break
        # answers no client should ever get
        for r in job_reads:
            if r.code not in (200, 404, 503):
                violations.append(
                    ('http error', job.job_id, f'{r.user} got {r.code} at {r.t0:.1f} ({r.source})')
                )
                break

        # (1) ended within the bound, and never "started" for longer than the lease allows
        ended = [r for r in mine if r.status in ENDED]
        if not mine or mine[-1].status not in ENDED:
            violations.append(
                (
                    'not ended',
                    job.job_id,
                    f'last owner read {mine[-1].status if mine else "none"} at '
                    f'{mine[-1].t0 if mine else 0:.1f}, chaos ended at {t_end:.1f}',
                )
            )
        elif ended[0].t1 > t_end + bound:
            violations.append(
                (
                    'ended late',
                    job.job_id,
                    f'first ended read at {ended[0].t1:.1f} > bound {t_end + bound:.1f}',
                )
            )
        started = [r for r in mine if r.status == 'started']
        if started:
            # the longest stretch of "started" reads with no ended read in between
            stretch_start, longest = None, 0.0
            for r in mine:
                if r.status == 'started':
                    stretch_start = r.t0 if stretch_start is None else stretch_start
                    longest = max(
                        longest, r.t1 - stretch_start - overlap(chaos.outages, stretch_start, r.t1)
                    )
                elif r.status in ENDED or r.status == 'queued':
                    stretch_start = None
            if longest > job.seconds + LEASE + STARTED_SLACK:
                violations.append(
                    (
                        'started too long',
                        job.job_id,
                        f'read started for {longest:.1f}s (outages excluded); run '
                        f'{job.seconds:.1f}s + lease {LEASE}s + slack {STARTED_SLACK}s',
                    )
                )

        # (2) an ended state never changes; the owner never reads unknown
        for r in mine:
            if r.status == 'unknown':
                violations.append(
                    ('owner read unknown', job.job_id, f'404 unknown at {r.t0:.1f} ({r.source})')
                )
                break
        if ended:
            first_end = ended[0]
            label = (first_end.status, first_end.exc)
            for r in mine:
                if r.t0 > first_end.t1 and (r.status, r.exc) != label:
                    violations.append(
                        (
                            'ended state changed',
                            job.job_id,
                            f'{first_end.status}[{first_end.exc}] read at {first_end.t1:.1f}, '
                            f'then {r.status}[{r.exc}] at {r.t0:.1f} ({r.source})',
                        )
                    )
                    break

        # (3) runs
        finished = any(r.status == 'finished' for r in mine)
        if ran[job.job_id] > 1:
            violations.append(('ran twice', job.job_id, f'{ran[job.job_id]} times in {RAN}'))
        if finished and job.job_class in FAILS:
            violations.append(('failing job finished', job.job_id, 'read finished'))
        if finished and job.job_class in RECORDS_RUN and ran[job.job_id] != 1:
            violations.append(
                (
                    'finished without one run',
                    job.job_id,
                    f'read finished, in {RAN} {ran[job.job_id]} times',
                )
            )
        if finished and starts[job.job_id] > 1:
            violations.append(
                ('finished job began twice', job.job_id, f'{starts[job.job_id]} runs began')
            )
        if (
            job.job_class in RECORDS_RUN
            and ran[job.job_id] == 1
            and mine
            and mine[-1].status == 'failed'
        ):
            notes.append(('ran to its end, reads failed', job.job_id, f'failed[{mine[-1].exc}]'))
        if starts[job.job_id] > 1:
            notes.append(('began twice', job.job_id, f'{starts[job.job_id]} runs began'))
    return violations, notes, timelines
