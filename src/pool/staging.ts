/**
 * Shared memory a pool keeps for staging the plain (non-shared) arrays of
 * its calls. Fresh memory costs a page fault a page on first touch, often
 * more than the copy into it; a buffer reused call after call is already
 * mapped, so a plain input costs one copy, as a shared one costs none.
 *
 * A call takes a buffer of its own and gives it back when it settles, so
 * calls in flight together never share one. Buffers only grow, with room
 * for 1/8 more bytes: a decode loop's inputs grow by a row a step and must
 * not reallocate every step.
 */

/** Free buffers kept; more calls in flight than this allocate and drop theirs. */
const KEPT = 4;

export interface Staging {
  /** A buffer of at least `bytes`, the caller's alone until it gives it back. */
  take(bytes: number): SharedArrayBuffer;
  /** Returns a buffer from `take`, for later calls. */
  give(buffer: SharedArrayBuffer): void;
  /** Drops every free buffer; buffers given back after this are dropped too. */
  close(): void;
  /** The free buffers, smallest first. */
  readonly free: readonly SharedArrayBuffer[];
}

export function createStaging(): Staging {
  const free: SharedArrayBuffer[] = [];
  let closed = false;
  return {
    free,
    take(bytes) {
      const fit = free.findIndex((buffer) => buffer.byteLength >= bytes);
      if (fit >= 0) return free.splice(fit, 1)[0];
      // None is large enough: the largest grows, i.e. is dropped for a larger one.
      free.pop();
      return new SharedArrayBuffer(bytes + (bytes >>> 3));
    },
    give(buffer) {
      if (closed) return;
      free.push(buffer);
      free.sort((a, b) => a.byteLength - b.byteLength);
      if (free.length > KEPT) free.shift();
    },
    close() {
      closed = true;
      free.length = 0;
    },
  };
}
