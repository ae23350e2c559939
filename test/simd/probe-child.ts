// Run by relaxed.test.ts on an engine whose baseline tier gets the relaxed
// dot wrong (Node 20 with --experimental-wasm-relaxed-simd): a probe module
// is tiered up first, then instantiated again from the same bytes (V8 then
// shares the optimised code, so the copy's first call is exact: a probe of
// that kind is fooled), and probeRelaxedDot(), whose bytes are its own, must
// still see the baseline tier's wrong dot. Prints one JSON line.
import { probeBytes, probeRelaxedDot } from '../../src/simd/relaxed-probe.js';

type Probe = (n: number, a: number, b: number, c: number) => number;
const instantiate = (bytes: Uint8Array<ArrayBuffer>) => new WebAssembly.Instance(new WebAssembly.Module(bytes), {}).exports.probe as Probe;
const bytes = probeBytes(42);
const want = (20000 * 4 * -127 * 127 + 5) | 0;
const warm = instantiate(bytes);
const firstWarmCall = warm(20000, -127, 127, 5) === want;
// Tier-up: keep calling until the results turn exact (TurboFan) or a bound.
let calls = 0;
while (calls < 5000 && warm(20000, -127, 127, 5) !== want) calls++;
// Background compilation may still be installing the code: give it a moment.
await new Promise((resolve) => setTimeout(resolve, 50));
const copyFirstCall = instantiate(bytes)(20000, -127, 127, 5) === want;
console.log(JSON.stringify({ firstWarmCall, tieredAfter: calls, copyFirstCall, fresh: probeRelaxedDot() }));
