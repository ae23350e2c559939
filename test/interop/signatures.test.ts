// The signature table covers the public edge: every export of dsa-ts is
// either wrapped or listed as taking no tensor, every createPool() op is
// wrapped, and each signature's options position holds an options slot.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { GPU_SIGNATURES, NO_TENSORS, POOL_SIGNATURES, SIGNATURES, type Signature } from '../../src/interop/signatures.js';
import * as wrapped from '../../src/interop/index.js';
import { createPool } from '../../src/pool/index.js';

/** The value exports of src/index.ts, read from its text (tests do not import the entry). */
function entryExports(): string[] {
  const text = readFileSync(new URL('../../src/index.ts', import.meta.url), 'utf8');
  const names: string[] = [];
  for (const m of text.matchAll(/^export\s+\{([^}]*)\}\s+from/gm)) {
    for (const part of m[1].split(',')) {
      const name = part.trim().split(/\s+as\s+/).pop()!.trim();
      if (name && !name.startsWith('type ')) names.push(name);
    }
  }
  return names;
}

test('every value export of dsa-ts is wrapped (src/interop/index.ts) or listed in NO_TENSORS', () => {
  const names = entryExports();
  assert.ok(names.length > 30, `read only ${names.length} exports`);
  const missing = names.filter((n) => !(n in SIGNATURES) && !(n in NO_TENSORS));
  assert.deepEqual(missing, [], 'exports in neither table: give each a signature in src/interop/signatures.ts (and a wrapped export in src/interop/index.ts), or a line in NO_TENSORS');
  for (const n of Object.keys(SIGNATURES)) {
    assert.equal(typeof (wrapped as Record<string, unknown>)[n], 'function', `src/interop/index.ts exports a wrapped ${n}`);
  }
  assert.equal(typeof wrapped.createDsaCache, 'function');
});

test('every createPool() op has a signature, and the pool\'s ops are the wrapped ones', async () => {
  const pool = createPool({ threads: 1 });
  try {
    const ops = Object.entries(pool).filter(([n, v]) => typeof v === 'function' && n !== 'close').map(([n]) => n).sort();
    assert.deepEqual(ops, Object.keys(POOL_SIGNATURES).sort(), 'every pool op needs a line in POOL_SIGNATURES (src/interop/signatures.ts)');
    await assert.rejects(pool.topk({ data: new Float32Array(2), shape: [1, 1, 2] }, 1, { output: 'ort' } as never), /^TypeError: output: expected the onnxruntime module/);
  } finally {
    await pool.close();
  }
});

test('each signature names its arguments, and its options position is an options slot', () => {
  const all: [string, Signature][] = [...Object.entries(SIGNATURES), ...Object.entries(POOL_SIGNATURES), ...Object.entries(GPU_SIGNATURES)];
  for (const [op, sig] of all) {
    assert.ok(sig.args.every(([name]) => /^[a-zA-Z]+$/.test(name)), op);
    if (sig.options !== null) {
      assert.ok(sig.options < sig.args.length, `${op}: options at ${sig.options}`);
      assert.ok(sig.args[sig.options][1]?.fields !== undefined, `${op}: the options slot has fields`);
    }
  }
});
