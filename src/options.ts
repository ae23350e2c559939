/**
 * Option objects at the public edge: a name a function does not take is a
 * TypeError naming it, since a misspelled option (`scaleRul: 'vllm'`) would
 * otherwise be ignored and change the result silently. Options set to
 * undefined count as absent, so callers may spread optional fields.
 */
import { describe } from './tensor.js';

export function checkKnownOptions(what: string, opts: unknown, known: readonly string[]): void {
  if (opts === undefined) return;
  if (typeof opts !== 'object' || opts === null) throw new TypeError(`${what}: expected an options object, got ${describe(opts)}`);
  for (const [name, value] of Object.entries(opts)) {
    if (value !== undefined && !known.includes(name)) {
      throw new TypeError(`${what}: unknown option '${name}' (expected one of: ${known.join(', ')})`);
    }
  }
}
