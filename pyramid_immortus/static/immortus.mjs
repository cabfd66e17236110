// The ES module form of immortus.js: `import Immortus from './immortus.mjs'`.
// It runs immortus.js (one implementation) and re-exports what it defines.
import './immortus.js';

const Immortus = globalThis.Immortus;

export default Immortus;
export const { create, verify, verifyAll, cancel, status, defer, defaults } = Immortus;
export const ImmortusPromise = Immortus.Promise;
