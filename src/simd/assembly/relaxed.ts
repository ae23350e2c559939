// The entry of the relaxed build (src/simd/build.mjs, `--enable
// relaxed-simd`): every kernel of the baseline module (index.ts), compiled
// from the same sources, plus the kernels that need relaxed SIMD. Engines
// without relaxed SIMD (Safari, Node 20 without a flag) reject the whole
// module, so the baseline module stays and the loader picks one.
export * from './index';
export * from './indexer-relaxed';
