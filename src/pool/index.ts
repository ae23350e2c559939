export { createPool } from './node.js';
export type { DsaPool, PoolOptions } from '../parallel.js';
