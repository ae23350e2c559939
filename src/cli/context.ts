/**
 * What every command is given, below program.ts (which builds the commands)
 * and the command files (which use it), so neither imports the other.
 */

/** Where a command prints: results to `out` (stdout), diagnostics to `err` (stderr). */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** Whether stderr is a terminal (progress bars only then). */
  isTTY: boolean;
}

/** What each command gets: the printer, and a way to set the exit code without throwing. */
export interface CliContext {
  io: CliIo;
  setExitCode(code: number): void;
}
