// immortus.js against a real HTTP server on loopback (fetch is not stubbed).
const test = require('node:test');
const assert = require('node:assert');
const http = require('node:http');
const net = require('node:net');
const Immortus = require('../../pyramid_immortus/static/immortus.js');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A server answering from a script: `respond(req, n)` returns
// {status, body, delay} for the n-th request (0-based).
async function serve(respond) {
  const requests = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', async () => {
      const entry = { method: req.method, url: req.url, headers: req.headers, body,
        received: performance.now() };
      requests.push(entry);
      const answer = respond(req, requests.length - 1, entry) || {};
      if (answer.delay) { await sleep(answer.delay); }
      const payload = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
      entry.answered = performance.now();
      res.writeHead(answer.status || 200, { 'Content-Type': answer.type || 'application/json' });
      res.end(payload);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  return {
    base, requests,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }),
  };
}

async function closedPort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

// No request may start after `moment` (one already on the wire may still
// be received a few ms later).
async function assertQuietAfter(srv, moment) {
  await sleep(120);
  const late = srv.requests.filter((r) => r.received > moment + 15);
  assert.deepEqual(late.map((r) => r.url), []);
}

function outcome(promise) {
  const progress = [];
  return new Promise((resolve) => {
    promise.then(
      (value) => resolve({ fulfilled: value, progress }),
      (reason) => resolve({ rejected: reason, progress }),
      (p) => progress.push(p));
  });
}

const running = (n) => ({ body: { job_id: 'j1', completed: false, status: 'started', progress: { current: n } } });
const done = { body: { job_id: 'j1', completed: true, status: 'finished' } };

test('verify URL: verifyPath, job_class and encoding', async () => {
  const srv = await serve(() => done);
  try {
    await Immortus.verify({ job_id: 'a b/c', job_class: 'My Job' },
      { verifyPath: srv.base + '/jobs/verify/' });
    assert.equal(srv.requests[0].url, '/jobs/verify/a%20b%2Fc/My%20Job');
    const saved = Immortus.defaults.verifyPath;
    Immortus.defaults.verifyPath = srv.base + '/default';
    try {
      await Immortus.verify({ job_id: 'x' });
    } finally {
      Immortus.defaults.verifyPath = saved;
    }
    assert.equal(srv.requests[1].url, '/default/x');
    await Immortus.verify({ job_id: 'ignored', job_class: 'Ignored', verify_job_url: srv.base + '/custom/1' });
    assert.equal(srv.requests[2].url, '/custom/1');
    assert.equal(srv.requests[2].method, 'GET');
    assert.equal(srv.requests[2].headers.accept, 'application/json');
  } finally {
    await srv.close();
  }
});

test('polls at once, then interval ms after each answer, never overlapping', async () => {
  const srv = await serve((req, n) => (n < 3 ? { ...running(n), delay: 80 } : done));
  try {
    const started = performance.now();
    const result = await outcome(Immortus.verify({ job_id: 'j1' },
      { verifyPath: srv.base, polling: { interval: 150 } }));
    assert.deepEqual(result.fulfilled, done.body);
    assert.deepEqual(result.progress.map((p) => p.progress.current), [0, 1, 2]);
    assert.deepEqual(result.progress[0], running(0).body);
    assert.ok(srv.requests[0].received - started < 100, 'the first request goes at once');
    for (let i = 1; i < srv.requests.length; i++) {
      const gap = srv.requests[i].received - srv.requests[i - 1].answered;
      assert.ok(gap >= 140, `request ${i} came ${gap} ms after the previous answer`);
      assert.ok(gap < 400, `request ${i} came ${gap} ms after the previous answer`);
    }
  } finally {
    await srv.close();
  }
});

test('a 2xx answer with failed: true rejects with it', async () => {
  const failed = { job_id: 'j1', completed: false, failed: true, error: 'ValueError: x' };
  const srv = await serve((req, n) => (n === 0 ? running(0) : { body: failed }));
  try {
    const result = await outcome(Immortus.verify({ job_id: 'j1' },
      { verifyPath: srv.base, polling: { interval: 10 } }));
    assert.deepEqual(result.rejected, failed);
    assert.equal(result.progress.length, 1);
  } finally {
    await srv.close();
  }
});

test('a 404 rejects with its body and is not retried', async () => {
  const body = { job_id: 'j1', status: 'unknown', error: 'unknown job' };
  const srv = await serve(() => ({ status: 404, body }));
  try {
    const result = await outcome(Immortus.verify({ job_id: 'j1' }, { verifyPath: srv.base }));
    assert.deepEqual(result.rejected, body);
    await sleep(100);
    assert.equal(srv.requests.length, 1);
  } finally {
    await srv.close();
  }
});

test('a 2xx answer that is not JSON rejects', async () => {
  const srv = await serve(() => ({ status: 200, body: 'not json' }));
  try {
    const result = await outcome(Immortus.verify({ job_id: 'j1' }, { verifyPath: srv.base }));
    assert.equal(result.rejected.job_id, 'j1');
    assert.match(result.rejected.error, /not JSON/);
  } finally {
    await srv.close();
  }
});

test('no job_id rejects at once and sends nothing', async () => {
  const srv = await serve(() => done);
  try {
    for (const info of [undefined, {}, { job_class: 'X' }]) {
      const result = await outcome(Immortus.verify(info, { verifyPath: srv.base }));
      assert.deepEqual(result.rejected, { error: 'missing job_id' });
    }
    assert.equal(srv.requests.length, 0);
  } finally {
    await srv.close();
  }
});

test('503 is retried with backoff, then the job is seen to complete', async () => {
  const srv = await serve((req, n) => (n < 2 ? { status: 503, body: { job_id: 'j1', error: 'backend unavailable' } } : done));
  try {
    const result = await outcome(Immortus.verify({ job_id: 'j1' },
      { verifyPath: srv.base, polling: { interval: 20, retries: 3 } }));
    assert.deepEqual(result.fulfilled, done.body);
    assert.equal(srv.requests.length, 3);
    const first = srv.requests[1].received - srv.requests[0].answered;
    const second = srv.requests[2].received - srv.requests[1].answered;
    assert.ok(second > first * 1.5, `backoff grows: ${first} ms then ${second} ms`);
  } finally {
    await srv.close();
  }
});

test('502/503/504 that persist reject after the retries, with the body', async () => {
  for (const status of [502, 503, 504]) {
    const srv = await serve(() => ({ status, body: { error: 'backend unavailable', detail: 'd' } }));
    try {
      const result = await outcome(Immortus.verify({ job_id: 'j1' },
        { verifyPath: srv.base, polling: { interval: 5, retries: 2 } }));
      assert.deepEqual(result.rejected, { job_id: 'j1', error: 'backend unavailable', detail: 'd', status });
      assert.equal(srv.requests.length, 3);
    } finally {
      await srv.close();
    }
  }
});

test('a network error is retried, then rejects with {job_id, error}', async () => {
  const port = await closedPort();
  const result = await outcome(Immortus.verify({ job_id: 'j1' },
    { verifyPath: `http://127.0.0.1:${port}/v`, polling: { interval: 5, retries: 2 } }));
  assert.equal(result.rejected.job_id, 'j1');
  assert.match(result.rejected.error, /^network error/);
});

test('timeout rejects and no request follows', async () => {
  const srv = await serve(() => running(1));
  try {
    const result = await outcome(Immortus.verify({ job_id: 'j1' },
      { verifyPath: srv.base, polling: { interval: 30, timeout: 200 } }));
    assert.deepEqual(result.rejected, { job_id: 'j1', error: 'timeout' });
    assert.ok(srv.requests.length >= 2);
    await assertQuietAfter(srv, performance.now());
  } finally {
    await srv.close();
  }
});

test('cancel() on a derived promise stops polling', async () => {
  const srv = await serve(() => running(1));
  try {
    const derived = Immortus.verify({ job_id: 'j1' }, { verifyPath: srv.base, polling: { interval: 20 } })
      .then((x) => x);
    const result = outcome(derived.then((x) => x));
    await sleep(100);
    assert.equal(derived.cancel(), true);
    const cancelledAt = performance.now();
    assert.deepEqual((await result).rejected, { job_id: 'j1', error: 'cancelled' });
    await assertQuietAfter(srv, cancelledAt);
    assert.equal(derived.cancel(), false);
  } finally {
    await srv.close();
  }
});

test('an AbortSignal stops polling; an aborted one sends nothing', async () => {
  const srv = await serve(() => ({ ...running(1), delay: 50 }));
  try {
    const controller = new AbortController();
    const result = outcome(Immortus.verify({ job_id: 'j1' },
      { verifyPath: srv.base, polling: { interval: 10 }, signal: controller.signal }));
    await sleep(120);
    controller.abort();
    const abortedAt = performance.now();
    assert.deepEqual((await result).rejected, { job_id: 'j1', error: 'cancelled' });
    await assertQuietAfter(srv, abortedAt);
    const count = srv.requests.length;
    const again = await outcome(Immortus.verify({ job_id: 'j2' },
      { verifyPath: srv.base, signal: controller.signal }));
    assert.deepEqual(again.rejected, { job_id: 'j2', error: 'cancelled' });
    assert.equal(srv.requests.length, count);
  } finally {
    await srv.close();
  }
});

test('create posts JSON with the CSRF token and resolves with the answer', async () => {
  const srv = await serve(() => ({ body: { job_id: 'j9', job_class: 'Add' } }));
  try {
    // node has no page origin: an absolute URL gets the token only when asked
    const job = await Immortus.create(srv.base + '/create',
      { data: { a: 1 }, csrfToken: 'tok', csrfCrossOrigin: true });
    assert.deepEqual(job, { job_id: 'j9', job_class: 'Add' });
    const req = srv.requests[0];
    assert.equal(req.method, 'POST');
    assert.equal(req.headers['x-csrf-token'], 'tok');
    assert.equal(req.headers['content-type'], 'application/json');
    assert.equal(req.headers.accept, 'application/json');
    assert.deepEqual(JSON.parse(req.body), { a: 1 });
    await Immortus.create(srv.base + '/put', { method: 'PUT' });
    assert.equal(srv.requests[1].method, 'PUT');
    assert.equal(srv.requests[1].headers['x-csrf-token'], undefined);
    assert.equal(srv.requests[1].body, '');
  } finally {
    await srv.close();
  }
});

test('create rejects with the body of a non-2xx answer and its status, or {error, status}', async () => {
  const srv = await serve((req) => (req.url === '/json'
    ? { status: 503, body: { error: 'backend unavailable' } }
    : { status: 500, body: 'Internal Server Error' }));
  try {
    assert.deepEqual((await outcome(Immortus.create(srv.base + '/json'))).rejected,
      { error: 'backend unavailable', status: 503 });
    assert.deepEqual((await outcome(Immortus.create(srv.base + '/html'))).rejected,
      { error: 'HTTP 500: the answer is not JSON', status: 500 });
  } finally {
    await srv.close();
  }
  const port = await closedPort();
  const result = await outcome(Immortus.create(`http://127.0.0.1:${port}/create`));
  assert.match(result.rejected.error, /^network error/);
});

test("the Rails documentation's chain: create, then verify with progress", async () => {
  const srv = await serve((req, n) => {
    if (req.method === 'POST') { return { body: { job_id: 'j1', job_class: 'Add' } }; }
    return n < 3 ? running(n) : done;
  });
  try {
    const log = [];
    const created = (data) => { log.push(`Job ${data.job_id} created successfully`); return data; };
    const failedToCreate = () => log.push('Job failed to create');
    const finished = (data) => log.push(`Job ${data.job_id} finished successfully`);
    const failed = (data) => log.push(`Job ${data.job_id} failed to perform`);
    const inProgress = (data) => log.push(`Job ${data.job_id} is still executing ...`);
    await Immortus.create(srv.base + '/create_job')
      .then(created, failedToCreate)
      .then((info) => Immortus.verify(info, { verifyPath: srv.base + '/immortus/verify', polling: { interval: 10 } })
        .then(finished, failed, inProgress));
    assert.deepEqual(log, [
      'Job j1 created successfully',
      'Job j1 is still executing ...',
      'Job j1 is still executing ...',
      'Job j1 finished successfully',
    ]);
    assert.equal(srv.requests[1].url, '/immortus/verify/j1/Add');
  } finally {
    await srv.close();
  }
});

test('a failed create flows into verify as a rejection, sending nothing', async () => {
  const srv = await serve(() => ({ status: 500, body: {} }));
  try {
    const log = [];
    await Immortus.create(srv.base + '/create_job')
      .then((d) => d, () => { log.push('Job failed to create'); })
      .then((info) => Immortus.verify(info).then(null, (e) => log.push(e.error)));
    assert.deepEqual(log, ['Job failed to create', 'missing job_id']);
    assert.equal(srv.requests.length, 1);
  } finally {
    await srv.close();
  }
});

test('native promises interoperate: await, Promise.resolve, adoption with progress', async () => {
  const seenUrls = {};
  const srv = await serve((req) => {
    seenUrls[req.url] = (seenUrls[req.url] || 0) + 1;
    return seenUrls[req.url] <= 2 ? running(seenUrls[req.url]) : done;
  });
  try {
    const opts = { verifyPath: srv.base, polling: { interval: 10 } };
    assert.deepEqual(await Immortus.verify({ job_id: 'a' }, opts), done.body);
    assert.deepEqual(await Promise.resolve(Immortus.verify({ job_id: 'b' }, opts)), done.body);
    const d = Immortus.defer();
    const result = outcome(d.promise);
    d.resolve(Immortus.verify({ job_id: 'c' }, opts));
    const adopted = await result;
    assert.deepEqual(adopted.fulfilled, done.body);
    assert.equal(adopted.progress.length, 2);
    const seen = [];
    await Immortus.verify({ job_id: 'd' }, opts).progress((p) => seen.push(p.status))
      .finally(() => seen.push('finally'));
    assert.deepEqual(seen, ['started', 'started', 'finally']);
  } finally {
    await srv.close();
  }
});

test('Immortus.status names one of the five states', () => {
  assert.equal(Immortus.status({ status: 'queued', completed: false }), 'queued');
  assert.equal(Immortus.status({ completed: true }), 'finished');
  assert.equal(Immortus.status({ completed: false }), 'started');
  assert.equal(Immortus.status({ failed: true }), 'failed');
  assert.equal(Immortus.status({ job_id: 'x', status: 'unknown', error: 'unknown job' }), 'unknown');
  assert.equal(Immortus.status({ error: 'timeout' }), 'failed');
  assert.equal(Immortus.status(undefined), 'unknown');
  assert.deepEqual(Immortus.STATES, ['queued', 'started', 'finished', 'failed', 'unknown']);
});

test('the ES module exports the same implementation', async () => {
  const mod = await import('../../pyramid_immortus/static/immortus.mjs');
  assert.equal(typeof mod.default.verify, 'function');
  assert.equal(mod.verify, mod.default.verify);
  assert.equal(mod.ImmortusPromise, mod.default.Promise);
});

// A batch verify server: each job id answers running for `steps[id]` polls
// (after which it is done), or with the entry `special[id]`.
function batchResponder(steps, special = {}) {
  const seen = {};
  return (req) => {
    const url = new URL(req.url, 'http://x');
    if (url.searchParams.get('ids') === null) { return { status: 404, body: {} }; }
    const jobs = {};
    for (const id of url.searchParams.get('ids').split(',')) {
      seen[id] = (seen[id] || 0) + 1;
      if (special[id]) {
        jobs[id] = special[id];
      } else if (seen[id] <= (steps[id] || 0)) {
        jobs[id] = { job_id: id, completed: false, status: 'started', code: 200, progress: { current: seen[id] } };
      } else {
        jobs[id] = { job_id: id, completed: true, status: 'finished', code: 200 };
      }
    }
    return { body: { jobs } };
  };
}

test('verifyAll: one request per poll for all jobs, per-job promises and progress', async () => {
  const failed = { job_id: 'c', failed: true, status: 'failed', code: 200, error: 'E: x' };
  const srv = await serve(batchResponder({ a: 1, b: 3 }, { c: failed }));
  try {
    const infos = [{ job_id: 'a' }, { job_id: 'b' }, { job_id: 'c' }];
    const promise = Immortus.verifyAll(infos, { verifyPath: srv.base + '/v', polling: { interval: 20 } });
    const whole = outcome(promise);
    const perJob = await Promise.all(['a', 'b', 'c'].map((id) => outcome(promise.jobs[id])));
    const all = await whole;
    assert.equal(perJob[0].fulfilled.status, 'finished');
    assert.equal(perJob[1].fulfilled.status, 'finished');
    assert.equal(perJob[1].progress.length, 3);
    assert.deepEqual(perJob[2].rejected, failed);
    assert.deepEqual(Object.keys(all.fulfilled.jobs).sort(), ['a', 'b', 'c']);
    assert.equal(all.fulfilled.jobs.c.failed, true);
    assert.equal(all.progress.length, 1 + 3);
    assert.equal(srv.requests[0].url, '/v?ids=a,b,c');
    assert.equal(srv.requests.length, 4);
    assert.equal(srv.requests[3].url, '/v?ids=b');
  } finally {
    await srv.close();
  }
});

test('verifyAll: one request per job_class, batches of batchMax, unknown ids reject', async () => {
  const unknown = { job_id: 'z', status: 'unknown', error: 'unknown job', code: 404 };
  const srv = await serve(batchResponder({}, { z: unknown }));
  try {
    const infos = [{ job_id: 'a', job_class: 'A' }, { job_id: 'b', job_class: 'B' },
      { job_id: 'c', job_class: 'A' }, { job_id: 'd', job_class: 'A' }, { job_id: 'z' }, {}];
    const promise = Immortus.verifyAll(infos, { verifyPath: srv.base + '/v', batchMax: 2 });
    const all = await promise;
    assert.equal(Object.keys(all.jobs).length, 6);
    assert.deepEqual(await outcome(promise.jobs.z), { rejected: unknown, progress: [] });
    assert.deepEqual((await outcome(promise.jobs['missing-5'])).rejected, { error: 'missing job_id' });
    assert.deepEqual(srv.requests.map((r) => r.url).sort(),
      ['/v?ids=a,c&job_class=A', '/v?ids=b&job_class=B', '/v?ids=d&job_class=A', '/v?ids=z']);
  } finally {
    await srv.close();
  }
});

test('verifyAll: 503 is retried, cancel stops everything', async () => {
  let calls = 0;
  const srv = await serve(() => {
    calls += 1;
    return calls === 1 ? { status: 503, body: { error: 'backend unavailable' } } : batchResponder({ a: 100 })({ url: '/v?ids=a' });
  });
  try {
    const promise = Immortus.verifyAll([{ job_id: 'a' }], { verifyPath: srv.base + '/v', polling: { interval: 10 } });
    const job = outcome(promise.jobs.a);
    await sleep(150);
    assert.ok(calls >= 3);
    promise.cancel();
    const cancelledAt = performance.now();
    assert.deepEqual((await job).rejected, { job_id: 'a', error: 'cancelled' });
    assert.deepEqual((await outcome(promise)).rejected, { error: 'cancelled' });
    await assertQuietAfter(srv, cancelledAt);
    assert.deepEqual(await Immortus.verifyAll([]), { jobs: {} });
  } finally {
    await srv.close();
  }
});

test('cancel posts to {verifyPath}/{job_id}/cancel with the CSRF token', async () => {
  const srv = await serve((req) => (req.url.startsWith('/v/ended')
    ? { status: 409, body: { job_id: 'ended', error: 'the job has ended' } }
    : { body: { job_id: 'j1', cancelled: true } }));
  try {
    const answer = await Immortus.cancel({ job_id: 'j1', job_class: 'Slow' },
      { verifyPath: srv.base + '/v', csrfToken: 'tok', csrfCrossOrigin: true });
    assert.deepEqual(answer, { job_id: 'j1', cancelled: true });
    assert.equal(srv.requests[0].method, 'POST');
    assert.equal(srv.requests[0].url, '/v/j1/cancel?job_class=Slow');
    assert.equal(srv.requests[0].headers['x-csrf-token'], 'tok');
    const refused = await outcome(Immortus.cancel({ job_id: 'ended' }, { verifyPath: srv.base + '/v' }));
    assert.deepEqual(refused.rejected, { job_id: 'ended', error: 'the job has ended', status: 409 });
    assert.deepEqual((await outcome(Immortus.cancel({}))).rejected, { error: 'missing job_id' });
  } finally {
    await srv.close();
  }
});

// -- verifyAll: jobs followed on their own verify_job_url ------------------

test('verifyAll: cancelling one verify_job_url job stops its polling loop', async () => {
  const srv = await serve((req) => ({ body: { job_id: req.url.split('/').pop(), completed: false } }));
  try {
    const promise = Immortus.verifyAll([
      { job_id: 's1', verify_job_url: srv.base + '/single/s1' },
      { job_id: 's2', verify_job_url: srv.base + '/single/s2' },
    ], { polling: { interval: 10 } });
    const whole = outcome(promise);
    const s1 = outcome(promise.jobs.s1);
    await sleep(80);
    assert.equal(promise.jobs.s1.cancel(), true);
    const cancelledAt = performance.now();
    assert.deepEqual((await s1).rejected, { job_id: 's1', error: 'cancelled' });
    await sleep(120);
    const late = srv.requests.filter((r) => r.received > cancelledAt + 15);
    assert.deepEqual(late.filter((r) => r.url === '/single/s1').map((r) => r.url), []);
    assert.ok(late.some((r) => r.url === '/single/s2'), 's2 is still followed');
    promise.cancel();
    const stoppedAt = performance.now();
    assert.deepEqual((await whole).rejected, { error: 'cancelled' });
    await assertQuietAfter(srv, stoppedAt);
  } finally {
    await srv.close();
  }
});

test('verifyAll: once it settles, no loop it started polls any more', async () => {
  const srv = await serve(batchResponder({ b: 2 }));
  const single = await serve((req) => ({ body: { job_id: 's', completed: false } }));
  try {
    // the batch job ends; the verify_job_url job is cancelled through a derived promise
    const promise = Immortus.verifyAll([{ job_id: 'b' }, { job_id: 's', verify_job_url: single.base + '/s' }],
      { verifyPath: srv.base + '/v', polling: { interval: 10 } });
    const whole = outcome(promise);
    await outcome(promise.jobs.b);
    promise.jobs.s.then((x) => x).cancel();
    const all = await whole;
    const settledAt = performance.now();
    assert.deepEqual(Object.keys(all.fulfilled.jobs).sort(), ['b', 's']);
    assert.deepEqual(all.fulfilled.jobs.s, { job_id: 's', error: 'cancelled' });
    await assertQuietAfter(single, settledAt);
    await assertQuietAfter(srv, settledAt);
  } finally {
    await srv.close();
    await single.close();
  }
});

test('verifyAll: a timeout rejects verify_job_url jobs with it and stops their loops', async () => {
  const srv = await serve((req) => ({ body: { job_id: 's', completed: false } }));
  try {
    const promise = Immortus.verifyAll([{ job_id: 's', verify_job_url: srv.base + '/s' }],
      { polling: { interval: 10, timeout: 100 } });
    const job = outcome(promise.jobs.s);
    assert.deepEqual((await outcome(promise)).rejected, { error: 'timeout' });
    const settledAt = performance.now();
    assert.deepEqual((await job).rejected, { job_id: 's', error: 'timeout' });
    await assertQuietAfter(srv, settledAt);
  } finally {
    await srv.close();
  }
});

// -- verifyAll: ids the batch request cannot carry --------------------------

test('verifyAll: a job id with a comma rejects at once, the others are followed', async () => {
  const srv = await serve(batchResponder({ c: 1 }));
  try {
    const promise = Immortus.verifyAll([{ job_id: 'a,b' }, { job_id: 'c' }],
      { verifyPath: srv.base + '/v', polling: { interval: 10, timeout: 1500 } });
    const comma = await outcome(promise.jobs['a,b']);
    assert.equal(comma.rejected.job_id, 'a,b');
    assert.match(comma.rejected.error, /^malformed job id/);
    const all = await promise;
    assert.equal(all.jobs.c.status, 'finished');
    assert.equal(all.jobs['a,b'].error, comma.rejected.error);
    assert.deepEqual(srv.requests.map((r) => r.url), ['/v?ids=c', '/v?ids=c']);
  } finally {
    await srv.close();
  }
});

test('verifyAll: a batch answer without an entry for a job rejects that job', async () => {
  const srv = await serve(() => ({ body: { jobs: { a: { job_id: 'a', completed: true, code: 200 } } } }));
  try {
    const promise = Immortus.verifyAll([{ job_id: 'a' }, { job_id: 'gone' }],
      { verifyPath: srv.base + '/v', polling: { interval: 10, timeout: 1500 } });
    const gone = await outcome(promise.jobs.gone);
    assert.equal(gone.rejected.job_id, 'gone');
    assert.match(gone.rejected.error, /no entry/);
    assert.equal((await promise).jobs.a.completed, true);
    assert.equal(srv.requests.length, 1);
  } finally {
    await srv.close();
  }
});

// -- answers that are not JSON ---------------------------------------------

const html = (status) => ({ status, type: 'text/html', body: `<html><body>${status}</body></html>` });

test('verify: a non-JSON error page rejects with {job_id, error, status}', async () => {
  for (const status of [404, 500]) {
    const srv = await serve(() => html(status));
    try {
      const result = await outcome(Immortus.verify({ job_id: 'j1' }, { verifyPath: srv.base }));
      assert.deepEqual(result.rejected, { job_id: 'j1', error: `HTTP ${status}: the answer is not JSON`, status });
      assert.equal(Immortus.status(result.rejected), 'failed');
      assert.equal(srv.requests.length, 1);
    } finally {
      await srv.close();
    }
  }
});

test("verify: a proxy's HTML 502 that persists rejects with {job_id, error, status}", async () => {
  const srv = await serve(() => html(502));
  try {
    const result = await outcome(Immortus.verify({ job_id: 'j1' },
      { verifyPath: srv.base, polling: { interval: 5, retries: 1 } }));
    assert.deepEqual(result.rejected, { job_id: 'j1', error: 'HTTP 502: the answer is not JSON', status: 502 });
    assert.equal(srv.requests.length, 2);
  } finally {
    await srv.close();
  }
});

test('verify: a JSON error body is kept, with the HTTP status added when it has none', async () => {
  const srv = await serve((req) => (req.url === '/forbidden'
    ? { status: 403, body: { job_id: 'j1', error: 'forbidden' } }
    : { status: 404, body: { job_id: 'j1', status: 'unknown', error: 'unknown job' } }));
  try {
    const forbidden = await outcome(Immortus.verify({ job_id: 'j1', verify_job_url: srv.base + '/forbidden' }));
    assert.deepEqual(forbidden.rejected, { job_id: 'j1', error: 'forbidden', status: 403 });
    const unknown = await outcome(Immortus.verify({ job_id: 'j1', verify_job_url: srv.base + '/unknown' }));
    assert.deepEqual(unknown.rejected, { job_id: 'j1', status: 'unknown', error: 'unknown job' });
  } finally {
    await srv.close();
  }
});

test('verifyAll: a non-JSON batch answer rejects each job with {job_id, error, status}', async () => {
  const srv = await serve((req) => (req.url.startsWith('/bad') ? html(500) : html(502)));
  try {
    const promise = Immortus.verifyAll([{ job_id: 'a' }, { job_id: 'b' }], { verifyPath: srv.base + '/bad' });
    const all = await promise;
    assert.deepEqual(all.jobs.a, { job_id: 'a', error: 'HTTP 500: the answer is not JSON', status: 500 });
    assert.deepEqual((await outcome(promise.jobs.b)).rejected,
      { job_id: 'b', error: 'HTTP 500: the answer is not JSON', status: 500 });
    const proxied = Immortus.verifyAll([{ job_id: 'a' }],
      { verifyPath: srv.base + '/proxy', polling: { interval: 5, retries: 1 } });
    assert.deepEqual((await outcome(proxied)).rejected, { error: 'HTTP 502: the answer is not JSON', status: 502 });
    assert.deepEqual((await outcome(proxied.jobs.a)).rejected,
      { job_id: 'a', error: 'HTTP 502: the answer is not JSON', status: 502 });
  } finally {
    await srv.close();
  }
});

test('create and cancel: a non-JSON error page rejects with {error, status}', async () => {
  const srv = await serve((req) => {
    if (req.url === '/json') { return { status: 500, body: {} }; }
    return html(req.url === '/v/j1/cancel' ? 404 : 500);
  });
  try {
    assert.deepEqual((await outcome(Immortus.create(srv.base + '/create'))).rejected,
      { error: 'HTTP 500: the answer is not JSON', status: 500 });
    assert.deepEqual((await outcome(Immortus.cancel({ job_id: 'j1' }, { verifyPath: srv.base + '/v' }))).rejected,
      { error: 'HTTP 404: the answer is not JSON', status: 404 });
    // the renderer's 500 {} keeps its (empty) body, plus the status
    assert.deepEqual((await outcome(Immortus.create(srv.base + '/json'))).rejected, { status: 500 });
  } finally {
    await srv.close();
  }
});

// -- the CSRF token goes only to the page's own origin ----------------------

test('outside a browser, the CSRF token is not sent to an absolute URL unless csrfCrossOrigin', async () => {
  const srv = await serve((req) => ({ body: { job_id: 'j1', cancelled: true } }));
  try {
    await Immortus.create(srv.base + '/create', { data: {}, csrfToken: 'tok' });
    await Immortus.cancel({ job_id: 'j1' }, { verifyPath: srv.base + '/v', csrfToken: 'tok' });
    assert.deepEqual(srv.requests.map((r) => r.headers['x-csrf-token']), [undefined, undefined]);
    await Immortus.create(srv.base + '/create', { csrfToken: 'tok', csrfCrossOrigin: true });
    await Immortus.cancel({ job_id: 'j1' }, { verifyPath: srv.base + '/v', csrfToken: 'tok', csrfCrossOrigin: true });
    assert.deepEqual(srv.requests.slice(2).map((r) => r.headers['x-csrf-token']), ['tok', 'tok']);
  } finally {
    await srv.close();
  }
});

test('verifyAll: when retries run out, each job rejects with its own job_id', async () => {
  const srv = await serve(batchResponder({ b: 100 },
    { a: { job_id: 'a', error: 'backend unavailable', code: 503 } }));
  try {
    const promise = Immortus.verifyAll([{ job_id: 'a' }, { job_id: 'b' }],
      { verifyPath: srv.base + '/v', polling: { interval: 5, retries: 1 } });
    const [a, b] = await Promise.all([outcome(promise.jobs.a), outcome(promise.jobs.b)]);
    assert.deepEqual(a.rejected, { job_id: 'a', error: 'backend unavailable', code: 503 });
    assert.deepEqual(b.rejected, { job_id: 'b', error: 'backend unavailable', code: 503 });
  } finally {
    await srv.close();
  }
});

test('outside a browser, only a relative URL that stays relative gets the CSRF token', async () => {
  // what fetch is handed, observed (fetch itself runs, and fails on a relative URL)
  const sent = {};
  const realFetch = globalThis.fetch;
  globalThis.fetch = (url, init) => {
    sent[url] = init.headers['X-CSRF-Token'];
    return realFetch(url, init);
  };
  try {
    const host = `127.0.0.1:${await closedPort()}`;
    const urls = ['/create', 'create', `//${host}/create`, ` //${host}/create`,
      `/\\${host}/create`, `/\t/${host}/create`, `http://${host}/create`];
    for (const url of urls) { await outcome(Immortus.create(url, { csrfToken: 'tok' })); }
    assert.deepEqual(urls.map((url) => sent[url]), ['tok', 'tok', undefined, undefined, undefined, undefined, undefined]);
  } finally {
    globalThis.fetch = realFetch;
  }
});
