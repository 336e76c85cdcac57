// Reading a served zygote's metrics (zygote serve --metrics) in tests.
import { request } from 'node:http';
import { expect } from 'vitest';
import { bounded } from './index.js';

export type Target = { socketPath: string } | { host: string; port: number };

/** One request of path: status, body and content type. */
export function get(target: Target, path = '/metrics', method = 'GET'): Promise<{ status: number; body: string; type: string }> {
  return bounded(
    new Promise((resolve, reject) => {
      const req = request({ ...target, path, method, agent: false }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, body, type: String(res.headers['content-type']) }));
      });
      req.on('error', reject);
      req.end();
    }),
    10_000,
    `${method} ${path}`,
  );
}

/** The value of one sample, e.g. value(text, 'zygote_spawns_total{reason="exit"}'). */
export function value(text: string, sample: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  if (!line) throw new Error(`no sample ${sample} in:\n${text}`);
  return Number(line.slice(sample.length + 1));
}

export async function scrape(target: Target): Promise<string> {
  const r = await get(target);
  expect(r.status).toBe(200);
  return r.body;
}

