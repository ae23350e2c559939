// The entry of the WebAssembly module built by `npm run build`
// (src/simd/build.mjs). Each area exports its kernels from its own file here;
// add one `export *` line per file. Functions take byte offsets into the
// module's memory; the TypeScript loader (src/simd/index.ts) lays the data out.
export * from './linalg';
export * from './indexer';
export * from './attention';
export * from './topk';
export * from './verify';
export * from './fp8';
export * from './linear';
export * from './compare';
