// immortus.js following jobs over the real events gateway (immortus-events)
// and a real Pyramid app; tests/test_events_js.py starts both and passes
// their URLs in IMMORTUS_WEB_URL and IMMORTUS_EVENTS_URL.
const test = require('node:test');
const assert = require('node:assert');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const Immortus = require('../../pyramid_immortus/static/immortus.js');
const NodeEventSource = require('./events-eventsource.js');

const WEB = process.env.IMMORTUS_WEB_URL;
const EVENTS = process.env.IMMORTUS_EVENTS_URL;

async function closedPort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function outcome(promise) {
  const progress = [];
  return new Promise((resolve) => {
    promise.then((value) => resolve({ fulfilled: value, progress }),
      (reason) => resolve({ rejected: reason, progress }),
      (p) => progress.push(p));
  });
}

function create(args) {
  return Immortus.create(`${WEB}/create/Steps`, { data: { args } });
}

async function pushOptions() {
  // polling could only fail: whatever resolves came over the stream
  return { eventsUrl: EVENTS, EventSource: NodeEventSource,
    verifyPath: `http://127.0.0.1:${await closedPort()}/immortus/verify`,
    polling: { interval: 50, retries: 1 } };
}

test('the URLs of the servers are given', () => {
  assert.ok(WEB && EVENTS, 'run through tests/test_events_js.py');
});

test('verify follows a job over one stream: progress, then completed', async () => {
  const job = await create([0.6, 3]);
  const before = NodeEventSource.opened.length;
  const result = await outcome(Immortus.verify(job, await pushOptions()));
  assert.equal(result.fulfilled.completed, true);
  assert.equal(result.fulfilled.status, 'finished');
  assert.equal(result.fulfilled.job_id, job.job_id);
  assert.equal(result.fulfilled.code, undefined);  // the shape polling gives
  assert.ok(result.progress.length >= 1, JSON.stringify(result.progress));
  assert.ok(result.progress.every((p) => p.job_id === job.job_id && p.completed === false));
  assert.equal(NodeEventSource.opened.length - before, 1);
  assert.equal(NodeEventSource.opened[before].readyState, 2);  // closed at the end
});

test('verify rejects a failed job and an unknown one', async () => {
  const job = await create([0.1, 1, 'disk full']);
  const failed = await outcome(Immortus.verify(job, await pushOptions()));
  assert.equal(failed.rejected.failed, true);
  assert.equal(failed.rejected.error, 'RuntimeError: disk full');
  const unknown = await outcome(Immortus.verify({ job_id: 'never-seen' }, await pushOptions()));
  assert.deepEqual(unknown.rejected, { job_id: 'never-seen', status: 'unknown', error: 'unknown job' });
  const malformed = await outcome(Immortus.verify({ job_id: 'bad id!' }, await pushOptions()));
  assert.deepEqual(malformed.rejected, { job_id: 'bad id!', error: 'malformed job id', status: 400 });
});

test('verifyAll follows every job over a single stream', async () => {
  const jobs = [await create([0.3, 2]), await create([0.5, 2]), await create([0.1, 1, 'no'])];
  const before = NodeEventSource.opened.length;
  const promise = Immortus.verifyAll(jobs, await pushOptions());
  const own = await outcome(promise.jobs[jobs[2].job_id]);
  const all = await outcome(promise);
  assert.equal(NodeEventSource.opened.length - before, 1);
  assert.equal(own.rejected.failed, true);
  assert.ok(all.fulfilled);
  assert.deepEqual(Object.keys(all.fulfilled.jobs).sort(), jobs.map((j) => j.job_id).sort());
  assert.equal(all.fulfilled.jobs[jobs[0].job_id].completed, true);
  assert.equal(all.fulfilled.jobs[jobs[0].job_id].code, 200);
  assert.ok(all.progress.every((p) => jobs.some((j) => j.job_id === p.job_id)));
});

test('a gateway that does not answer: verify and verifyAll poll instead', async () => {
  const dead = `http://127.0.0.1:${await closedPort()}/immortus/events`;
  const options = { eventsUrl: dead, EventSource: NodeEventSource, verifyPath: `${WEB}/immortus/verify`,
    polling: { interval: 50 } };
  const job = await create([0.2, 2]);
  const one = await outcome(Immortus.verify(job, options));
  assert.equal(one.fulfilled.completed, true);
  const jobs = [await create([0.2, 2]), await create([0.1, 1])];
  const all = await outcome(Immortus.verifyAll(jobs, options));
  assert.equal(Object.values(all.fulfilled.jobs).filter((e) => e.completed).length, 2, JSON.stringify(all));
});

test('without an EventSource the client polls, and without eventsUrl nothing changes', async () => {
  const job = await create([0.1, 1]);
  assert.equal(typeof globalThis.EventSource, 'undefined');
  const before = NodeEventSource.opened.length;
  const polled = await outcome(Immortus.verify(job, { eventsUrl: EVENTS, verifyPath: `${WEB}/immortus/verify`,
    polling: { interval: 50 } }));
  assert.equal(polled.fulfilled.completed, true);
  const plain = await outcome(Immortus.verify(job, { EventSource: NodeEventSource,
    verifyPath: `${WEB}/immortus/verify` }));
  assert.equal(plain.fulfilled.completed, true);
  assert.equal(NodeEventSource.opened.length, before);
});

test('cancel() closes the stream', async () => {
  const job = await create([3, 3]);
  const before = NodeEventSource.opened.length;
  const promise = Immortus.verify(job, await pushOptions());
  await new Promise((resolve) => promise.progress(resolve));
  assert.equal(promise.cancel(), true);
  const result = await outcome(promise);
  assert.deepEqual(result.rejected, { job_id: job.job_id, error: 'cancelled' });
  assert.equal(NodeEventSource.opened[before].readyState, 2);
});

test('a stream that drops after its first event is reopened with backoff', async () => {
  const opens = [];
  const server = http.createServer((req, res) => {
    opens.push({ url: req.url, at: performance.now() });
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    if (opens.length === 1) {
      res.write('event: job\ndata: {"job_id": "a", "code": 200, "completed": false, "status": "started"}\n\n');
      setTimeout(() => res.destroy(), 30);
    } else {
      res.end('event: job\ndata: {"job_id": "a", "code": 200, "completed": true, "status": "finished"}\n\n' +
        'event: end\ndata: {}\n\n');
    }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const result = await outcome(Immortus.verify({ job_id: 'a' }, {
      eventsUrl: `http://127.0.0.1:${server.address().port}/ev`, EventSource: NodeEventSource,
      verifyPath: `http://127.0.0.1:${await closedPort()}/v`, polling: { interval: 100, retries: 2 } }));
    assert.equal(result.fulfilled.status, 'finished');
    assert.deepEqual(result.progress.map((p) => p.status), ['started']);
    assert.equal(opens.length, 2);
    assert.equal(opens[1].url, '/ev?ids=a');
    assert.ok(opens[1].at - opens[0].at >= 150, 'reopened after a backoff');
  } finally {
    server.closeAllConnections();
    server.close();
  }
});

test('the declarations type-check a usage of the push options', () => {
  const tsc = path.join(__dirname, 'node_modules', 'typescript', 'bin', 'tsc');
  const output = execFileSync(process.execPath, [tsc, '--noEmit', '--strict', '--target', 'es2020',
    '--module', 'esnext', '--moduleResolution', 'bundler', '--lib', 'es2020,dom',
    path.join(__dirname, 'events-types-usage.ts')], { encoding: 'utf8' });
  assert.equal(output, '');
});
