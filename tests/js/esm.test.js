// immortus.mjs exports its own implementation, whatever globalThis.Immortus
// already is (another version loaded earlier, or a page's own global).
// A file of its own: node --test runs it in a fresh process, so the module
// is evaluated here, after the global is set.
const test = require('node:test');
const assert = require('node:assert');

test('the ES module ignores a pre-existing globalThis.Immortus', async () => {
  const fake = { fake: true, version: '0.0.1-old', verify: () => 'not this one' };
  globalThis.Immortus = fake;
  const mod = await import('../../pyramid_immortus/static/immortus.mjs');
  const Immortus = require('../../pyramid_immortus/static/immortus.js');
  assert.notEqual(mod.default, fake);
  assert.equal(mod.default.fake, undefined);
  assert.equal(mod.default, Immortus, 'import and require() share one implementation');
  assert.equal(typeof mod.default.verify, 'function');
  assert.equal(mod.verify, Immortus.verify);
  assert.equal(mod.create, Immortus.create);
  assert.equal(mod.ImmortusPromise, Immortus.Promise);
  assert.equal(globalThis.Immortus, fake, 'the page global is left alone');
});
