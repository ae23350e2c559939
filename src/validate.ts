/**
 * Checks done once at the public edge. Every error names the argument, what
 * was expected and what came, and is thrown before anything is written.
 */
import { describe, product, type Tensor, type TypedArray, type TypedArrayConstructor } from './tensor.js';

/**
 * Checks that `value` is a `{ data, shape }` tensor with `data` of type
 * `ctor` and a shape of `dims.length` positive integers that matches
 * `data.length`. Returns the shape. `dims` names the dimensions for messages.
 */
export function checkTensor<T extends TypedArray>(
  name: string,
  value: unknown,
  ctor: TypedArrayConstructor<T> | readonly TypedArrayConstructor<T>[],
  dims: readonly string[],
): number[] {
  const expectedShape = `[${dims.join(', ')}]`;
  if (typeof value !== 'object' || value === null || !('data' in value) || !('shape' in value)) {
    throw new TypeError(`${name}: expected a tensor { data, shape } of shape ${expectedShape}, got ${describe(value)}`);
  }
  const { data, shape } = value as Tensor;
  const ctors = Array.isArray(ctor) ? ctor : [ctor as TypedArrayConstructor<T>];
  if (!ctors.some((c) => data instanceof c)) {
    throw new TypeError(`${name}.data: expected ${ctors.map((c) => `a ${c.name}`).join(' or ')}, got ${describe(data)}`);
  }
  if (!Array.isArray(shape) || shape.length !== dims.length) {
    const got = Array.isArray(shape) ? `[${shape.join(', ')}] (rank ${shape.length})` : describe(shape);
    throw new RangeError(`${name}.shape: expected ${expectedShape} (rank ${dims.length}), got ${got}`);
  }
  for (let i = 0; i < dims.length; i++) {
    const d = shape[i];
    if (!Number.isInteger(d) || d <= 0) {
      throw new RangeError(`${name}.shape: dimension ${dims[i]} must be a positive integer, got ${String(d)}`);
    }
  }
  const n = product(shape);
  if (data.length !== n) {
    throw new RangeError(`${name}: data.length must equal the product of shape [${shape.join(', ')}] = ${n}, got ${data.length}`);
  }
  return shape.slice();
}

/** A positive integer size (s, k, threads...). */
export function checkSize(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new RangeError(`${name}: expected a positive integer, got ${describe(value)}`);
  }
  return value;
}

/**
 * A positive safe integer size at most `max`, for sizes that index typed
 * arrays or are stored as int32 (`why` says where the bound comes from).
 */
export function checkSizeAtMost(name: string, value: unknown, max: number, why: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0 || value > max) {
    throw new RangeError(`${name}: expected a positive integer <= ${max} (${why}), got ${describe(value)}`);
  }
  return value;
}

/** Any safe integer (offsets may be negative). */
export function checkInteger(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw new RangeError(`${name}: expected an integer, got ${describe(value)}`);
  }
  return value;
}

/** A finite number (scales). */
export function checkFinite(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new RangeError(`${name}: expected a finite number, got ${describe(value)}`);
  }
  return value;
}

export function checkOneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new RangeError(`${name}: expected one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${describe(value)}`);
  }
  return value as T;
}

/** Two sizes that must agree (a shared dimension of two tensors). */
export function checkSame(what: string, a: number, aName: string, b: number, bName: string): void {
  if (a !== b) throw new RangeError(`${what}: ${aName} = ${a} must equal ${bName} = ${b}`);
}

/**
 * A row range `[start, end)` over `nRows` rows; `undefined` means all rows.
 * Rows are numbered `bi * t + ti`.
 */
export function checkRows(value: unknown, nRows: number, name = 'rows'): [number, number] {
  if (value === undefined) return [0, nRows];
  if (!Array.isArray(value) || value.length !== 2) {
    throw new RangeError(`${name}: expected [start, end) with 0 <= start <= end <= ${nRows}, got ${describe(value)}`);
  }
  const [start, end] = value as unknown[];
  if (!Number.isInteger(start) || !Number.isInteger(end) || (start as number) < 0 || (start as number) > (end as number) || (end as number) > nRows) {
    throw new RangeError(`${name}: expected [start, end) with 0 <= start <= end <= ${nRows}, got [${String(start)}, ${String(end)}]`);
  }
  return [start as number, end as number];
}

/** A caller-supplied output buffer of exactly `length` elements of type `ctor`. */
export function checkOut<T extends TypedArray>(name: string, out: unknown, ctor: TypedArrayConstructor<T>, length: number): T {
  if (!(out instanceof ctor)) {
    throw new TypeError(`${name}: expected a ${ctor.name} of length ${length}, got ${describe(out)}`);
  }
  if (out.length !== length) {
    throw new RangeError(`${name}: expected a ${ctor.name} of length ${length}, got length ${out.length}`);
  }
  return out;
}

const GiB = 1024 ** 3;

let machineDefault: number | undefined;

/** The default memory guard: the smaller of 4 GiB and half the machine's memory. */
export function defaultMaxBytes(): number {
  // The machine's memory does not change under a process: read once (os.totalmem() costs ~20 us a call).
  return (machineDefault ??= readDefaultMaxBytes());
}

function readDefaultMaxBytes(): number {
  const os = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule?.('node:os') as
    | { totalmem(): number }
    | undefined;
  const total = os?.totalmem() ?? (globalThis as { navigator?: { deviceMemory?: number } }).navigator?.deviceMemory! * GiB;
  return Number.isFinite(total) && total > 0 ? Math.min(4 * GiB, total / 2) : 4 * GiB;
}

/**
 * The memory guard: throws before allocating `bytes` when it exceeds
 * `maxBytes`, naming what was needed and the cheaper forms.
 */
export function checkBytes(what: string, bytes: number, maxBytes: number | undefined, cheaper: string): void {
  const limit = maxBytes ?? defaultMaxBytes();
  if (maxBytes !== undefined && (typeof maxBytes !== 'number' || !(maxBytes > 0))) {
    throw new RangeError(`maxBytes: expected a positive number, got ${describe(maxBytes)}`);
  }
  if (bytes > limit) {
    throw new RangeError(
      `${what} needs ${formatBytes(bytes)} (${bytes} bytes), over maxBytes = ${formatBytes(limit)}; ${cheaper}, or raise maxBytes`,
    );
  }
}

export function formatBytes(bytes: number): string {
  if (bytes >= GiB) return `${(bytes / GiB).toFixed(2)} GiB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}
