/**
 * `dsa compare`: two top-k index files (and the scores they came from, or
 * the indexer inputs to recompute them) -> per row identical, equal as
 * sets, equal up to ties, equal up to near-ties within a tolerance, or
 * different (compareSelections, docs/compare.md). Scores are streamed in
 * query blocks (float32 .npy ones read ahead, straight into the SIMD
 * module's memory); a summary table goes to stdout, `--json` writes the
 * per-row results, `--report` an HTML page with the margins plotted.
 * Exit code 0 when no row is different, 1 when one is, 2 for bad usage or
 * input. An input is a .npy file or `file.safetensors:tensor` (read whole).
 */
import { renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { NpyReader } from '../io/npy-file.js';
import { openSafetensorsFile } from '../io/safetensors-file.js';
import { SafetensorsError } from '../io/safetensors.js';
import { simdBlocks } from '../compare/simd.js';
import { defaultMaxBytes } from '../validate.js';
import { compareSelections, summarizeComparison, VERDICTS, type CompareInputs, type CompareSelectionsResult, type CompareTolerance, type Precision } from '../compare/selections.js';
import type { Tensor } from '../tensor.js';
import type { CliContext } from './context.js';
import { CliError, blockRows, checkInput, parseInteger, parseNumber, parsePositive, readIndexRows, rowBlocks } from './inputs.js';
import { checkOutputs } from './outputs.js';
import { withProgress } from './progress.js';

interface CompareFlags {
  a: string;
  b: string;
  scores?: string;
  q?: string;
  keys?: string;
  weights?: string;
  weightScale?: number;
  causalOffset?: number;
  seqLen?: number;
  abs?: number;
  rel?: number;
  precision?: Precision;
  precisionOf?: 'scores' | 'inputs';
  json?: string;
  report?: string;
}

/** An input opened by the command: a .npy file streamed by rows, or a safetensors tensor held whole. */
interface RowSource {
  readonly name: string;
  readonly dtype: string;
  readonly shape: number[];
  /** Rows [row, row + n) of the last dimension `width`: Int32Array for indices, Float32Array / Float64Array for scores (valid until the next call). */
  rows(row: number, n: number): Int32Array | Float32Array | Float64Array;
  /** Float32 rows of a .npy file read into `out` (its first n * width values) on libuv's thread pool, resolved as that part of it; `out` must not be touched until it settles. */
  readIntoAsync?(row: number, n: number, out: Float32Array): Promise<Float32Array>;
  /** Int32 rows of a .npy file read into `out`, returned as that part of it. */
  readIndicesInto?(row: number, n: number, out: Int32Array): Int32Array;
  close(): void;
}

const INDEX_DTYPES = ['int32', 'int64'] as const;
const SCORE_DTYPES = ['float32'] as const;
const SAFETENSORS_INDEX = ['I32', 'I64'];
const SAFETENSORS_SCORES = ['F32', 'F64', 'BF16', 'F16'];

function parseNonNegative(value: string): number {
  const v = parseNumber(value);
  if (v < 0) throw new InvalidArgumentError(`expected a number >= 0, got '${value}'`);
  return v;
}

export function compareCommand(ctx: CliContext): Command {
  return new Command('compare')
    .description('compare two top-k selections row by row: identical, equal as sets, equal up to ties or near-ties of the scores, or different; exit code 1 when a row is different')
    .requiredOption('--a <file>', 'indices .npy [b, t, k] or [rows, k], int32 or int64 (negative = none), or file.safetensors:tensor')
    .requiredOption('--b <file>', 'the other indices, same shape')
    .option('--scores <file>', 'scores .npy [b, t, s] (or [rows, s]) float32, or file.safetensors:tensor (F32, F64, BF16, F16); without scores (or --q/--keys/--weights) only identical / sets / different are decidable')
    .option('--q <file>', 'indexer queries .npy [b, t, h, d] float32: the scores are recomputed (with --keys, --weights) unless --scores is given; needed by --precision fp8 / int8')
    .option('--keys <file>', 'indexer keys .npy [b, s, d] float32')
    .option('--weights <file>', 'indexer head weights .npy [b, t, h] float32')
    .option('--weight-scale <x>', 'multiplies every head weight (as indexerScores)', parseNumber)
    .option('--causal-offset <n>', 'recomputed scores: query t sees keys j <= t + n (the others score -inf)', parseInteger)
    .option('--seq-len <s>', 'without scores: every index must be < s', parsePositive)
    .option('--abs <x>', 'near-tie tolerance: an absolute score distance from the k-th score', parseNonNegative)
    .option('--rel <x>', 'near-tie tolerance: a distance relative to |k-th score|', parseNonNegative)
    .addOption(new Option('--precision <p>', "near-tie tolerance: the error bound of a precision (bf16, fp16: of the scores, or of the inputs with --q; fp8, int8: of the inputs, needs --q)").choices(['bf16', 'fp16', 'fp8', 'int8']))
    .addOption(new Option('--precision-of <what>', 'what --precision holds (default: inputs when --q is given, else scores)').choices(['scores', 'inputs']))
    .option('--json <file>', "write the per-row results and the summary as JSON ('-': to stdout, instead of the table)")
    .option('--report <file>', 'write an HTML report with the per-row k-th score margins plotted')
    .action(async (flags: CompareFlags) => {
      ctx.setExitCode((await runCompare(flags, ctx)) ? 0 : 1);
    });
}

/** `path` names a safetensors tensor when it is `<file>.safetensors:<name>`. */
function safetensorsPart(path: string): { file: string; tensor: string } | null {
  const m = /^(.*\.safetensors):([^:]+)$/.exec(path);
  return m ? { file: m[1], tensor: m[2] } : null;
}

/** Opens an input for `flag`: its dtype among `npyDtypes` / `stDtypes`, its rank one of `ranks`. */
async function openRows(flag: string, path: string, kind: 'indices' | 'scores' | 'float32', dims: Record<number, string[]>): Promise<RowSource> {
  const st = safetensorsPart(path);
  const ranks = Object.keys(dims).map(Number);
  const rankOf = (shape: number[], name: string) => {
    if (!ranks.includes(shape.length)) {
      throw new CliError(`${flag}: ${name}: expected shape ${ranks.map((r) => `[${dims[r].join(', ')}]`).join(' or ')}, got [${shape.join(', ')}] (rank ${shape.length})`);
    }
    return dims[shape.length];
  };
  if (st !== null) {
    let reader;
    try {
      reader = await openSafetensorsFile(st.file);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'ENOENT') throw new CliError(`${flag}: no such file ${st.file}`);
      throw new CliError(`${flag}: ${(err as Error).message}`);
    }
    let tensor;
    try {
      tensor = await reader.read(st.tensor);
    } catch (err) {
      const known = err instanceof SafetensorsError && err.code === 'missing' ? ` (tensors: ${[...reader.tensors.keys()].slice(0, 8).join(', ')}${reader.tensors.size > 8 ? ', ...' : ''})` : '';
      throw new CliError(`${flag}: ${(err as Error).message}${known}`);
    } finally {
      await reader.close();
    }
    const name = path;
    const allowed = kind === 'indices' ? SAFETENSORS_INDEX : kind === 'scores' ? SAFETENSORS_SCORES : ['F32'];
    if (!allowed.includes(tensor.dtype)) throw new CliError(`${flag}: ${name}: expected dtype ${allowed.join(' or ')}, got ${tensor.dtype}`);
    const names = rankOf(tensor.shape, name);
    const zero = tensor.shape.indexOf(0);
    if (zero >= 0) throw new CliError(`${flag}: ${name}: dimension ${names[zero]} is 0 in shape [${tensor.shape.join(', ')}]`);
    const width = tensor.shape[tensor.shape.length - 1];
    const data = decodeTensor(flag, name, tensor.dtype, tensor.data as never, width);
    return {
      name, dtype: tensor.dtype, shape: tensor.shape,
      rows: (row, n) => data.subarray(row * width, (row + n) * width),
      close() {},
    };
  }
  let reader: NpyReader;
  try {
    reader = NpyReader.open(path);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') throw new CliError(`${flag}: no such file ${path}`);
    if (e.code === 'EISDIR') throw new CliError(`${flag}: ${path} is a folder, expected a .npy file`);
    throw new CliError(`${flag}: ${(err as Error).message}`);
  }
  try {
    checkInput(flag, reader, kind === 'indices' ? INDEX_DTYPES : SCORE_DTYPES, rankOf(reader.shape, path));
  } catch (err) {
    reader.close();
    throw err;
  }
  const width = reader.shape[reader.shape.length - 1];
  // One buffer for every block (grown when a block is larger): fresh memory costs a page fault a page.
  let block = new Float32Array(0);
  const intoBlock = (row: number, n: number) => {
    if (block.length < n * width) block = new Float32Array(n * width);
    return (reader.read(row * width, n * width, block) as Float32Array).subarray(0, n * width);
  };
  let indexBlock = new Int32Array(0);
  const intoIndexBlock = (row: number, n: number) => {
    if (reader.dtype !== 'int32') return readIndexRows(reader, row, n, width);
    if (indexBlock.length < n * width) indexBlock = new Int32Array(n * width);
    return readIndexRows(reader, row, n, width, indexBlock);
  };
  return {
    name: path, dtype: reader.dtype, shape: reader.shape,
    rows: (row, n) => (kind === 'indices' ? intoIndexBlock(row, n) : intoBlock(row, n)),
    readIntoAsync: kind === 'indices' ? undefined : async (row, n, out) => ((await reader.readAsync(row * width, n * width, out)) as Float32Array).subarray(0, n * width),
    readIndicesInto: kind === 'indices' && reader.dtype === 'int32' ? (row, n, out) => (reader.read(row * width, n * width, out) as Int32Array).subarray(0, n * width) : undefined,
    close: () => reader.close(),
  };
}

/** A safetensors tensor as the arrays the comparison takes: int64 range-checked to int32, bf16 / fp16 widened (exactly) to float32. */
function decodeTensor(flag: string, name: string, dtype: string, data: Int32Array | BigInt64Array | Float32Array | Float64Array | Uint16Array, width: number): Int32Array | Float32Array | Float64Array {
  if (dtype === 'I64') {
    const source = { name, dtype: 'int64' as const, shape: [data.length / width, width], size: data.length, read: (start: number, count: number) => (data as BigInt64Array).subarray(start, start + count), close() {} };
    try {
      return readIndexRows(source, 0, data.length / width, width);
    } catch (err) {
      throw new CliError(`${flag}: ${(err as Error).message}`);
    }
  }
  if (dtype === 'BF16') return Float32Array.from(data as Uint16Array, (bits) => new Float32Array(new Uint32Array([bits << 16]).buffer)[0]);
  if (dtype === 'F16') return Float32Array.from(data as Uint16Array, halfToFloat);
  return data as Int32Array | Float32Array | Float64Array;
}

function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 31) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

async function readWholeFloat32(flag: string, path: string, dims: string[]): Promise<Tensor<Float32Array>> {
  const source = await openRows(flag, path, 'float32', { [dims.length]: dims });
  try {
    const rows = source.shape.slice(0, -1).reduce((x, y) => x * y, 1);
    return { data: Float32Array.from(source.rows(0, rows) as Float32Array), shape: source.shape.slice() };
  } finally {
    source.close();
  }
}

/** What a per-row result holds, gathered block by block. */
type Rows = Pick<CompareSelectionsResult, 'verdict' | 'threshold' | 'gap' | 'margin' | 'keysA' | 'keysB' | 'first'>;

function allocRows(n: number): Rows {
  return {
    verdict: new Uint8Array(n), threshold: new Float64Array(n), gap: new Float64Array(n), margin: new Float64Array(n),
    keysA: new Int32Array(n), keysB: new Int32Array(n),
    first: { slot: new Int32Array(n), key: new Int32Array(n), side: new Uint8Array(n), score: new Float64Array(n), tolerance: new Float64Array(n) },
  };
}

function copyRows(into: Rows, from: Rows, at: number): void {
  for (const name of ['verdict', 'threshold', 'gap', 'margin', 'keysA', 'keysB'] as const) (into[name] as Float64Array).set(from[name] as Float64Array, at);
  for (const name of ['slot', 'key', 'side', 'score', 'tolerance'] as const) (into.first[name] as Float64Array).set(from.first[name] as Float64Array, at);
}

async function runCompare(flags: CompareFlags, ctx: CliContext): Promise<boolean> {
  const inputFlags: Record<string, string> = { '--a': flags.a, '--b': flags.b };
  for (const [flag, path] of [['--scores', flags.scores], ['--q', flags.q], ['--keys', flags.keys], ['--weights', flags.weights]] as const) if (path !== undefined) inputFlags[flag] = path;
  // A safetensors input is compared as its file.
  const files = Object.fromEntries(Object.entries(inputFlags).map(([flag, path]) => [flag, safetensorsPart(path)?.file ?? path]));
  checkOutputs(files, { '--json': flags.json === '-' ? undefined : flags.json, '--report': flags.report });
  const given = [flags.q, flags.keys, flags.weights].filter((x) => x !== undefined).length;
  if (given !== 0 && given !== 3) throw new CliError('--q, --keys and --weights: give all three (the indexer inputs) or none');
  if ((flags.weightScale !== undefined || flags.causalOffset !== undefined) && given === 0) throw new CliError('--weight-scale and --causal-offset: only with --q, --keys and --weights');
  const tolerance: CompareTolerance | undefined = flags.abs === undefined && flags.rel === undefined && flags.precision === undefined && flags.precisionOf === undefined
    ? undefined
    : { abs: flags.abs, rel: flags.rel, precision: flags.precision, precisionOf: flags.precisionOf };
  if (tolerance !== undefined && flags.scores === undefined && given === 0) throw new CliError('--abs, --rel and --precision: a near-tie needs scores; pass --scores (or --q, --keys, --weights)');
  const of = flags.precisionOf ?? (given === 3 ? 'inputs' : 'scores');
  if (flags.precisionOf !== undefined && flags.precision === undefined) throw new CliError('--precision-of: needs --precision');
  if (flags.precision !== undefined && of === 'scores' && (flags.precision === 'fp8' || flags.precision === 'int8')) {
    throw new CliError(`--precision ${flags.precision}: bounds quantized indexer inputs, not rounded scores; pass --q, --keys and --weights (or use bf16 / fp16 for scores)`);
  }
  if (of === 'inputs' && flags.precision !== undefined && given === 0) throw new CliError('--precision-of inputs: needs --q, --keys and --weights');

  const a = await openRows('--a', flags.a, 'indices', { 2: ['rows', 'k'], 3: ['b', 't', 'k'] });
  const opened: RowSource[] = [a];
  try {
    const b = await openRows('--b', flags.b, 'indices', { 2: ['rows', 'k'], 3: ['b', 't', 'k'] });
    opened.push(b);
    if (b.shape.join() !== a.shape.join()) throw new CliError(`--b: ${b.name}: shape [${b.shape.join(', ')}] must equal --a's [${a.shape.join(', ')}]`);
    const k = a.shape[a.shape.length - 1];
    const lead = a.shape.slice(0, -1);
    const rows = lead.reduce((x, y) => x * y, 1);
    let scores: RowSource | null = null;
    if (flags.scores !== undefined) {
      scores = await openRows('--scores', flags.scores, 'scores', { [a.shape.length]: [...(a.shape.length === 3 ? ['b', 't'] : ['rows']), 's'] });
      opened.push(scores);
      if (scores.shape.slice(0, -1).join() !== lead.join()) {
        throw new CliError(`--scores: ${scores.name}: shape [${scores.shape.join(', ')}] must match --a's [${a.shape.join(', ')}] in all but the last dimension`);
      }
    }
    let inputs: CompareInputs | undefined;
    if (given === 3) {
      inputs = {
        q: await readWholeFloat32('--q', flags.q!, ['b', 't', 'h', 'd']),
        k: await readWholeFloat32('--keys', flags.keys!, ['b', 's', 'd']),
        w: await readWholeFloat32('--weights', flags.weights!, ['b', 't', 'h']),
        weightScale: flags.weightScale,
        causalOffset: flags.causalOffset,
      };
    }
    const s = scores?.shape[scores.shape.length - 1] ?? inputs?.k.shape[1] ?? flags.seqLen ?? null;
    if (flags.seqLen !== undefined && (scores !== null || inputs !== undefined) && flags.seqLen !== s) {
      throw new CliError(`--seq-len: ${flags.seqLen} must equal the scores' s = ${s} (or leave it out)`);
    }
    const t = a.shape.length === 3 ? a.shape[1] : rows;
    const where = (row: number) => (a.shape.length === 3 ? `batch ${Math.floor(row / t)}, query ${row % t}` : `row ${row}`);

    const out = allocRows(rows);
    let scored = false;
    // The indexer inputs are compared in one call (the scores are recomputed whole); files are streamed in blocks.
    const perBlock = inputs !== undefined ? rows : blockRows(8 * k + 4 * (s ?? 0));
    const blocks = rowBlocks(1, rows, perBlock);
    // Float32 .npy scores are read straight into the SIMD module's score block, where the
    // comparison reads them in place (simdBlocks), in two halves: the next block is read on
    // libuv's thread pool (the other core) while this one is compared. Measured on this
    // project's 2-core machine, idle: 1.3-1.6x the time of one read of the file, against
    // 1.6x reading each block in turn and 1.8x reading into a buffer of our own and copying
    // rows in (docs/compare.md).
    const direct = scores?.readIntoAsync !== undefined && inputs === undefined ? simdBlocks(k, s!, 2 * perBlock) : null;
    const half = (t0: number) => {
      const h = Math.floor(t0 / perBlock) % 2;
      return direct!.scores.subarray(h * perBlock * s!, (h + 1) * perBlock * s!);
    };
    // int32 indices too, read in turn: read ahead as well (three reads in flight a block), the
    // command measured 15% slower.
    const indexRows = (source: RowSource, block: Int32Array | undefined, t0: number, n: number) =>
      block !== undefined && source.readIndicesInto !== undefined ? source.readIndicesInto(t0, n, block) : (source.rows(t0, n) as Int32Array);
    let ahead: Promise<Float32Array> | null = null;
    // The memory guard's default, asked of the OS once rather than once a block.
    const maxBytes = defaultMaxBytes();
    try {
      for (const { t0, t1 } of withProgress(ctx, 'dsa compare', rows, blocks)) {
        const n = t1 - t0;
        const ia = indexRows(a, direct?.a, t0, n), ib = indexRows(b, direct?.b, t0, n);
        let scoreRows: Float32Array | null = null;
        if (direct !== null) {
          const mine = ahead ?? scores!.readIntoAsync!(t0, n, half(t0));
          ahead = t1 < rows ? scores!.readIntoAsync!(t1, Math.min(perBlock, rows - t1), half(t1)) : null;
          // Handled now (a failing read rejects while this block is compared); its error is thrown when it is awaited.
          ahead?.catch(() => undefined);
          scoreRows = await mine;
        } else if (scores !== null) scoreRows = scores.rows(t0, n) as Float32Array;
        let result: CompareSelectionsResult;
        try {
          result = compareSelections({ data: ia, shape: [n, k] }, { data: ib, shape: [n, k] }, {
            scores: scoreRows === null ? undefined : { data: scoreRows, shape: [n, s!] },
            inputs, tolerance, s: scores === null && inputs === undefined ? flags.seqLen : undefined, maxBytes,
          });
        } catch (err) {
          throw blockError(err as Error, t0, where, { a: a.name, b: b.name, scores: scores?.name ?? 'scores' });
        }
        scored = result.scored;
        copyRows(out, result, t0);
      }
    } finally {
      // A block read ahead of one that failed: settled before its file is closed.
      if (ahead !== null) await (ahead as Promise<Float32Array>).catch(() => null);
    }
    const summary = summarizeComparison(out);
    const header = `dsa compare: ${a.name} vs ${b.name}, ${rows} rows, k = ${k}${s === null ? '' : `, s = ${s}`}; ` +
      (scored ? `scores ${scores?.name ?? 'recomputed from --q, --keys, --weights'}; ${describeTolerance(tolerance, inputs !== undefined)}` : 'no scores: ties cannot be told from differences (pass --scores)');
    const table = formatSummary(header, out, summary, scored, k, where);
    if (flags.json === '-') ctx.io.out(`${toJson(flags, out, summary, scored, rows, k, s)}\n`);
    else ctx.io.out(table);
    if (flags.json !== undefined && flags.json !== '-') writeAtomically(flags.json, toJson(flags, out, summary, scored, rows, k, s));
    if (flags.report !== undefined) {
      writeAtomically(flags.report, await renderReport(table, out, scored, tolerance !== undefined));
      if (flags.json !== '-') ctx.io.out(`report: ${flags.report}\n`);
    }
    return summary.equal;
  } finally {
    for (const source of opened) source.close();
  }
}

/** A library error about a block's row, named by its place in the files. */
function blockError(err: Error, row0: number, where: (row: number) => string, names: { a: string; b: string; scores: string }): Error {
  const value = /^(a|b): value (-?\d+) at row (\d+), slot (\d+) must be < s = (\d+)/.exec(err.message);
  if (value) {
    return new CliError(`--${value[1]}: ${names[value[1] as 'a' | 'b']}: value ${value[2]} at ${where(row0 + Number(value[3]))}, slot ${value[4]} must be < s = ${value[5]} (negative values are none)`);
  }
  const nan = /^scores: NaN at row (\d+), key (\d+)/.exec(err.message);
  if (nan) return new CliError(`--scores: ${names.scores}: NaN at ${where(row0 + Number(nan[1]))}, key ${nan[2]}; the k-th score of that row is undefined`);
  return err instanceof CliError || err instanceof RangeError || err instanceof TypeError ? new CliError(err.message) : err;
}

function describeTolerance(tolerance: CompareTolerance | undefined, withInputs: boolean): string {
  if (tolerance === undefined) return 'near-ties: none (exact ties only)';
  const parts: string[] = [];
  if (tolerance.abs) parts.push(`abs ${tolerance.abs}`);
  if (tolerance.rel) parts.push(`rel ${tolerance.rel} |k-th score|`);
  if (tolerance.precision) parts.push(`${tolerance.precision} bound of the ${tolerance.precisionOf ?? (withInputs ? 'inputs' : 'scores')}`);
  return `near-ties within ${parts.join(' + ') || '0'}`;
}

function formatNumber(x: number): string {
  return Number.isFinite(x) ? (x === 0 || (Math.abs(x) >= 1e-3 && Math.abs(x) < 1e6) ? String(Number(x.toPrecision(6))) : x.toExponential(4)) : String(x);
}

const LABELS: Record<string, string> = { identical: 'identical', sets: 'equal as sets', ties: 'equal up to ties', nearTies: 'equal up to near-ties', different: 'different' };

function formatSummary(header: string, r: Rows, summary: ReturnType<typeof summarizeComparison>, scored: boolean, k: number, where: (row: number) => string): string {
  const total = r.verdict.length;
  const lines = [header, '', 'verdict                  rows   share'];
  for (const v of VERDICTS) {
    if (!scored && (v === 'ties' || v === 'nearTies')) continue;
    const n = summary.counts[v];
    lines.push(`${LABELS[v].padEnd(22)} ${String(n).padStart(6)}  ${((100 * n) / total).toFixed(1).padStart(5)}%`);
  }
  lines.push('');
  if (scored) {
    if (summary.worstMargin.row >= 0) lines.push(`largest margin (differing key to the k-th score): ${formatNumber(summary.worstMargin.margin)} at ${where(summary.worstMargin.row)}`);
    if (summary.smallestGap.row >= 0) lines.push(`smallest gap (k-th to (k+1)-th score): ${formatNumber(summary.smallestGap.gap)} at ${where(summary.smallestGap.row)}`);
  }
  const row = summary.firstDifferent;
  if (row >= 0) {
    const side = r.first.side[row] === 0 ? 'a' : 'b';
    const other = side === 'a' ? 'b' : 'a';
    const key = `key ${r.first.key[row]} (slot ${r.first.slot[row]} of ${side}, not in ${other})`;
    const detail = scored
      ? `${key} scores ${formatNumber(r.first.score[row])}, the k-th score is ${formatNumber(r.threshold[row])}: ` +
        `${formatNumber(r.first.score[row] - r.threshold[row])} from it (tolerance ${formatNumber(r.first.tolerance[row])})` +
        (r.keysA[row] !== r.keysB[row] ? `; a holds ${r.keysA[row]} keys scoring above -inf, b ${r.keysB[row]}` : '')
      : key;
    lines.push(`first different row: ${where(row)}: ${detail}`);
    lines.push(`result: DIFFERENT (${summary.counts.different} of ${total} rows, k = ${k})`);
  } else {
    lines.push(`result: equal (every row ${scored ? 'identical, equal as sets, or equal up to ties or near-ties' : 'identical or equal as sets'})`);
  }
  return `${lines.join('\n')}\n`;
}

/** Non-finite numbers as JSON can hold them: null for NaN, the strings 'Infinity' and '-Infinity'. */
function jsonNumber(x: number): number | string | null {
  return Number.isNaN(x) ? null : Number.isFinite(x) ? x : x > 0 ? 'Infinity' : '-Infinity';
}

function toJson(flags: CompareFlags, r: Rows, summary: ReturnType<typeof summarizeComparison>, scored: boolean, rows: number, k: number, s: number | null): string {
  return JSON.stringify({
    a: flags.a, b: flags.b, scores: flags.scores ?? null, rows, k, s, scored,
    decidable: scored ? VERDICTS : ['identical', 'sets', 'different'],
    tolerance: { abs: flags.abs ?? 0, rel: flags.rel ?? 0, precision: flags.precision ?? null, precisionOf: flags.precisionOf ?? null },
    summary: { ...summary, worstMargin: { ...summary.worstMargin, margin: jsonNumber(summary.worstMargin.margin) }, smallestGap: { ...summary.smallestGap, gap: jsonNumber(summary.smallestGap.gap) } },
    perRow: {
      verdict: Array.from(r.verdict, (v) => VERDICTS[v]),
      threshold: Array.from(r.threshold, jsonNumber),
      gap: Array.from(r.gap, jsonNumber),
      margin: Array.from(r.margin, jsonNumber),
      keysA: Array.from(r.keysA),
      keysB: Array.from(r.keysB),
      firstSlot: Array.from(r.first.slot),
      firstKey: Array.from(r.first.key),
      firstSide: Array.from(r.first.side, (x, i) => (r.first.slot[i] < 0 ? null : x === 0 ? 'a' : 'b')),
      firstScore: Array.from(r.first.score, jsonNumber),
      firstTolerance: Array.from(r.first.tolerance, jsonNumber),
    },
  });
}

function writeAtomically(path: string, text: string): void {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // never written
    }
    const e = err as NodeJS.ErrnoException;
    throw new CliError(`cannot write ${path}: ${e.code === 'ENOENT' ? 'the folder does not exist' : e.message}`);
  }
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * The --report page: the summary table, and per row the k-th score margin
 * (the farthest differing key from the k-th score) with the row's
 * tolerance and its gap (k-th to (k+1)-th score), drawn by the demo
 * report's renderer (vega-lite to SVG in Node, no scripts in the page).
 * Scales are symmetric-log, so 0 (equal sets, ties) and large margins
 * both show; infinite values are left out and counted in the caption.
 */
async function renderReport(table: string, r: Rows, scored: boolean, tolerant: boolean): Promise<string> {
  const { toSvg } = await import('./report.js');
  const total = r.verdict.length;
  // At most 4000 points: every row up to that, else every n-th and each row whose sets differ.
  const stride = Math.max(1, Math.ceil(total / 4000));
  const values: { row: number; value: number; series: string; verdict: string }[] = [];
  let infinite = 0;
  for (let row = 0; row < total; row++) {
    const differs = r.first.slot[row] >= 0;
    if (row % stride !== 0 && !differs) continue;
    const verdict = LABELS[VERDICTS[r.verdict[row]]];
    const push = (value: number, series: string) => {
      if (Number.isFinite(value)) values.push({ row, value, series, verdict });
      else if (!Number.isNaN(value)) infinite++;
    };
    if (differs) push(r.margin[row], 'margin of the differing keys');
    if (differs && tolerant) push(r.first.tolerance[row], 'tolerance (first differing key)');
    push(r.gap[row], 'gap, k-th to (k+1)-th score');
  }
  // symlog is linear within +-constant of 0: the smallest positive value plotted (at least 1e-6 of the largest), so near-tie margins do not sit on the axis.
  let smallest = Infinity, largest = 0;
  for (const { value } of values) {
    if (value > 0 && value < smallest) smallest = value;
    if (value > largest) largest = value;
  }
  const constant = Number.isFinite(smallest) ? Math.max(smallest, largest * 1e-6) : 1;
  const figure = scored
    ? await toSvg({
        $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
        title: { text: 'k-th score margins per row', subtitle: `${total} rows${stride > 1 ? `, every ${stride}-th and every row whose sets differ` : ''}; symmetric log scale, linear below ${formatNumber(constant)}` },
        width: 640,
        height: 300,
        data: { values },
        mark: { type: 'point', filled: true, size: 48, opacity: 0.8 },
        encoding: {
          x: { field: 'row', type: 'quantitative', title: 'row (b * t + query)' },
          y: { field: 'value', type: 'quantitative', scale: { type: 'symlog', constant }, title: 'score distance' },
          color: { field: 'series', type: 'nominal', title: null, legend: { orient: 'bottom', labelLimit: 300 } },
          shape: { field: 'verdict', type: 'nominal', title: 'verdict', legend: { labelLimit: 300 } },
          tooltip: [{ field: 'row' }, { field: 'series' }, { field: 'value' }, { field: 'verdict' }],
        },
      })
    : '<p>No scores were given: margins are undefined. Pass --scores (or --q, --keys, --weights).</p>';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>dsa compare report</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; max-width: 980px; margin: 2em auto; padding: 0 1em; color: #222; }
pre { background: #f6f6f6; padding: 1em; white-space: pre-wrap; }
figure { margin: 1.5em 0; }
</style>
</head>
<body>
<h1>Two top-k selections compared</h1>
<pre>${escapeHtml(table)}</pre>
<figure>${figure}<figcaption>A row's margin is the largest distance from its k-th score of a key in one set and not the other: 0 for ties,
within the tolerance for near-ties. The gap is how far the (k+1)-th score lies below the k-th: rows with a small gap flip under small errors.
${infinite > 0 ? `${infinite} infinite values (no key below the k-th score, or a key at -inf) are not drawn.` : ''}</figcaption></figure>
</body>
</html>
`;
}
