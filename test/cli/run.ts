/**
 * Runs the `dsa` CLI for tests: `dsa(...)` in this process (fast, the same
 * program the executable runs), `dsaProcess(...)` as a real child process
 * from the sources (no build needed), for exit codes and streams.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runCli } from '../../src/cli/program.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export async function dsa(...args: string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, { out: (s) => void (stdout += s), err: (s) => void (stderr += s), isTTY: false });
  return { code, stdout, stderr };
}

export function dsaProcess(entry: 'src' | 'bin', ...args: string[]): Promise<CliResult> {
  const command = entry === 'src' ? ['--import', 'tsx', 'src/cli/main.ts'] : ['bin/dsa.js'];
  return new Promise((resolve) => {
    execFile(process.execPath, [...command, ...args], { cwd: root, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}
