// `npm run web`: builds the page (Vite, into web/dist) and serves it with the
// COOP/COEP headers that make it cross-origin isolated, then prints its URL.
//   npm run web -- --port 8080 [--host 0.0.0.0]
// --port 0 picks a free port. Stop it with Ctrl-C.
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { build, preview } from 'vite';

const { values } = parseArgs({ options: { port: { type: 'string', default: '5173' }, host: { type: 'string', default: '127.0.0.1' } } });
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`npm run web: --port: expected an integer in [0, 65535], got '${values.port}'`);
  process.exit(2);
}
const configFile = fileURLToPath(new URL('./vite.config.ts', import.meta.url));
await build({ configFile });
const server = await preview({ configFile, preview: { port, strictPort: port !== 0, host: values.host, open: false } });
const address = server.httpServer.address();
const actual = typeof address === 'object' && address !== null ? address.port : port;
console.log(`dsa-ts web page: http://${values.host}:${actual}/`);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    server.close().finally(() => process.exit(0));
  });
}
