// The official Promises/A+ compliance suite against Immortus.Promise.
const test = require('node:test');
const assert = require('node:assert');
const promisesAplusTests = require('promises-aplus-tests');
const Immortus = require('../../pyramid_immortus/static/immortus.js');

const adapter = {
  resolved: (value) => Immortus.Promise.resolve(value),
  rejected: (reason) => Immortus.Promise.reject(reason),
  deferred: () => Immortus.defer(),
};

test('Immortus.Promise passes the Promises/A+ compliance suite', { timeout: 120000 }, async () => {
  const failures = await new Promise((resolve) => {
    promisesAplusTests(adapter, { reporter: 'dot' }, (err) => resolve(err));
  });
  assert.equal(failures, null, `Promises/A+ failures: ${failures && failures.failures}`);
});
