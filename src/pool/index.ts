export { createPool } from '../parallel.js';
export type { DsaPool, PoolOptions } from '../parallel.js';
