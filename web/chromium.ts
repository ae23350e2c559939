/**
 * The page in a real browser, for test/web/ and bench/browser.ts: the page
 * served by `npm run web` (a child process group, stopped at the end),
 * Chromium driven headless by playwright-core through its executable path
 * (CHROMIUM_PATH, Debian's or @sparticuz/chromium's: web/headless.ts;
 * playwright never downloads a browser of its own), each page's console
 * errors collected, and screenshots kept in a temporary folder.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { chromiumPath } from './headless.js';

const root = fileURLToPath(new URL('../', import.meta.url));

/** Chromium's flags: root in CI needs --no-sandbox; the rest keeps it off the (closed) network. */
const FLAGS = ['--no-sandbox', '--enable-unsafe-webgpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-default-apps'];

export interface Server {
  url: string;
  stop(): Promise<void>;
}

/** Runs `npm run web -- --port 0` and resolves with the URL it prints. */
export function startWeb(): Promise<Server> {
  const child: ChildProcess = spawn('npm', ['run', 'web', '--', '--port', '0'], { cwd: root, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      process.kill(-child.pid!, 'SIGTERM'); // the whole group: npm, sh, tsx, node
    });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`npm run web printed no URL in 120 s:\n${output}`));
    }, 120_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const m = /dsa-ts web page: (http:\/\/\S+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1], stop });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`npm run web exited (${code}) before printing its URL:\n${output}`));
    });
  });
}

export async function launch(): Promise<Browser> {
  return chromium.launch({ executablePath: await chromiumPath(), headless: true, args: FLAGS });
}

/** A new page that records console errors and uncaught exceptions. */
export async function openPage(browser: Browser, url: string): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.ready === 'yes', null, { timeout: 60_000 });
  return { page, errors };
}

let shotsDir: string | undefined;

/** Where this process's screenshots go (a temporary folder, kept after the run). */
export function shots(): string {
  shotsDir ??= mkdtempSync(join(tmpdir(), 'dsa-web-'));
  return shotsDir;
}

export const shot = (page: Page, name: string) => page.screenshot({ path: join(shots(), `${name}.png`), fullPage: true });
