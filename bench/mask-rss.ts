// Peak RSS of one mask contender at one shape, in a process of its own so the
// number is clean: `tsx bench/mask-rss.ts <contender> <t> <s> <k>` prints JSON.
// bench/mask.ts runs it once per contender. Only the contender's own packages
// are loaded (dynamic imports), next to the same seeded indices.
import { generateMask, DEFAULT_MASK_VALUE } from '../src/index.js';

const [contender, t, s, k] = [process.argv[2], ...process.argv.slice(3, 6).map(Number)];
const rows = t;

function topkIndices(): Int32Array {
  // The same distinct-per-row indices as bench/mask.ts, cheaper to draw: a
  // stride walk per row (the values matter to no one here, only the sizes).
  const data = new Int32Array(rows * k);
  for (let r = 0; r < rows; r++) for (let i = 0; i < k; i++) data[r * k + i] = (i * 7919 + r * 31) % s;
  return data;
}

const data = topkIndices();
const indices = { data, shape: [1, t, k] };
let sink = 0;

if (contender === 'scatter-1t') {
  sink += generateMask(indices, s).data[0]; // one call, allocating its mask: what a user does
} else if (contender === 'scatter-1t-reused-out') {
  const out = new Float32Array(rows * s);
  for (let i = 0; i < 3; i++) sink += generateMask(indices, s, { out }).data[0];
} else if (contender === 'scatter-2t') {
  const { createPool } = await import('../src/pool/index.js');
  const pool = createPool({ threads: 2 });
  const out = new Float32Array(new SharedArrayBuffer(rows * s * 4));
  const shared = new Int32Array(new SharedArrayBuffer(data.byteLength));
  shared.set(data);
  for (let i = 0; i < 3; i++) sink += (await pool.generateMask({ data: shared, shape: [1, t, k] }, s, { out })).data[0];
  await pool.close();
} else if (contender === 'onnxruntime-node') {
  const ort = await import('onnxruntime-node');
  const { scatterMaskModel } = await import('./mask-onnx.js');
  const session = await ort.InferenceSession.create(scatterMaskModel(rows, s, k, DEFAULT_MASK_VALUE), { intraOpNumThreads: 2 });
  sink += ((await session.run({ indices: new ort.Tensor('int32', data, [rows, k]) })).mask.data as Float32Array)[0];
} else if (contender === 'tfjs-cpu') {
  const tf = await import('@tensorflow/tfjs-core');
  await import('@tensorflow/tfjs-backend-cpu');
  const warn = console.warn, log = console.log;
  console.warn = console.log = () => {};
  await tf.setBackend('cpu');
  console.warn = warn;
  console.log = log;
  const coords = tf.tensor2d(Int32Array.from({ length: rows * k * 2 }, (_, i) => (i & 1 ? data[i >> 1] : Math.floor((i >> 1) / k))), [rows * k, 2], 'int32');
  const zeros = tf.zeros([rows * k]);
  const m = tf.tidy(() => tf.tensorScatterUpdate(tf.fill([rows, s], DEFAULT_MASK_VALUE), coords, zeros));
  sink += (m.dataSync() as Float32Array)[0];
} else if (contender !== 'baseline') {
  throw new Error(`unknown contender ${contender}`);
}
/**
 * The peak RSS of this process image: VmHWM from /proc (Linux). Not
 * getrusage's maxRSS: Linux carries the parent's RSS at fork into a child's
 * maxRSS across exec, which would charge the benchmark's own buffers here.
 */
async function peakRss(): Promise<number> {
  try {
    const { readFileSync } = await import('node:fs');
    const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (hwm) return Number(hwm[1]) * 1024;
  } catch {
    // not Linux: fall through
  }
  return process.resourceUsage().maxRSS * 1024;
}

process.stdout.write(JSON.stringify({ contender, maxRssBytes: await peakRss(), sink }) + '\n');
