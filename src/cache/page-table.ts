/**
 * The page table of a DSA cache: per sequence its length and its block
 * table (the page of each block), and the free pages of the paged layout.
 * One table may serve several caches, one per layer, as serving engines
 * keep one block table per sequence for every layer (vLLM's KV cache
 * manager, SGLang's req_to_token): each layer holds its own kv and indexer
 * key pages, and a page number means the same tokens in all of them.
 *
 * A table shared by more than one cache is stepped only inside a `hold`:
 * every layer reserves the same slots (nothing is taken until a commit, so
 * each reservation sees the same lengths and free pages), the layers'
 * commits are held, and `settle(true)` applies them once; `settle(false)`
 * drops them, so a step that fails in any layer leaves every layer's cache
 * as it was. Outside a hold such a table refuses reservations: one layer
 * growing alone would leave the others short of its tokens.
 */
import { describe, type Alloc, type Tensor } from '../tensor.js';

/** Where n new tokens of a sequence go, before they are committed. */
export interface Reservation {
  seq: number;
  n: number;
  /** Int32Array [n]: the slot of each new token. */
  slots: Int32Array;
  /** Pages taken from the free pool (paged layout). */
  pages: number;
}

/** What `restore` puts back: the lengths and the free count at `snapshot`. */
export interface PageTableSnapshot {
  lengths: Int32Array;
  freeCount: number;
}

export class PageTable {
  readonly batch: number;
  readonly layout: 'contiguous' | 'paged';
  /** Tokens per page (contiguous: the capacity of a sequence). */
  readonly pageSize: number;
  readonly numPages: number;
  /** Blocks per sequence in the block table. */
  readonly maxBlocks: number;
  /** Its arrays are in SharedArrayBuffer (pool steps read them in place). */
  readonly shared: boolean;
  /** Int32Array [batch]: tokens per sequence. Read it; only the table writes it. */
  readonly lengths: Int32Array;
  /** [batch, maxBlocks] Int32Array: the page of each block of each sequence (entries past a sequence's blocks are unused). */
  readonly blockTable: Tensor<Int32Array>;
  /** Free pages (paged): a stack, the next page taken from the top. */
  private readonly free: Int32Array;
  private freeCount: number;
  /** Caches on this table. */
  private members = 0;
  /** Inside a hold: the reservations the layers committed (the first; the others must match it), or null outside one. */
  private held: Reservation[] | null = null;
  private holding = false;
  /** A model step or prefill owns the table (across a prefill's blocks too). */
  private pinned = false;

  constructor(batch: number, layout: 'contiguous' | 'paged', pageSize: number, numPages: number, shared: boolean, alloc: Alloc) {
    this.batch = batch;
    this.layout = layout;
    this.pageSize = pageSize;
    this.numPages = numPages;
    this.maxBlocks = layout === 'paged' ? numPages : 1;
    this.shared = shared;
    this.lengths = alloc(Int32Array, batch);
    this.blockTable = { data: alloc(Int32Array, batch * this.maxBlocks), shape: [batch, this.maxBlocks] };
    this.free = new Int32Array(layout === 'paged' ? numPages : 0);
    if (layout === 'contiguous') for (let i = 0; i < batch; i++) this.blockTable.data[i] = i;
    else for (let p = 0; p < numPages; p++) this.free[p] = numPages - 1 - p; // page 0 on top
    this.freeCount = this.free.length;
  }

  /** Counts a cache on this table (the DsaCache constructor calls it). */
  join(): void {
    this.members++;
  }

  /** Caches on this table. */
  get caches(): number {
    return this.members;
  }

  checkSeq(name: string, seq: unknown): number {
    if (typeof seq !== 'number' || !Number.isInteger(seq) || seq < 0 || seq >= this.batch) {
      throw new RangeError(`${name}: expected a sequence in [0, ${this.batch}), got ${describe(seq)}`);
    }
    return seq;
  }

  /** Pages not held by any sequence (paged); 0 for the contiguous layout. */
  freePages(): number {
    return this.freeCount;
  }

  /** Tokens sequence `seq` can still take. */
  room(seq: number): number {
    const s = this.checkSeq('seq', seq);
    if (this.layout === 'contiguous') return this.pageSize - this.lengths[s];
    const inLastPage = (this.pageSize - (this.lengths[s] % this.pageSize)) % this.pageSize;
    const blocksLeft = this.maxBlocks - Math.ceil(this.lengths[s] / this.pageSize);
    return inLastPage + Math.min(this.freeCount, blocksLeft) * this.pageSize;
  }

  /**
   * Reserves slots for n more tokens of each listed sequence, in order,
   * without committing anything: the block table gets the new blocks'
   * pages (entries past a sequence's blocks are unused, so this is
   * invisible), the free pool and the lengths are unchanged until
   * `commit`, so reserving again gives the same slots. Throws a RangeError
   * naming the sequence when it does not fit.
   */
  reserve(seqs: Int32Array, n: number): Reservation[] {
    if (this.members > 1 && !this.holding) {
      throw new Error(`cache: its page table is shared by ${this.members} layer caches; step them together (createDsaModel's decodeStep / prefill), not one alone`);
    }
    const seen = new Set<number>();
    let taken = 0;
    const out: Reservation[] = [];
    for (let i = 0; i < seqs.length; i++) {
      const seq = this.checkSeq(`seqs[${i}]`, seqs[i]);
      if (seen.has(seq)) throw new RangeError(`seqs: sequence ${seq} is listed twice; give each sequence its new tokens in one row`);
      seen.add(seq);
      const len = this.lengths[seq];
      const slots = new Int32Array(n);
      let pages = 0;
      if (this.layout === 'contiguous') {
        if (len + n > this.pageSize) {
          throw new RangeError(`cache: sequence ${seq} holds ${len} of ${this.pageSize} tokens; ${n} more do not fit (a full cache; reset it or create a larger one)`);
        }
        for (let j = 0; j < n; j++) slots[j] = seq * this.pageSize + len + j;
      } else {
        const P = this.pageSize;
        const blocksNow = Math.ceil(len / P), blocksAfter = Math.ceil((len + n) / P);
        pages = blocksAfter - blocksNow;
        if (blocksAfter > this.maxBlocks || taken + pages > this.freeCount) {
          throw new RangeError(
            `cache: sequence ${seq} holds ${len} tokens; ${n} more need ${pages} new pages of ${P}, but only ${this.freeCount - taken} of ${this.numPages} are free (a full cache; reset sequences or create more pages)`,
          );
        }
        const row = seq * this.maxBlocks;
        for (let blk = blocksNow; blk < blocksAfter; blk++) this.blockTable.data[row + blk] = this.free[this.freeCount - 1 - taken++];
        for (let j = 0; j < n; j++) {
          const p = len + j;
          slots[j] = this.blockTable.data[row + Math.floor(p / P)] * P + (p % P);
        }
      }
      out.push({ seq, n, slots, pages });
    }
    return out;
  }

  /** Makes reserved tokens part of their sequences: lengths grow, reserved pages leave the free pool (inside a hold: at `settle(true)`). */
  commit(reservations: Reservation[]): void {
    if (this.holding) {
      if (this.held === null) this.held = reservations;
      else if (!sameReservations(this.held, reservations)) {
        throw new Error('cache: the layers of one step reserved different slots on their shared page table (each layer must step the same sequences and tokens)');
      }
      return;
    }
    this.apply(reservations);
  }

  private apply(reservations: Reservation[]): void {
    for (const r of reservations) {
      this.freeCount -= r.pages;
      this.lengths[r.seq] += r.n;
    }
  }

  /** Marks the table owned by one multi-layer step or prefill until `unpin`: another pin or a reset throws meanwhile. */
  pin(): void {
    if (this.pinned) throw new Error('cache: a step is already running on this page table; await it before the next (steps run one at a time)');
    this.pinned = true;
  }

  unpin(): void {
    this.pinned = false;
  }

  /** Starts a step of every cache on the table: commits are held until `settle`. Throws if one is already held. */
  hold(): void {
    if (this.holding) throw new Error('cache: a step is already running on this page table; await it before the next (steps run one at a time)');
    this.holding = true;
    this.held = null;
  }

  /** Ends the hold: `apply` true commits the held reservations once (for all caches), false drops them. */
  settle(apply: boolean): void {
    const held = this.held;
    this.holding = false;
    this.held = null;
    if (apply && held !== null) this.apply(held);
  }

  /** Inside a hold: whether some cache committed (every layer then ran its step). */
  committed(): boolean {
    return this.held !== null;
  }

  /** The lengths and free count now, for `restore`. */
  snapshot(): PageTableSnapshot {
    return { lengths: this.lengths.slice(), freeCount: this.freeCount };
  }

  /**
   * Puts back lengths and free pages as at `snapshot`: exact when only
   * reservations and commits ran since (commits only lower the free count,
   * the stack entries stay), as inside one model prefill.
   */
  restore(s: PageTableSnapshot): void {
    this.lengths.set(s.lengths);
    this.freeCount = s.freeCount;
  }

  /** Empties sequence `seq`: its length becomes 0 and (paged) its pages return to the pool. */
  reset(seq: number): void {
    const s = this.checkSeq('seq', seq);
    if (this.holding || this.pinned) throw new Error('cache: a step is running on this page table; reset after it ends');
    if (this.layout === 'paged') {
      const blocks = Math.ceil(this.lengths[s] / this.pageSize);
      for (let blk = blocks - 1; blk >= 0; blk--) this.free[this.freeCount++] = this.blockTable.data[s * this.maxBlocks + blk];
    }
    this.lengths[s] = 0;
  }
}

function sameReservations(a: Reservation[], b: Reservation[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i], y = b[i];
    if (x.seq !== y.seq || x.n !== y.n || x.pages !== y.pages || x.slots.length !== y.slots.length) return false;
    for (let j = 0; j < x.slots.length; j++) if (x.slots[j] !== y.slots[j]) return false;
  }
  return true;
}
