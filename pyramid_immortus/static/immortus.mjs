// The ES module form of immortus.js: `import Immortus from './immortus.mjs'`.
// One implementation: this runs immortus.js and exports what it made, never
// a globalThis.Immortus that was there before (another copy, a page global).
// Node and bundlers load immortus.js as CommonJS (its module.exports is the
// default export here); a browser runs it as a module with no exports, and
// it leaves its implementation under Symbol.for('pyramid_immortus').
import * as loaded from './immortus.js';

const Immortus = (loaded && loaded.default && typeof loaded.default.verify === 'function')
  ? loaded.default
  : globalThis[Symbol.for('pyramid_immortus')];

export default Immortus;
export const { create, verify, verifyAll, cancel, status, defer, defaults } = Immortus;
export const ImmortusPromise = Immortus.Promise;
