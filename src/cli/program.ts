/**
 * The `dsa` program, runnable in-process: `runCli(args, io)` parses, runs
 * one command and returns the exit code (0 success, 1 a `check` mismatch
 * or a `compare` difference,
 * 2 bad usage or input, reported as one line; no output file left behind).
 */
import { Command, CommanderError } from 'commander';
import { removePendingNpyFiles } from '../io/npy-file.js';
import { maskCommand } from './mask.js';
import { checkCommand } from './check.js';
import { compareCommand } from './compare.js';
import { thresholdCommand } from './threshold.js';
import { topkCommand } from './topk.js';
import { demoCommand } from './demo-command.js';
import type { CliContext, CliIo } from './context.js';

export function buildProgram(ctx: CliContext): Command {
  const program = new Command('dsa')
    .description('DeepSeek Sparse Attention: masks, top-k and the whole pipeline, reading and writing NumPy .npy files')
    .showSuggestionAfterError();
  for (const command of [maskCommand(ctx), checkCommand(ctx), compareCommand(ctx), topkCommand(ctx), thresholdCommand(ctx), demoCommand(ctx)]) program.addCommand(command);
  const output = { writeOut: (s: string) => ctx.io.out(s), writeErr: (s: string) => ctx.io.err(s), outputError: (s: string, write: (s: string) => void) => write(s) };
  for (const c of [program, ...program.commands]) c.exitOverride().configureOutput(output);
  return program;
}

export async function runCli(args: string[], io: CliIo): Promise<number> {
  let code = 0;
  const program = buildProgram({ io, setExitCode: (c) => (code = c) });
  let command = 'dsa';
  program.hook('preAction', (_root, action) => {
    command = `dsa ${action.name()}`;
  });
  try {
    await program.parseAsync(args, { from: 'user' });
    return code;
  } catch (err) {
    // Commander has already printed its one line (or the help).
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    removePendingNpyFiles();
    const message = err instanceof Error ? err.message : String(err);
    io.err(`${command}: ${message.split('\n')[0]}\n`);
    if (process.env.DSA_DEBUG && err instanceof Error) io.err(`${err.stack}\n`);
    return 2;
  }
}
