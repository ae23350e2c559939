/** The `dsa` executable: runs the program on this process's arguments and streams. */
import { removePendingNpyFiles } from '../io/npy-file.js';
import { runCli } from './program.js';

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    removePendingNpyFiles();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}

process.exitCode = await runCli(process.argv.slice(2), {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  isTTY: Boolean(process.stderr.isTTY),
});
