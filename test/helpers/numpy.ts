/**
 * Runs Python with NumPy as a real client of the .npy files and the CLI:
 * `numpy(code)` runs `code` with `np` imported and returns its stdout.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function numpy(code: string): string {
  const r = spawnSync('python3', ['-c', `import numpy as np\n${code}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python3 failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** A fresh temporary folder, removed by the returned `done()`. */
export function scratch(): { dir: string; file(name: string): string; done(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'dsa-test-'));
  return { dir, file: (name) => join(dir, name), done: () => rmSync(dir, { recursive: true, force: true }) };
}
