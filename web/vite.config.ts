// The page's build (`npm run web`, web/serve.ts): web/ is the root, the
// library comes from src/ as TypeScript, workers are ES modules (the pool's
// workers start from the page's demo worker), and the server sends the
// headers that make the page cross-origin isolated, so SharedArrayBuffer
// and the Web Worker pool work.
import { defineConfig } from 'vite';
import { fileURLToPath } from 'node:url';

const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // vega and vega-lite are one large chunk; the page loads it once.
    chunkSizeWarningLimit: 2048,
  },
  worker: { format: 'es' },
  server: { headers: isolation },
  preview: { headers: isolation },
  logLevel: 'warn',
});
