// The one WebGPU backend a test file shares (pipelines are built once per
// process). The tests run on SwiftShader's Vulkan driver (Debian's
// chromium-common, else the one the devDependency @sparticuz/chromium
// ships); set VK_ICD_FILENAMES to run them on another driver.
import { after } from 'node:test';
import { createGpu } from '../../src/webgpu/index.js';
import { SWIFTSHADER } from './adapters.js';

export { SWIFTSHADER, bits } from './adapters.js';

process.env.VK_ICD_FILENAMES ||= SWIFTSHADER;

export const gpu = await createGpu().catch((e: Error) => {
  throw new Error(`${e.message}\nThe WebGPU tests looked for an adapter with VK_ICD_FILENAMES=${process.env.VK_ICD_FILENAMES} (web/headless.ts says where drivers come from).`);
});

after(() => gpu.destroy());
