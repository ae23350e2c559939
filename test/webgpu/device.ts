// The one WebGPU backend a test file shares (pipelines are built once per
// process). Without a GPU the tests run on SwiftShader's Vulkan driver
// (Debian's chromium-common ships it; .ci/run installs it); set
// VK_ICD_FILENAMES to run them on another driver.
import { existsSync } from 'node:fs';
import { after } from 'node:test';
import { createGpu } from '../../src/webgpu/index.js';
import { SWIFTSHADER } from './adapters.js';

export { SWIFTSHADER, bits } from './adapters.js';

if (!process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER)) process.env.VK_ICD_FILENAMES = SWIFTSHADER;

export const gpu = await createGpu().catch((e: Error) => {
  throw new Error(`${e.message}\nThe WebGPU tests need an adapter: apt-get install -y libvulkan1 chromium-common (SwiftShader), or set VK_ICD_FILENAMES.`);
});

after(() => gpu.destroy());
