import { test } from 'node:test';
import assert from 'node:assert/strict';
import { linkSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { decodeNpy, encodeNpy } from '../../src/io/npy.js';
import { scratch } from '../helpers/numpy.js';
import { dsa, dsaProcess } from './run.js';

/** Every file under `dir` with its bytes, a symlink as its target, for "nothing was touched". */
function snapshot(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name);
    if (entry.isSymbolicLink()) files.set(relative(dir, path), `-> ${readlinkSync(path)}`);
    else if (entry.isFile()) files.set(relative(dir, path), readFileSync(path).toString('hex'));
  }
  return files;
}

/**
 * A folder with idx.npy (indices [1, 4, 3] int32), scores.npy and values.npy
 * (float32 [1, 4, 8] and [1, 4, 3]), hard links to idx.npy and values.npy, a
 * symlink to idx.npy, old.npy (an existing file no input names) and a symlink
 * to it, and sub/up, a symlink to the folder itself.
 */
function inputs() {
  const tmp = scratch();
  const f = tmp.file.bind(tmp);
  writeFileSync(f('idx.npy'), encodeNpy({ data: Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7, 0, -1, 7, 3]), shape: [1, 4, 3] }));
  writeFileSync(f('scores.npy'), encodeNpy({ data: Float32Array.from({ length: 32 }, (_, i) => (i * 7) % 11), shape: [1, 4, 8] }));
  writeFileSync(f('values.npy'), encodeNpy({ data: Float32Array.from({ length: 12 }, () => 5), shape: [1, 4, 3] }));
  writeFileSync(f('old.npy'), 'not an input');
  linkSync(f('idx.npy'), f('hard.npy'));
  linkSync(f('values.npy'), f('values-link.npy'));
  symlinkSync('idx.npy', f('sym.npy'));
  symlinkSync('old.npy', f('sym-old.npy'));
  mkdirSync(f('sub'));
  symlinkSync(tmp.dir, f('sub/up'));
  // The input as a relative path from the working directory, as a user types it.
  const rel = (name: string) => relative(process.cwd(), f(name));
  return { tmp, f, rel };
}

/** `f(name)`: the file's absolute path; `rel(name)`: relative to the working directory. */
type Paths = (name: string) => string;

/** A command line and the one line it must print, both built from the scratch folder's paths. */
interface Case {
  name: string;
  args(f: Paths, rel: Paths): string[];
  stderr(f: Paths, rel: Paths): string;
}

const CASES: Case[] = [
  {
    name: 'mask --out is --indices, the same relative path',
    args: (_, rel) => ['mask', '--indices', rel('idx.npy'), '--seq-len', '8', '--form', 'bool', '--out', rel('idx.npy')],
    stderr: (_, rel) => `dsa mask: --out is the same file as --indices (${rel('idx.npy')}): refusing to overwrite an input\n`,
  },
  {
    name: 'mask --out is --indices, spelled ./',
    args: (_, rel) => ['mask', '--indices', rel('idx.npy'), '--seq-len', '8', '--out', `./${rel('idx.npy')}`],
    stderr: (_, rel) => `dsa mask: --out is the same file as --indices (./${rel('idx.npy')} and ${rel('idx.npy')}): refusing to overwrite an input\n`,
  },
  {
    name: 'mask --out is --indices, spelled absolute',
    args: (f, rel) => ['mask', '--indices', rel('idx.npy'), '--seq-len', '8', '--out', f('idx.npy')],
    stderr: (f, rel) => `dsa mask: --out is the same file as --indices (${f('idx.npy')} and ${rel('idx.npy')}): refusing to overwrite an input\n`,
  },
  {
    name: 'mask --out is --indices through a symlinked folder',
    args: (f) => ['mask', '--indices', f('idx.npy'), '--seq-len', '8', '--out', f('sub/up/idx.npy')],
    stderr: (f) => `dsa mask: --out is the same file as --indices (${f('sub/up/idx.npy')} and ${f('idx.npy')}): refusing to overwrite an input\n`,
  },
  {
    name: 'mask --out is a hard link to --indices',
    args: (f) => ['mask', '--indices', f('idx.npy'), '--seq-len', '8', '--out', f('hard.npy')],
    stderr: (f) => `dsa mask: --out is the same file as --indices (${f('hard.npy')} and ${f('idx.npy')}): refusing to overwrite an input\n`,
  },
  {
    name: 'mask --out is a symlink to --indices',
    args: (f) => ['mask', '--indices', f('idx.npy'), '--seq-len', '8', '--form', 'bits', '--out', f('sym.npy')],
    stderr: (f) => `dsa mask: --out is the same file as --indices (${f('sym.npy')} and ${f('idx.npy')}): refusing to overwrite an input\n`,
  },
  {
    name: 'mask --indices is a symlink, --out its target',
    args: (f) => ['mask', '--indices', f('sym.npy'), '--seq-len', '8', '--out', f('idx.npy')],
    stderr: (f) => `dsa mask: --out is the same file as --indices (${f('idx.npy')} and ${f('sym.npy')}): refusing to overwrite an input\n`,
  },
  {
    name: 'topk --out-indices is --scores',
    args: (f) => ['topk', '--scores', f('scores.npy'), '--k', '3', '--out-indices', f('scores.npy'), '--out-values', f('v.npy')],
    stderr: (f) => `dsa topk: --out-indices is the same file as --scores (${f('scores.npy')}): refusing to overwrite an input\n`,
  },
  {
    name: 'topk --out-values is --scores, spelled ./',
    args: (_, rel) => ['topk', '--scores', rel('scores.npy'), '--k', '3', '--out-indices', rel('i.npy'), '--out-values', `./${rel('scores.npy')}`],
    stderr: (_, rel) => `dsa topk: --out-values is the same file as --scores (./${rel('scores.npy')} and ${rel('scores.npy')}): refusing to overwrite an input\n`,
  },
  {
    name: 'topk --out-indices and --out-values the same new path',
    args: (f) => ['topk', '--scores', f('scores.npy'), '--k', '3', '--out-indices', f('x.npy'), '--out-values', f('x.npy')],
    stderr: (f) => `dsa topk: --out-values is the same file as --out-indices (${f('x.npy')}): refusing to write two outputs to one file\n`,
  },
  {
    name: 'topk --out-indices and --out-values one new path, spelled ./ and through a symlinked folder',
    args: (f, rel) => ['topk', '--scores', f('scores.npy'), '--k', '3', '--out-indices', `./${rel('x.npy')}`, '--out-values', f('sub/up/x.npy')],
    stderr: (f, rel) => `dsa topk: --out-values is the same file as --out-indices (${f('sub/up/x.npy')} and ./${rel('x.npy')}): refusing to write two outputs to one file\n`,
  },
  {
    name: 'topk --out-indices an existing file, --out-values a symlink to it',
    args: (f) => ['topk', '--scores', f('scores.npy'), '--k', '3', '--out-indices', f('old.npy'), '--out-values', f('sym-old.npy')],
    stderr: (f) => `dsa topk: --out-values is the same file as --out-indices (${f('sym-old.npy')} and ${f('old.npy')}): refusing to write two outputs to one file\n`,
  },
  {
    name: 'threshold --out is --scores',
    args: (f) => ['threshold', '--scores', f('scores.npy'), '--values', f('values.npy'), '--out', f('scores.npy')],
    stderr: (f) => `dsa threshold: --out is the same file as --scores (${f('scores.npy')}): refusing to overwrite an input\n`,
  },
  {
    name: 'threshold --out is a hard link to --values',
    args: (f) => ['threshold', '--scores', f('scores.npy'), '--values', f('values.npy'), '--out', f('values-link.npy')],
    stderr: (f) => `dsa threshold: --out is the same file as --values (${f('values-link.npy')} and ${f('values.npy')}): refusing to overwrite an input\n`,
  },
  {
    name: 'demo --json is --report',
    args: (f) => ['demo', '--t', '4', '--s', '64', '--k', '8', '--h', '2', '--d', '8', '--sweep', 'none', '--threads', '1', '--report', f('r.html'), '--json', f('sub/up/r.html')],
    stderr: (f) => `dsa demo: --json is the same file as --report (${f('sub/up/r.html')} and ${f('r.html')}): refusing to write two outputs to one file\n`,
  },
];

for (const c of CASES) {
  test(`dsa refuses an output that is an input or another output, exit code 2, every file untouched: ${c.name}`, async () => {
    const { tmp, f, rel } = inputs();
    try {
      const args = c.args(f, rel);
      const before = snapshot(tmp.dir);
      const r = await dsa(...args);
      assert.deepEqual([r.code, r.stdout, r.stderr], [2, '', c.stderr(f, rel)]);
      // The same files with the same bytes: no input replaced, no output or temporary file left.
      assert.deepEqual(snapshot(tmp.dir), before);
    } finally {
      tmp.done();
    }
  });
}

test('dsa mask --indices idx.npy --out idx.npy, as a process: exit code 2, one line naming both flags, idx.npy unchanged', async () => {
  const { tmp, f } = inputs();
  try {
    const before = snapshot(tmp.dir);
    const r = await dsaProcess('src', 'mask', '--indices', f('idx.npy'), '--seq-len', '64', '--form', 'bool', '--out', f('idx.npy'));
    assert.deepEqual([r.code, r.stdout, r.stderr], [2, '', `dsa mask: --out is the same file as --indices (${f('idx.npy')}): refusing to overwrite an input\n`]);
    assert.deepEqual(snapshot(tmp.dir), before);
  } finally {
    tmp.done();
  }
});

test('dsa mask --out a symlink to a file no input names: the link is replaced by the mask, its target untouched', async () => {
  const { tmp, f } = inputs();
  try {
    const r = await dsa('mask', '--indices', f('sym.npy'), '--seq-len', '8', '--form', 'bool', '--out', f('sym-old.npy'));
    assert.deepEqual([r.code, r.stderr], [0, '']);
    assert.equal(readFileSync(f('old.npy'), 'utf8'), 'not an input');
    assert.throws(() => readlinkSync(f('sym-old.npy')), { code: 'EINVAL' }); // a file now, no longer a link
    const mask = decodeNpy(readFileSync(f('sym-old.npy')));
    assert.deepEqual([mask.dtype, mask.shape, [...mask.data.subarray(0, 8)]], ['bool', [1, 4, 8], [1, 1, 1, 0, 0, 0, 0, 0]]);
  } finally {
    tmp.done();
  }
});
