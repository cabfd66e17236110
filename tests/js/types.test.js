// immortus.d.ts compiles, strictly, against a usage of every public name.
const test = require('node:test');
const assert = require('node:assert');
const { execFileSync } = require('node:child_process');
const path = require('node:path');

test('immortus.d.ts type-checks a usage of the API', () => {
  const tsc = path.join(__dirname, 'node_modules', 'typescript', 'bin', 'tsc');
  const output = execFileSync(process.execPath, [tsc, '--noEmit', '--strict', '--target', 'es2020',
    '--module', 'esnext', '--moduleResolution', 'bundler', '--lib', 'es2020,dom',
    path.join(__dirname, 'types-usage.ts')], { encoding: 'utf8' });
  assert.equal(output, '');
});

test('a misuse is a type error', () => {
  const fs = require('node:fs');
  const os = require('node:os');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'immortus-types-'));
  const file = path.join(dir, 'bad.ts');
  const decl = path.join(__dirname, '..', '..', 'pyramid_immortus', 'static', 'immortus');
  fs.writeFileSync(file, `import Immortus from '${decl}';\nImmortus.verify('not-a-job-info');\n`);
  const tsc = path.join(__dirname, 'node_modules', 'typescript', 'bin', 'tsc');
  assert.throws(() => execFileSync(process.execPath, [tsc, '--noEmit', '--strict',
    '--moduleResolution', 'bundler', '--module', 'esnext', file], { encoding: 'utf8' }));
  fs.rmSync(dir, { recursive: true });
});

test('a result is JSON data, not any', () => {
  const fs = require('node:fs');
  const os = require('node:os');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'immortus-types-'));
  const file = path.join(dir, 'result.ts');
  const decl = path.join(__dirname, '..', '..', 'pyramid_immortus', 'static', 'immortus');
  fs.writeFileSync(file, `import Immortus from '${decl}';\n` +
    `Immortus.verify({ job_id: 'x' }).then((done) => { const text: string = done.result; return text; });\n`);
  const tsc = path.join(__dirname, 'node_modules', 'typescript', 'bin', 'tsc');
  let output = '';
  try {
    execFileSync(process.execPath, [tsc, '--noEmit', '--strict', '--moduleResolution', 'bundler',
      '--module', 'esnext', file], { encoding: 'utf8' });
  } catch (error) {
    output = error.stdout;
  }
  fs.rmSync(dir, { recursive: true });
  assert.match(output, /error TS2322: Type 'JsonValue \| undefined' is not assignable to type 'string'/);
});
