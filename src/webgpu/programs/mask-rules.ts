/**
 * The masks that follow a rule per key rather than a list of indices, on the
 * GPU: `maskFromThreshold` (MaxText's merged form), `causalMask`,
 * `windowMask` (the plan's `mask.causal.*` with per-row ranges) and
 * `combineMasks`. Each is written in one pass over the output, one thread per
 * output unit (a float, a word of four bool bytes, a word of 32 bits), so the
 * writes are coalesced and no word is shared between threads; the rule reads
 * only what the unit's keys need (the row's range, its threshold and cuts,
 * the two masks' elements). Bit-identical to the CPU kernels (src/mask/).
 *
 * The threshold mask first runs one workgroup per row that finds the row's
 * threshold (the smallest of its k top-k values) and, in mode 'exact', its
 * two cuts as src/mask/threshold.ts defines them: keys above the threshold
 * are kept while j < cutGreater (the position after the k-th of them), keys
 * equal to it while j < cutEqual (after the (k - greater)-th). Each of the
 * 256 threads counts one contiguous segment of the row, one thread ranks the
 * segments, and the thread whose segment holds the cut finds it. Scores
 * compare by their order keys (wgsl.ts `keyOf`: -0 = +0, NaN below
 * everything and equal to nothing), so a NaN score is never kept.
 */
import { DEFAULT_MASK_VALUE } from '../../tensor.js';
import type { Step } from '../../plan.js';
import { clampOffset, f32Bits, i32, u32, type Binding, type Dispatch, type Encoder, type GpuProgram, type Uniform } from '../program.js';
import { WG, orderWgsl, perElementWgsl } from './wgsl.js';

type Form = 'additive' | 'bool' | 'bits';

const DROPPED = f32Bits(DEFAULT_MASK_VALUE);

/** Output units of `rows` rows of s keys in a form: floats, words of four bytes, words of 32 bits. */
function units(form: Form, rows: number, s: number): number {
  return form === 'additive' ? rows * s : form === 'bool' ? Math.ceil((rows * s) / 4) : rows * Math.ceil(s / 32);
}

/**
 * The pass that writes output unit `e` (one per thread) of rows u.rowStart ..
 * from `fn keptAt(r, j) -> bool` (r the absolute row, j the key), defined by
 * `rule`. Bool bytes count from the output's first byte (the step's first
 * row is the output's: the writer checks it), the last word's bytes past
 * u.bytes written 0.
 */
function writerWgsl(form: Form, rule: string): string {
  const body = {
    additive: `let r = u.rowStart + e / u.s;
  let j = e % u.s;
  out[(r - u.rowBase) * u.s + j] = select(${DROPPED}u, 0u, keptAt(r, j));`,
    bool: `var value = 0u;
  for (var b = 0u; b < 4u; b++) {
    let p = e * 4u + b;
    if (p < u.bytes && keptAt(u.rowStart + p / u.s, p % u.s)) { value |= 1u << (8u * b); }
  }
  out[e] = value;`,
    bits: `let words = (u.s + 31u) >> 5u;
  let r = u.rowStart + e / words;
  let w = e % words;
  var value = 0u;
  for (var b = 0u; b < 32u; b++) {
    let j = w * 32u + b;
    if (j < u.s && keptAt(r, j)) { value |= 1u << b; }
  }
  out[(r - u.rowBase) * words + w] = value;`,
  }[form];
  return perElementWgsl(body, rule);
}

/** The writer's dispatch over rows [start, end) of s keys (its bindings end with `out`). */
function writer(key: string, form: Form, rule: string, rows: [number, number], rowBase: number, s: number, bindings: Binding[], uniforms: Uniform[]): Dispatch {
  const [start, end] = rows;
  if (form === 'bool' && start !== rowBase) throw new Error(`${key}: a bool mask step must start at its output's first row`);
  const n = units(form, end - start, s);
  return {
    key: `${key}.${form}`,
    wgsl: () => writerWgsl(form, rule),
    bindings,
    uniforms: [u32('rowStart', start), u32('rowBase', rowBase), u32('s', s), u32('n', n), u32('bytes', (end - start) * s), ...uniforms],
    groups: Math.ceil(n / WG),
  };
}

/** `causalMask` and `windowMask` (the plan's mask.causal.*): row r keeps [lo[r], hi[r]) or [0, causal limit). */
function causalProgram(form: Form): GpuProgram {
  return {
    args: ['out', 't', 's', 'rowBase', 'offset', 'lo', 'hi'],
    encode(step: Step, enc: Encoder): Dispatch[] {
      const a = step.args;
      const t = a.t as number, s = a.s as number, ranged = a.lo !== null;
      const rule = ranged
        ? 'fn keptAt(r: u32, j: u32) -> bool { return i32(j) >= keyLo[r] && i32(j) < keyHi[r]; }'
        : 'fn keptAt(r: u32, j: u32) -> bool { return i32(j) < clamp(i32(r % u.t) + u.offset + 1, 0, i32(u.s)); }';
      return [writer(`mask.rule.causal${ranged ? '.ranged' : ''}`, form, rule, step.rows, a.rowBase as number, s, [
        ...(ranged ? [
          { name: 'keyLo', type: 'array<i32>', access: 'read' as const, buffer: enc.buffer('lo') },
          { name: 'keyHi', type: 'array<i32>', access: 'read' as const, buffer: enc.buffer('hi') },
        ] : []),
        { name: 'out', type: 'array<u32>', access: 'read_write', buffer: enc.buffer('out') },
      ], [u32('t', t), i32('offset', clampOffset(a.offset as number, t, s))])];
    },
  };
}

/** `combineMasks`: additive kept iff both are 0 (-0 too), bool iff both bytes are nonzero, bits AND. */
function combineProgram(form: Form): GpuProgram {
  return {
    args: ['a', 'b', 'out', 'width', 'rowBase'],
    encode(step: Step, enc: Encoder): Dispatch[] {
      const a = step.args;
      const [start, end] = step.rows;
      const width = a.width as number;
      // In words: bits AND whole words; additive and bool by element of the row (s = width).
      if (form === 'bits') {
        const n = (end - start) * width;
        return [{
          key: 'mask.rule.combine.bits',
          wgsl: () => perElementWgsl('out[u.first + e - u.base] = ma[u.first + e] & mb[u.first + e];'),
          bindings: [
            { name: 'ma', type: 'array<u32>', access: 'read', buffer: enc.buffer('a') },
            { name: 'mb', type: 'array<u32>', access: 'read', buffer: enc.buffer('b') },
            { name: 'out', type: 'array<u32>', access: 'read_write', buffer: enc.buffer('out') },
          ],
          uniforms: [u32('first', start * width), u32('base', (a.rowBase as number) * width), u32('n', n)],
          groups: Math.ceil(n / WG),
        }];
      }
      const rule = form === 'additive'
        ? 'fn keptAt(r: u32, j: u32) -> bool { let i = r * u.s + j; return (ma[i] & 0x7fffffffu) == 0u && (mb[i] & 0x7fffffffu) == 0u; }'
        : `fn byteAt(i: u32, which: u32) -> u32 {
  let word = select(mb[i >> 2u], ma[i >> 2u], which == 0u);
  return (word >> ((i & 3u) * 8u)) & 0xffu;
}
fn keptAt(r: u32, j: u32) -> bool { let i = r * u.s + j; return byteAt(i, 0u) != 0u && byteAt(i, 1u) != 0u; }`;
      return [writer('mask.rule.combine', form, rule, step.rows, a.rowBase as number, width, [
        { name: 'ma', type: 'array<u32>', access: 'read', buffer: enc.buffer('a') },
        { name: 'mb', type: 'array<u32>', access: 'read', buffer: enc.buffer('b') },
        { name: 'out', type: 'array<u32>', access: 'read_write', buffer: enc.buffer('out') },
      ], [])];
    },
  };
}

/** Per row: the threshold's order key, cutGreater, cutEqual (src/mask/threshold.ts), into rowCuts. */
const cutsWgsl = `${orderWgsl}
const NONE = 0xffffffffu;
var<workgroup> counts: array<u32, ${WG}>;
var<workgroup> smallest: atomic<u32>;
var<workgroup> pick: vec2u;
var<workgroup> position: u32;

// tk is never NaN's key (0): the edge refuses NaN values, so a NaN score matches neither way.
fn matches(v: u32, tk: u32, greater: bool) -> bool {
  let key = keyOf(v);
  return select(key == tk, key > tk, greater);
}

// (the position after the need-th key of row r above / equal to the threshold, need), or (NONE, their count) when fewer.
fn cut(r: u32, tk: u32, need: u32, greater: bool, lid: u32) -> vec2u {
  // Thread lid counts the segment [lid * seg, (lid + 1) * seg) of the row.
  let seg = (u.s + ${WG - 1}u) / ${WG}u;
  let first = min(u.s, lid * seg);
  let last = min(u.s, first + seg);
  var c = 0u;
  for (var j = first; j < last; j++) {
    if (matches(scores[r * u.s + j], tk, greater)) { c++; }
  }
  counts[lid] = c;
  workgroupBarrier();
  if (lid == 0u) {
    var before = 0u;
    var lane = NONE;
    for (var l = 0u; l < ${WG}u; l++) {
      if (before + counts[l] >= need) {
        lane = l;
        break;
      }
      before += counts[l];
    }
    pick = vec2u(lane, select(need - before, before, lane == NONE));
  }
  let at = workgroupUniformLoad(&pick);
  if (at.x == NONE) { return at; }
  if (lid == at.x) {
    var left = at.y;
    for (var j = first; j < last; j++) {
      if (matches(scores[r * u.s + j], tk, greater)) {
        left--;
        if (left == 0u) {
          position = j + 1u;
          break;
        }
      }
    }
  }
  return vec2u(workgroupUniformLoad(&position), need);
}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = groupIndex(wid, nwg);
  if (g >= u.groups) { return; }
  let r = u.rowStart + g;
  if (lid == 0u) { atomicStore(&smallest, NONE); }
  workgroupBarrier();
  // The threshold: the smallest top-k value (none is NaN: the edge checks), by order key (-0 = +0).
  for (var i = lid; i < u.k; i += ${WG}u) { atomicMin(&smallest, keyOf(values[r * u.k + i])); }
  let tk = workgroupUniformLoad(&smallest);
  var cutGreater = u.s;
  var cutEqual = u.s;
  if (u.exact == 1u) {
    let above = cut(r, tk, u.k, true, lid);
    if (above.x != NONE) {
      cutGreater = above.x;
      cutEqual = 0u;
    } else {
      let equal = cut(r, tk, u.k - above.y, false, lid);
      if (equal.x != NONE) { cutEqual = equal.x; }
    }
  }
  if (lid == 0u) {
    let o = (r - u.rowStart) * 3u;
    rowCuts[o] = tk;
    rowCuts[o + 1u] = cutGreater;
    rowCuts[o + 2u] = cutEqual;
  }
}
`;

function thresholdProgram(form: Form): GpuProgram {
  return {
    args: ['scores', 'values', 'out', 's', 'k', 'rowBase', 'exact', 'form'],
    encode(step: Step, enc: Encoder): Dispatch[] {
      const a = step.args;
      const [start, end] = step.rows;
      const s = a.s as number, k = a.k as number;
      const rowCuts = enc.scratch(Math.max(1, end - start) * 12, `threshold mask cuts [${end - start}, 3]`);
      const scores = { name: 'scores', type: 'array<u32>', access: 'read' as const, buffer: enc.buffer('scores') };
      const rule = `${orderWgsl}
fn keptAt(r: u32, j: u32) -> bool {
  let o = (r - u.rowStart) * 3u;
  let key = keyOf(scores[r * u.s + j]);
  let tk = rowCuts[o];
  return (key > tk && j < rowCuts[o + 1u]) || (key == tk && j < rowCuts[o + 2u]);
}`;
      const write = writer('mask.rule.threshold', form, rule, step.rows, a.rowBase as number, s, [
        scores,
        { name: 'rowCuts', type: 'array<u32>', access: 'read', buffer: rowCuts },
        { name: 'out', type: 'array<u32>', access: 'read_write', buffer: enc.buffer('out') },
      ], []);
      return [
        {
          key: 'mask.rule.threshold.cuts',
          wgsl: () => cutsWgsl,
          bindings: [
            scores,
            { name: 'values', type: 'array<u32>', access: 'read', buffer: enc.buffer('values') },
            { name: 'rowCuts', type: 'array<u32>', access: 'read_write', buffer: rowCuts },
          ],
          uniforms: [u32('rowStart', start), u32('s', s), u32('k', k), u32('exact', a.exact ? 1 : 0)],
          groups: end - start,
        },
        write,
      ];
    },
  };
}

export const maskRulePrograms: Record<string, GpuProgram> = {
  'mask.threshold.additive': thresholdProgram('additive'),
  'mask.threshold.bool': thresholdProgram('bool'),
  'mask.threshold.bits': thresholdProgram('bits'),
  'mask.causal.additive': causalProgram('additive'),
  'mask.causal.bool': causalProgram('bool'),
  'mask.causal.bits': causalProgram('bits'),
  'mask.combine.additive': combineProgram('additive'),
  'mask.combine.bool': combineProgram('bool'),
  'mask.combine.bits': combineProgram('bits'),
};
