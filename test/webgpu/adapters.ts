// The software Vulkan drivers the WebGPU tests run on, and the bit view
// their exact comparisons use (no backend is created here). Importing this
// module puts a Vulkan loader in the process first (web/headless.ts).
import { loadVulkan, swiftShaderIcd } from '../../web/headless.js';

/** SwiftShader's Vulkan driver: Debian's chromium-common, else the one @sparticuz/chromium ships. */
export const SWIFTSHADER = await swiftShaderIcd();
/** Mesa's lavapipe (Dawn takes Mesa 25, bookworm-backports; not Debian 12's own Mesa 22). */
export const LAVAPIPE = '/usr/share/vulkan/icd.d/lvp_icd.json';

await loadVulkan();

/** Float32 bits, so that -0 and NaN payloads compare exactly. */
export const bits = (a: Float32Array): number[] => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));
