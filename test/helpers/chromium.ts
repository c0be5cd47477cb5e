/**
 * Opening a report in Debian's headless Chromium (/usr/bin/chromium) through puppeteer-core:
 * nothing is downloaded, a new empty profile each time, and every request the page makes is
 * recorded (and anything but the report file itself refused), as are its console errors.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import puppeteer from 'puppeteer-core';

export const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface OpenedReport {
  /** Console errors and uncaught exceptions of the page. */
  errors: string[];
  /** Every URL the page asked for, the report's own included. */
  requests: string[];
  /** From navigation to the page saying it is drawn (`body[data-ready]`). */
  openMs: number;
  /** The ids of its sections, in order. */
  sections: string[];
  /** Text of the section with this id (folded parts included). */
  text(id: string): Promise<string>;
}

/**
 * Opens `file`, waits for it to be drawn (at most `timeoutMs`), screenshots it to `screenshot`
 * (what the window shows, or with `fullPage` the whole page: slower), and closes the browser.
 */
export async function openReport(
  file: string,
  o: { screenshot: string; timeoutMs: number; width?: number; fullPage?: boolean },
): Promise<OpenedReport> {
  const profile = await mkdtemp(path.join(os.tmpdir(), 'toil-chromium-'));
  const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, userDataDir: profile, args: ARGS });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    const requests: string[] = [];
    const own = pathToFileURL(file).href;
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.setRequestInterception(true);
    page.on('request', (r) => {
      requests.push(r.url());
      void (r.url() === own ? r.continue() : r.abort());
    });
    await page.setViewport({ width: o.width ?? 1280, height: 900 });
    const started = Date.now();
    await page.goto(own, { waitUntil: 'load', timeout: o.timeoutMs });
    await page.waitForSelector('body[data-ready="true"]', { timeout: o.timeoutMs });
    const openMs = Date.now() - started;
    const sections = await page.$$eval('section', (list) => list.map((s) => s.id));
    const texts = new Map<string, string>();
    for (const id of sections) texts.set(id, await page.$eval(`#${id}`, (e) => e.textContent ?? ''));
    await page.screenshot({ path: o.screenshot as `${string}.png`, fullPage: o.fullPage ?? false });
    return { errors, requests, openMs, sections, text: async (id) => texts.get(id) ?? '' };
  } finally {
    await browser.close();
    await rm(profile, { recursive: true, force: true });
  }
}
