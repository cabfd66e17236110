// node tests/js/poll.js BASE_URL JOB_ID [INTERVAL_MS] [RETRIES]
// Follows one job with Immortus.verify (the real fetch, observed, not
// replaced) and prints {outcome, value, statuses, progress} as JSON.
const Immortus = require('../../pyramid_immortus/static/immortus.js');

const [base, jobId, interval = '200', retries = '5'] = process.argv.slice(2);
const statuses = [];
const realFetch = globalThis.fetch;
globalThis.fetch = (...args) => realFetch(...args).then((response) => {
  statuses.push(response.status);
  return response;
}, (error) => {
  statuses.push('network error');
  throw error;
});

let progress = 0;
Immortus.verify({ job_id: jobId }, {
  verifyPath: base + '/immortus/verify',
  polling: { interval: Number(interval), retries: Number(retries), maxBackoff: 1000 },
}).then(
  (value) => ({ outcome: 'fulfilled', value }),
  (value) => ({ outcome: 'rejected', value }),
  () => { progress += 1; },
).then((result) => {
  process.stdout.write(JSON.stringify({ ...result, statuses, progress }) + '\n');
});
