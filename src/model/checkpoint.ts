/**
 * A Hugging Face checkpoint of a DSA model (DeepSeek-V3.2, GLM-5): its
 * config.json and the attention and indexer tensors of chosen layers, read
 * from their byte ranges only (never a whole shard), kept in the stored
 * dtype: F8_E4M3 codes with their float32 `weight_scale_inv`, BF16 bit
 * patterns, or F32. The small norm vectors are widened to Float32Array.
 *
 * Layout read: `config.json`, then `model.safetensors.index.json`
 * (`weight_map`: tensor name -> shard file) or one `model.safetensors`.
 * Tensor names, per layer i (as in the checkpoints' own index files):
 *   model.layers.{i}.self_attn.{q_a_proj, q_b_proj, kv_a_proj_with_mqa, kv_b_proj, o_proj}.weight
 *     (+ .weight_scale_inv beside each F8_E4M3 weight)
 *   model.layers.{i}.self_attn.{q_a_layernorm, kv_a_layernorm}.weight
 *   model.layers.{i}.self_attn.indexer.{wq_b, wk, weights_proj}.weight (+ .weight_scale_inv)
 *   model.layers.{i}.self_attn.indexer.k_norm.{weight, bias}
 * DeepSeek-V3.2 stores weights_proj in BF16 and the rest of the linears in
 * FP8; a GLM-5 'shared' layer (indexer_types) has no indexer (Transformers
 * builds none for it), so none is read there.
 *
 * Errors: CheckpointError ('missing-file', 'missing-tensor', 'shape',
 * 'dtype', 'index', 'layer', 'closed'), naming the file and the tensor;
 * ConfigError for config.json; SafetensorsError for a bad header or a
 * truncated shard. Every check that needs no tensor data (names, dtypes,
 * shapes, shard headers) is done before any data is read; a failed load
 * returns nothing and closes what it opened.
 */
import {
  blobSource,
  bytesSource,
  isByteSource,
  openSafetensors,
  safetensorsReader,
  type ByteSource,
  type SafetensorsDtype,
  type SafetensorsEntry,
  type SafetensorsHeader,
  type SafetensorsReader,
  type SafetensorsTensor,
} from '../io/safetensors.js';
import { WEIGHT_BLOCK, isWeight, weightBytes, type Weight } from '../weights/weight.js';
import { parseModelConfig, type DsaModelType, type Fp8QuantConfig } from './config.js';
import type { IndexerLayerWeights, MlaConfig, MlaLayerWeights } from './types.js';

export const CONFIG_FILE = 'config.json';
export const INDEX_FILE = 'model.safetensors.index.json';
export const SINGLE_FILE = 'model.safetensors';

export type CheckpointErrorCode = 'missing-file' | 'missing-tensor' | 'shape' | 'dtype' | 'index' | 'layer' | 'closed';

export class CheckpointError extends Error {
  override readonly name = 'CheckpointError';
  constructor(
    readonly code: CheckpointErrorCode,
    /** The file at fault ('' when none). */
    readonly file: string,
    /** The tensor at fault ('' when none). */
    readonly tensor: string,
    message: string,
  ) {
    super(message);
  }
}

/** A file of a checkpoint given in memory or by the caller: bytes, a Blob / File, or a ByteSource (never closed here). */
export type CheckpointFile = Uint8Array | Blob | ByteSource;

/** The folder (Node) or the files by name (browsers, tests). */
export type CheckpointSource = string | Map<string, CheckpointFile> | Record<string, CheckpointFile>;

export interface LoadLayerOptions {
  /** Read the layer's indexer (default true). A 'shared' layer has none either way. */
  indexer?: boolean;
}

/** One tensor a layer load reads: where it lies and what it holds. */
export interface LayerTensor {
  name: string;
  file: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Its byte range in the file, `[begin, end)` (absolute, header included). */
  begin: number;
  end: number;
}

export interface Checkpoint {
  readonly modelType: DsaModelType;
  readonly config: MlaConfig;
  /** What config.json says about FP8 weights; null when it declares none. */
  readonly fp8: Fp8QuantConfig | null;
  /** num_hidden_layers: layers 0 .. layerCount - 1 load (MTP layers stored after them do not). */
  readonly layerCount: number;
  /** Every tensor the checkpoint holds (the index's names, or the single file's). */
  readonly tensorNames: readonly string[];
  /** The shard of each tensor. */
  fileOf(tensor: string): string | undefined;
  /** Layer i's attention (and indexer) weights, as stored. */
  loadLayer(i: number, options?: LoadLayerOptions): Promise<MlaLayerWeights>;
  /** The tensors `loadLayer(i, options)` reads, checked as it checks them; reads only headers. */
  layerTensors(i: number, options?: LoadLayerOptions): Promise<LayerTensor[]>;
  /** The checkpoint's bytes for those tensors (to compare with `layerWeightBytes`). */
  storedLayerBytes(i: number, options?: LoadLayerOptions): Promise<number>;
  /** Further loads fail; sources the caller passed are the caller's to close. */
  close(): Promise<void>;
}

/** Bytes a loaded layer holds in memory: every weight's data and scales, and the float32 norms. */
export function layerWeightBytes(layer: MlaLayerWeights): number {
  if (typeof layer !== 'object' || layer === null) throw new TypeError(`layer: expected MlaLayerWeights, got ${layer === null ? 'null' : typeof layer}`);
  const weightOf = (path: string, w: unknown) => {
    if (!isWeight(w)) throw new TypeError(`layer.${path}: expected a Weight (float32, bf16 or fp8), got ${w === null ? 'null' : typeof w}`);
  };
  const normOf = (path: string, v: unknown) => {
    if (!(v instanceof Float32Array)) throw new TypeError(`layer.${path}: expected a Float32Array, got ${v === null ? 'null' : typeof v}`);
  };
  for (const key of ['wqA', 'wqB', 'wkvA', 'wkvB', 'wo'] as const) weightOf(key, layer[key]);
  normOf('qNorm', layer.qNorm);
  normOf('kvNorm', layer.kvNorm);
  if (layer.indexer !== undefined) {
    for (const key of ['wqB', 'wk', 'weightsProj'] as const) weightOf(`indexer.${key}`, layer.indexer[key]);
    normOf('indexer.kNormWeight', layer.indexer.kNormWeight);
    normOf('indexer.kNormBias', layer.indexer.kNormBias);
  }
  let n = weightBytes(layer.wqA) + weightBytes(layer.wqB) + weightBytes(layer.wkvA) + weightBytes(layer.wkvB) + weightBytes(layer.wo);
  n += layer.qNorm.byteLength + layer.kvNorm.byteLength;
  const x = layer.indexer;
  if (x !== undefined) n += weightBytes(x.wqB) + weightBytes(x.wk) + weightBytes(x.weightsProj) + x.kNormWeight.byteLength + x.kNormBias.byteLength;
  return n;
}

/** How the checkpoint's files are reached. */
interface Files {
  text(file: string): Promise<string | undefined>;
  /** A source to read from; `owned` ones are closed after each load. */
  open(file: string): Promise<{ source: ByteSource; owned: boolean } | undefined>;
}

/** A tensor's shard, opened once per load, and its header entry (undefined: not in that shard). */
type ReaderOf = (name: string) => Promise<{ reader: SafetensorsReader; entry: SafetensorsEntry | undefined; file: string }>;

function mapFiles(entries: Map<string, CheckpointFile>): Files {
  const source = (file: string): ByteSource | undefined => {
    const f = entries.get(file);
    if (f === undefined) return undefined;
    if (f instanceof Uint8Array) return bytesSource(f, file);
    const isBlob = typeof Blob !== 'undefined' && f instanceof Blob;
    if (!isBlob && !isByteSource(f)) {
      throw new TypeError(`source: file '${file}': expected a Uint8Array, a Blob or a ByteSource, got ${f === null ? 'null' : typeof f}`);
    }
    // the caller's source, named by its file and never closed here (openSafetensors closes on a bad header)
    if (isByteSource(f)) return { name: file, size: f.size, read: (offset, into) => f.read(offset, into), close: async () => {} };
    return blobSource(f, file);
  };
  return {
    async text(file) {
      const src = source(file);
      if (src === undefined) return undefined;
      const bytes = new Uint8Array(src.size);
      const got = await src.read(0, bytes);
      return new TextDecoder().decode(bytes.subarray(0, got));
    },
    async open(file) {
      const src = source(file);
      return src === undefined ? undefined : { source: src, owned: false };
    },
  };
}

async function folder(dir: string): Promise<Files> {
  // Node only, loaded on demand so the browser path never imports node:fs;
  // the specifier is a variable so that bundlers for the browser leave it be.
  if (typeof process === 'undefined' || typeof process.versions?.node !== 'string') {
    throw new TypeError(`source: a folder path ('${dir}') needs Node's file system; in a browser pass the files by name (a Map or record of Blob / Uint8Array)`);
  }
  const nodeFiles = '../io/safetensors-file.js';
  const { folderFiles } = (await import(/* @vite-ignore */ nodeFiles)) as typeof import('../io/safetensors-file.js');
  const f = folderFiles(dir);
  return {
    text: (file) => f.text(file),
    async open(file) {
      const src = await f.open(file);
      return src === undefined ? undefined : { source: src, owned: true };
    },
  };
}

function parseJson(file: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new CheckpointError('index', file, '', `${file}: not valid JSON (${(err as Error).message})`);
  }
}

/** The index's weight_map, checked: names to plain file names (no folders, so nothing outside the checkpoint). */
function readIndex(text: string): Map<string, string> {
  const json = parseJson(INDEX_FILE, text);
  const map = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) {
    throw new CheckpointError('index', INDEX_FILE, '', `${INDEX_FILE}: expected an object with weight_map { tensor: file }, got ${JSON.stringify(json)?.slice(0, 80)}`);
  }
  const out = new Map<string, string>();
  for (const [tensor, file] of Object.entries(map)) {
    if (typeof file !== 'string' || file === '' || /[/\\]/.test(file) || file === '.' || file === '..') {
      throw new CheckpointError('index', INDEX_FILE, tensor, `${INDEX_FILE}: weight_map['${tensor}'] must be a file name in the checkpoint folder, got ${JSON.stringify(file)}`);
    }
    out.set(tensor, file);
  }
  return out;
}

interface Spec {
  /** Name without `.weight`. */
  base: string;
  kind: 'linear' | 'norm' | 'bias';
  shape: number[];
}

function layerSpecs(c: MlaConfig, i: number, indexer: boolean): Spec[] {
  const p = `model.layers.${i}.self_attn.`;
  const qHead = c.qkNopeHeadDim + c.qkRopeHeadDim;
  const specs: Spec[] = [
    { base: `${p}q_a_proj`, kind: 'linear', shape: [c.qLoraRank, c.dim] },
    { base: `${p}q_a_layernorm`, kind: 'norm', shape: [c.qLoraRank] },
    { base: `${p}q_b_proj`, kind: 'linear', shape: [c.nHeads * qHead, c.qLoraRank] },
    { base: `${p}kv_a_proj_with_mqa`, kind: 'linear', shape: [c.kvLoraRank + c.qkRopeHeadDim, c.dim] },
    { base: `${p}kv_a_layernorm`, kind: 'norm', shape: [c.kvLoraRank] },
    { base: `${p}kv_b_proj`, kind: 'linear', shape: [c.nHeads * (c.qkNopeHeadDim + c.vHeadDim), c.kvLoraRank] },
    { base: `${p}o_proj`, kind: 'linear', shape: [c.dim, c.nHeads * c.vHeadDim] },
  ];
  if (indexer) {
    specs.push(
      { base: `${p}indexer.wq_b`, kind: 'linear', shape: [c.indexNHeads * c.indexHeadDim, c.qLoraRank] },
      { base: `${p}indexer.wk`, kind: 'linear', shape: [c.indexHeadDim, c.dim] },
      { base: `${p}indexer.k_norm`, kind: 'norm', shape: [c.indexHeadDim] },
      { base: `${p}indexer.k_norm`, kind: 'bias', shape: [c.indexHeadDim] },
      { base: `${p}indexer.weights_proj`, kind: 'linear', shape: [c.indexNHeads, c.dim] },
    );
  }
  return specs;
}

const LINEAR_DTYPES: readonly SafetensorsDtype[] = ['F8_E4M3', 'BF16', 'F32'];
const NORM_DTYPES: readonly SafetensorsDtype[] = ['F32', 'BF16', 'F16'];

/** bf16 or f16 bit patterns, or float32, as float32 (exact: both widen without rounding). */
function widen(t: SafetensorsTensor): Float32Array {
  if (t.dtype === 'F32') return t.data as Float32Array;
  const bits = t.data as Uint16Array;
  const out = new Float32Array(bits.length);
  if (t.dtype === 'BF16') {
    const u = new Uint32Array(out.buffer);
    for (let j = 0; j < bits.length; j++) u[j] = bits[j] << 16;
    return out;
  }
  for (let j = 0; j < bits.length; j++) {
    const h = bits[j];
    const sign = h & 0x8000 ? -1 : 1;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    out[j] = e === 0 ? sign * m * 2 ** -24 : e === 31 ? (m === 0 ? sign * Infinity : NaN) : sign * (1 + m / 1024) * 2 ** (e - 15);
  }
  return out;
}

const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((x, j) => x === b[j]);
const shapeText = (s: readonly number[]) => `[${s.join(', ')}]`;

/**
 * Opens a checkpoint: reads config.json and the index (or the single
 * file's header); no tensor data. `source` is a folder path (Node) or the
 * files by name (`config.json`, the index, the shards).
 */
export async function openCheckpoint(source: CheckpointSource): Promise<Checkpoint> {
  if (typeof source !== 'string' && (typeof source !== 'object' || source === null || Array.isArray(source) || ArrayBuffer.isView(source))) {
    throw new TypeError(`source: expected a folder path, or the files by name (a Map or record of Uint8Array / Blob / ByteSource), got ${source === null ? 'null' : Array.isArray(source) ? 'an array' : typeof source}`);
  }
  const files =
    typeof source === 'string' ? await folder(source) : mapFiles(source instanceof Map ? source : new Map(Object.entries(source)));
  const where = typeof source === 'string' ? source : 'the checkpoint';
  const configText = await files.text(CONFIG_FILE);
  if (configText === undefined) throw new CheckpointError('missing-file', CONFIG_FILE, '', `${where}: no ${CONFIG_FILE}`);
  const model = parseModelConfig(configText, CONFIG_FILE);
  const config = model.config;

  /** Headers parsed so far, by file: a later load reopens the file without rereading its header. */
  const headers = new Map<string, SafetensorsHeader>();
  let weightMap: Map<string, string>;
  const indexText = await files.text(INDEX_FILE);
  if (indexText !== undefined) {
    weightMap = readIndex(indexText);
  } else {
    const opened = await files.open(SINGLE_FILE);
    if (opened === undefined) throw new CheckpointError('missing-file', SINGLE_FILE, '', `${where}: neither ${INDEX_FILE} nor ${SINGLE_FILE}`);
    let reader: SafetensorsReader | undefined;
    try {
      reader = await openSafetensors(opened.source, SINGLE_FILE);
    } finally {
      if (opened.owned) await opened.source.close();
    }
    headers.set(SINGLE_FILE, reader.header);
    weightMap = new Map([...reader.tensors.keys()].map((name) => [name, SINGLE_FILE]));
  }
  const tensorNames = Object.freeze([...weightMap.keys()]);
  let closed = false;

  const checkLayer = (i: unknown, options: unknown): { i: number; indexer: boolean } => {
    if (closed) throw new CheckpointError('closed', '', '', 'checkpoint: closed');
    if (typeof i !== 'number' || !Number.isInteger(i) || i < 0 || i >= config.nLayers) {
      throw new CheckpointError('layer', '', '', `layer: expected an integer in [0, ${config.nLayers}) (num_hidden_layers), got ${String(i)}`);
    }
    let indexer = true;
    if (options !== undefined) {
      if (typeof options !== 'object' || options === null) throw new TypeError(`options: expected an object, got ${String(options)}`);
      for (const key of Object.keys(options)) if (key !== 'indexer') throw new TypeError(`options: unknown option '${key}' (known: indexer)`);
      const v = (options as LoadLayerOptions).indexer;
      if (v !== undefined && typeof v !== 'boolean') throw new TypeError(`options.indexer: expected true or false, got ${String(v)}`);
      indexer = v ?? true;
    }
    return { i, indexer: indexer && config.indexerTypes?.[i] !== 'shared' };
  };

  /** Opens the files the names live in (headers checked), runs `use`, closes what it opened, error or not. */
  async function withReaders<T>(use: (readerOf: ReaderOf) => Promise<T>): Promise<T> {
    const readers = new Map<string, SafetensorsReader>();
    const owned: ByteSource[] = [];
    const readerOf: ReaderOf = async (name) => {
      const file = weightMap.get(name);
      if (file === undefined) {
        throw new CheckpointError('missing-tensor', indexText !== undefined ? INDEX_FILE : SINGLE_FILE, name, `${indexText !== undefined ? INDEX_FILE : SINGLE_FILE}: no tensor '${name}'`);
      }
      let reader = readers.get(file);
      if (reader === undefined) {
        const opened = await files.open(file);
        if (opened === undefined) throw new CheckpointError('missing-file', file, name, `${where}: no file '${file}' (${INDEX_FILE} puts '${name}' there)`);
        if (opened.owned) owned.push(opened.source);
        const known = headers.get(file);
        reader = known !== undefined && known.fileSize === opened.source.size ? safetensorsReader(opened.source, known) : await openSafetensors(opened.source, file);
        headers.set(file, reader.header);
        readers.set(file, reader);
      }
      return { reader, entry: reader.tensors.get(name), file };
    };
    try {
      return await use(readerOf);
    } finally {
      await Promise.allSettled(owned.map((s) => s.close()));
    }
  }

  /** Every tensor of the layer with its header entry, checked (names, dtypes, shapes) before any data is read. */
  async function plan(i: number, indexer: boolean, readerOf: ReaderOf) {
    const out: { spec: Spec; weight: LayerTensor; scale?: LayerTensor; reader: SafetensorsReader; scaleReader?: SafetensorsReader }[] = [];
    const locate = async (name: string, allowed: readonly SafetensorsDtype[], shape: number[]) => {
      const { reader, entry, file } = await readerOf(name);
      if (entry === undefined) throw new CheckpointError('missing-tensor', file, name, `${file}: no tensor '${name}' (the index puts it in this file)`);
      if (!allowed.includes(entry.dtype)) {
        throw new CheckpointError('dtype', file, name, `${file}: tensor '${name}' is ${entry.dtype}, expected ${allowed.join(' or ')}`);
      }
      if (!sameShape(entry.shape, shape)) {
        throw new CheckpointError('shape', file, name, `${file}: tensor '${name}' has shape ${shapeText(entry.shape)}, expected ${shapeText(shape)} from ${CONFIG_FILE}`);
      }
      const t: LayerTensor = { name, file, dtype: entry.dtype, shape: entry.shape.slice(), begin: reader.dataOffset + entry.begin, end: reader.dataOffset + entry.end };
      return { t, reader };
    };
    for (const spec of layerSpecs(config, i, indexer)) {
      const name = spec.kind === 'bias' ? `${spec.base}.bias` : `${spec.base}.weight`;
      const { t, reader } = await locate(name, spec.kind === 'linear' ? LINEAR_DTYPES : NORM_DTYPES, spec.shape);
      const item: (typeof out)[number] = { spec, weight: t, reader };
      if (spec.kind === 'linear' && t.dtype === 'F8_E4M3') {
        const [rows, cols] = spec.shape;
        const s = await locate(`${spec.base}.weight_scale_inv`, ['F32'], [Math.ceil(rows / WEIGHT_BLOCK), Math.ceil(cols / WEIGHT_BLOCK)]);
        item.scale = s.t;
        item.scaleReader = s.reader;
      }
      out.push(item);
    }
    return out;
  }

  const checkpoint: Checkpoint = {
    modelType: model.modelType,
    config,
    fp8: model.fp8,
    layerCount: config.nLayers,
    tensorNames,
    fileOf: (tensor) => weightMap.get(tensor),

    async layerTensors(layer, options) {
      const { i, indexer } = checkLayer(layer, options);
      return withReaders(async (readerOf) => (await plan(i, indexer, readerOf)).flatMap((p) => (p.scale ? [p.weight, p.scale] : [p.weight])));
    },

    async storedLayerBytes(layer, options) {
      return (await checkpoint.layerTensors(layer, options)).reduce((n, t) => n + (t.end - t.begin), 0);
    },

    async loadLayer(layer, options) {
      const { i, indexer } = checkLayer(layer, options);
      return withReaders(async (readerOf) => {
        const items = await plan(i, indexer, readerOf);
        const loaded = new Map<string, Weight | Float32Array>();
        // all reads in flight together (positional reads on one handle); settled before the
        // handles close, so a failure never closes a file under a read still running
        const settled = await Promise.allSettled(
          items.map(async (item) => {
            const t = await item.reader.read(item.weight.name);
            const key = item.spec.kind === 'bias' ? `${item.spec.base}.bias` : item.spec.base;
            if (item.spec.kind !== 'linear') return loaded.set(key, widen(t));
            const shape: [number, number] = [item.spec.shape[0], item.spec.shape[1]];
            if (t.dtype === 'F8_E4M3') {
              const scale = await item.scaleReader!.read(item.scale!.name);
              return loaded.set(key, { format: 'fp8', shape, data: t.data as Uint8Array, scale: scale.data as Float32Array });
            }
            if (t.dtype === 'BF16') return loaded.set(key, { format: 'bf16', shape, data: t.data as Uint16Array });
            return loaded.set(key, { format: 'float32', shape, data: t.data as Float32Array });
          }),
        );
        const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed !== undefined) throw failed.reason;
        const p = `model.layers.${i}.self_attn.`;
        const w = (name: string) => loaded.get(p + name) as Weight;
        const v = (name: string) => loaded.get(p + name) as Float32Array;
        const result: MlaLayerWeights = {
          wqA: w('q_a_proj'),
          qNorm: v('q_a_layernorm'),
          wqB: w('q_b_proj'),
          wkvA: w('kv_a_proj_with_mqa'),
          kvNorm: v('kv_a_layernorm'),
          wkvB: w('kv_b_proj'),
          wo: w('o_proj'),
        };
        if (indexer) {
          const x: IndexerLayerWeights = {
            wqB: w('indexer.wq_b'),
            wk: w('indexer.wk'),
            kNormWeight: v('indexer.k_norm'),
            kNormBias: v('indexer.k_norm.bias'),
            weightsProj: w('indexer.weights_proj'),
          };
          result.indexer = x;
        }
        return result;
      });
    },

    async close() {
      closed = true;
    },
  };
  return checkpoint;
}
