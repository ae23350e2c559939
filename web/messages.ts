// What the page and its workers say to each other.
import type { DemoConfig } from '../src/cli/demo-command.js';
import type { DemoResult } from '../src/cli/demo.js';
import type { CheckFlags } from '../src/cli/check-mask.js';

/** The demo's shape, and whether the main run takes the WebGPU path. */
export type DemoRequest = { config: DemoConfig; gpu: boolean };

export type DemoReply =
  | { type: 'progress'; stage: string; done: number; total: number }
  | {
      type: 'done';
      result: DemoResult;
      /** Which SIMD build the demo worker ran, and whether its pool ran on Web Workers. */
      simd: string | null;
      poolShared: boolean | null;
      /** The WebGPU adapter the GPU stages ran on, or null (all on the CPU). */
      gpu: string | null;
    }
  | { type: 'error'; message: string };

export type CheckRequest = { mask: File; indices: File; flags: CheckFlags };

export type CheckReply =
  | { type: 'progress'; done: number; total: number }
  | { type: 'done'; ok: boolean; output: string }
  | { type: 'error'; message: string };
