#!/usr/bin/env node
// The `dsa` command. Runs the compiled CLI from dist/ (built by `npm run build`,
// which `npm install` runs through the `prepare` script).
try {
  await import('../dist/cli/main.js');
} catch (err) {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/cli/main.js')) {
    process.stderr.write('dsa: dist/ is missing; run `npm run build` (npm install runs it) first\n');
    process.exitCode = 2;
  } else {
    throw err;
  }
}
