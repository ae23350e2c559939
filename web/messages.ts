// What the page and its workers say to each other.
import type { DemoConfig } from '../src/cli/demo-command.js';
import type { DemoResult } from '../src/cli/demo.js';
import type { CheckFlags } from '../src/cli/check-mask.js';

export type DemoRequest = { config: DemoConfig };

export type DemoReply =
  | { type: 'progress'; stage: string; done: number; total: number }
  | {
      type: 'done';
      result: DemoResult;
      /** Which SIMD build the demo worker ran, and whether its pool ran on Web Workers. */
      simd: string | null;
      poolShared: boolean | null;
    }
  | { type: 'error'; message: string };

export type CheckRequest = { mask: File; indices: File; flags: CheckFlags };

export type CheckReply =
  | { type: 'progress'; done: number; total: number }
  | { type: 'done'; ok: boolean; output: string }
  | { type: 'error'; message: string };
