// The one WebGPU backend a test file shares (pipelines are built once per
// process). Without a GPU the tests run on SwiftShader's Vulkan driver
// (Debian's chromium-common ships it; .ci/run installs it); set
// VK_ICD_FILENAMES to run them on another driver.
import { existsSync } from 'node:fs';
import { after } from 'node:test';
import { createGpu } from '../../src/webgpu/index.js';

export const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';

if (!process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER)) process.env.VK_ICD_FILENAMES = SWIFTSHADER;

export const gpu = await createGpu().catch((e: Error) => {
  throw new Error(`${e.message}\nThe WebGPU tests need an adapter: apt-get install -y libvulkan1 chromium-common (SwiftShader), or set VK_ICD_FILENAMES.`);
});

after(() => gpu.destroy());

/** Float32 bits, so that -0 and NaN payloads compare exactly. */
export const bits = (a: Float32Array): number[] => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
