/**
 * Where the headless runs get a Chromium and a software Vulkan driver
 * (SwiftShader), for test/web/, test/webgpu/ and bench/browser.ts: what
 * CHROMIUM_PATH and VK_ICD_FILENAMES name; else Debian's (`chromium`;
 * `chromium-common` and `libvulkan1`); else the ones the devDependency
 * @sparticuz/chromium ships (a headless Chromium, SwiftShader's Vulkan driver
 * and a Vulkan loader), unpacked once per version into
 * node_modules/.cache/dsa-ts/, so that `npm install` is all a fresh Linux x64
 * machine needs.
 */
import { accessSync, constants as fsConstants, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../', import.meta.url));
const DEBIAN_CHROMIUM = '/usr/bin/chromium';
/** SwiftShader's Vulkan driver in Debian's chromium-common. */
const DEBIAN_SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';

let unpacking: Promise<string> | undefined;

/**
 * The folder holding @sparticuz/chromium's files (`chromium`,
 * `vk_swiftshader_icd.json` with `libvk_swiftshader.so`, `libvulkan.so.1`),
 * unpacked on first use. The package unpacks into os.tmpdir(), which it reads
 * when executablePath() is called (before its first await), so TMPDIR points
 * it at a folder of this process's own, renamed into place when complete:
 * test files unpacking at the same time never see half a file.
 */
function unpacked(): Promise<string> {
  unpacking ??= (async () => {
    if (process.platform !== 'linux' || process.arch !== 'x64') {
      throw new Error(`@sparticuz/chromium ships Linux x64 binaries, this is ${process.platform} ${process.arch}: set CHROMIUM_PATH and VK_ICD_FILENAMES`);
    }
    const main = createRequire(import.meta.url).resolve('@sparticuz/chromium');
    const { version } = JSON.parse(readFileSync(join(dirname(main), '..', 'package.json'), 'utf8')) as { version: string };
    const dir = join(root, 'node_modules', '.cache', 'dsa-ts', `chromium-${version}`);
    if (existsSync(join(dir, 'chromium'))) return dir;
    const { default: Chromium } = await import('@sparticuz/chromium');
    const part = `${dir}.${process.pid}`;
    rmSync(part, { recursive: true, force: true });
    mkdirSync(part, { recursive: true });
    const tmp = process.env.TMPDIR;
    process.env.TMPDIR = part;
    let done: Promise<string>;
    try {
      done = Chromium.executablePath();
    } finally {
      if (tmp === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = tmp;
    }
    const binary = await done;
    if (binary !== join(part, 'chromium')) throw new Error(`@sparticuz/chromium ${version} unpacked Chromium to ${binary}, expected it in ${part}`);
    try {
      renameSync(part, dir);
    } catch (e) {
      if (!existsSync(join(dir, 'chromium'))) throw e;
      rmSync(part, { recursive: true, force: true }); // another process was first
    }
    return dir;
  })();
  return unpacking;
}

/** Whether path is a regular file this process may execute (a leftover link or a device is not a browser). */
function executable(path: string): boolean {
  try {
    if (!statSync(path).isFile()) return false;
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The Chromium to drive: CHROMIUM_PATH, else Debian's, else @sparticuz/chromium's. */
export async function chromiumPath(): Promise<string> {
  const chosen = process.env.CHROMIUM_PATH;
  if (chosen) {
    if (!executable(chosen)) throw new Error(`CHROMIUM_PATH: no executable file at ${chosen}`);
    return chosen;
  }
  if (executable(DEBIAN_CHROMIUM)) return DEBIAN_CHROMIUM;
  return join(await unpacked(), 'chromium');
}

/** SwiftShader's Vulkan ICD file: Debian's, else @sparticuz/chromium's. */
export async function swiftShaderIcd(): Promise<string> {
  if (existsSync(DEBIAN_SWIFTSHADER)) return DEBIAN_SWIFTSHADER;
  return join(await unpacked(), 'vk_swiftshader_icd.json');
}

// glibc's flag (<dlfcn.h>); os.constants.dlopen does not list it.
const RTLD_NODELETE = 0x1000;

/**
 * dlopen()s a shared library into this process for good: null, or why it did
 * not load. It is no Node addon, so process.dlopen() throws "did not
 * self-register" after loading it, and dlclose()s it: RTLD_NODELETE keeps it.
 */
function keepLoaded(file: string): string | null {
  try {
    process.dlopen({ exports: {} }, file, constants.dlopen.RTLD_NOW | RTLD_NODELETE);
  } catch (e) {
    const { message } = e as Error;
    return /did not self-register/.test(message) ? null : message;
  }
  return null;
}

/**
 * Makes sure a Vulkan loader is in this process before Dawn's first adapter
 * request: the system's libvulkan.so.1, else @sparticuz/chromium's.
 * Dawn dlopen()s `libvulkan.so.1` by name, and LD_LIBRARY_PATH set now would
 * not reach that search (glibc reads it once, at process start); a library
 * already loaded by its full path is found by its soname instead. The
 * loader's folder also goes on LD_LIBRARY_PATH, for child processes.
 */
export async function loadVulkan(): Promise<void> {
  if (process.platform !== 'linux' || keepLoaded('libvulkan.so.1') === null) return;
  const dir = await unpacked();
  const failed = keepLoaded(join(dir, 'libvulkan.so.1'));
  if (failed !== null) throw new Error(`loadVulkan: @sparticuz/chromium's Vulkan loader did not load: ${failed}`);
  process.env.LD_LIBRARY_PATH = [dir, ...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean)].join(':');
}
