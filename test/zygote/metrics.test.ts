// `zygote serve --metrics`: Prometheus text from the serve loop. The counters follow real spawns
// by how they ended (exit, signal, timeout, refused) and still count after 1,000 spawns; nothing
// of the metrics server reaches a child (its fd table holds only its stdio while a scrape is
// open); a hostile scraper (idle connections, an endless request) neither stalls spawns nor
// keeps the endpoint from answering once it is gone.
import { createConnection, createServer, type Socket } from 'node:net';
import { chownSync, existsSync, lstatSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, onTestFinished } from 'vitest';
import { connect, LimitCapError } from '../../dist/client/index.js';
import { bounded, collect, fdsOf, sharedOpenFiles, waitFor } from '../helpers/index.js';
import { startServed, stopAllServed } from '../helpers/served.js';
import { get, scrape, value, type Target } from '../helpers/metrics.js';
import { native } from '../../dist/native/index.js';

afterEach(stopAllServed);

/** A TCP port nothing listens on now. */
async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** A connected socket to target that sends nothing (a slow or idle scraper). */
async function idle(target: Target): Promise<Socket> {
  const sock = 'socketPath' in target ? createConnection(target.socketPath) : createConnection(target.port, target.host);
  await new Promise<void>((resolve, reject) => sock.once('connect', resolve).once('error', reject));
  // Dropped by the server (a reset, at times): expected, not a test failure.
  sock.on('error', () => {});
  return sock;
}

describe('zygote serve --metrics', () => {
  it('counts spawns by how they ended, and their latency; answers 404, 405 and HEAD', async () => {
    const s = await startServed(['--metrics', 'unix:/dev/null'], { expectExit: true });
    // Not a socket path it can bind: refused at start, naming the address.
    expect((await s.exit).code).toBe(1);
    expect(s.stderr()).toContain('cannot serve metrics at unix:/dev/null');

    const dir = mkdtempSync(join(tmpdir(), 'zygote-metrics-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const target = { socketPath: join(dir, 'metrics.sock') };
    const m = await startServed(['--metrics', `unix:${target.socketPath}`, '--max-memory', '512M']);
    const before = await scrape(target);
    expect(value(before, 'zygote_spawns_total{reason="exit"}')).toBe(0);
    const z = await connect(m.socket);
    for (let i = 0; i < 3; i++) await (await z.spawn({ args: ['echo-args'] })).exited;
    await (await z.spawn({ args: ['signal', 'SIGTERM'] })).exited;
    await (await z.spawn({ args: ['hang'], limits: { wallTimeMs: 200 } })).exited;
    await expect(z.spawn({ args: ['echo-args'], limits: { memoryBytes: 1024 * 2 ** 20 } })).rejects.toThrow(LimitCapError);
    await z.close();
    const after = await scrape(target);
    expect(value(after, 'zygote_spawns_total{reason="exit"}')).toBe(3);
    expect(value(after, 'zygote_spawns_total{reason="signal"}')).toBe(1);
    expect(value(after, 'zygote_spawns_total{reason="timeout"}')).toBe(1);
    expect(value(after, 'zygote_spawns_total{reason="refused"}')).toBe(1);
    expect(value(after, 'zygote_spawn_duration_seconds_count')).toBe(5);
    expect(value(after, 'zygote_spawn_duration_seconds_bucket{le="+Inf"}')).toBe(5);
    expect(value(after, 'zygote_spawn_duration_seconds_sum')).toBeGreaterThan(0);
    expect(value(after, 'zygote_spawns_by_source_total{source="fork"}')).toBe(5);
    expect(value(after, 'zygote_resident_memory_bytes')).toBeGreaterThan(20 * 2 ** 20);
    expect(value(after, 'zygote_open_fds')).toBeGreaterThan(3);
    expect(value(after, 'zygote_heap_used_bytes')).toBeGreaterThan(2 ** 20);
    expect(value(after, 'zygote_heap_size_bytes')).toBeGreaterThanOrEqual(value(after, 'zygote_heap_used_bytes'));
    expect(after).toMatch(/^# TYPE zygote_spawns_total counter$/m);
    expect(after).toMatch(/^zygote_build_info\{version="\d+\.\d+\.\d+",node="v20\.[\d.]+"\} 1$/m);
    expect((await get(target)).type).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect((await get(target, '/')).status).toBe(404);
    expect((await get(target, '/metrics', 'POST')).status).toBe(405);
    expect(await get(target, '/metrics', 'HEAD')).toMatchObject({ status: 200, body: '' });
  });

  it('still counts after 1,000 spawns, over TCP, with the pool', async () => {
    const port = await freePort();
    const target = { host: '127.0.0.1', port };
    const m = await startServed(['--metrics', `127.0.0.1:${port}`, '--pool', '4']);
    const z = await connect(m.socket);
    let next = 0;
    const worker = async () => {
      while (next < 1000) {
        next++;
        const c = await z.spawn({ args: ['echo-args'] });
        await Promise.all([collect(c.stdout), c.exited]);
      }
    };
    await bounded(Promise.all(Array.from({ length: 8 }, worker)), 240_000, '1,000 spawns');
    await z.close();
    const text = await scrape(target);
    expect(value(text, 'zygote_spawns_total{reason="exit"}')).toBe(1000);
    expect(value(text, 'zygote_spawn_duration_seconds_count')).toBe(1000);
    expect(value(text, 'zygote_spawns_by_source_total{source="pool"}') + value(text, 'zygote_spawns_by_source_total{source="fork"}')).toBe(1000);
    expect(value(text, 'zygote_spawns_by_source_total{source="pool"}')).toBeGreaterThan(0);
    expect(value(text, 'zygote_pool_size')).toBe(4);
  }, 300_000);

  it("reaches no child: while a scrape connection is open, a child holds no socket and nothing of the zygote's", async () => {
    const port = await freePort();
    const target = { host: '127.0.0.1', port };
    const m = await startServed(['--metrics', `127.0.0.1:${port}`]);
    const zygote = m.proc.pid!;
    const sockets = () => [...fdsOf(zygote).values()].filter((t) => t.startsWith('socket:')).length;
    const without = sockets();
    const scraper = await idle(target);
    // Control: the zygote holds the scrape connection, which an unswept child would inherit.
    await waitFor(() => sockets() > without, 5_000, 'the zygote to accept the scraper');
    const z = await connect(m.socket);
    const child = await z.spawn({ args: ['fds', 2000] });
    const seen = JSON.parse(await new Promise<string>((r) => child.stdout.once('data', (d) => r(String(d))))) as Record<string, string>;
    const seenFds = new Map(Object.entries(seen).map(([fd, t]) => [Number(fd), t]));
    expect(sharedOpenFiles(child.pid, zygote, seenFds)).toEqual([]);
    expect(Object.values(seen).filter((t) => t.startsWith('socket:'))).toEqual([]);
    child.kill();
    await child.exited;
    scraper.destroy();
    await z.close();
  });

  it('a hostile scraper neither stalls spawns nor keeps others out for long', async () => {
    const port = await freePort();
    const target = { host: '127.0.0.1', port };
    const m = await startServed(['--metrics', `127.0.0.1:${port}`]);
    const sockets = () => [...fdsOf(m.proc.pid!).values()].filter((t) => t.startsWith('socket:')).length;
    const without = sockets();
    // Eight idle connections fill every scrape slot (once the zygote has accepted them all); a ninth is closed at once.
    const hogs = await Promise.all(Array.from({ length: 8 }, () => idle(target)));
    await waitFor(() => sockets() >= without + 8, 10_000, 'the zygote to accept the eight');
    await expect(get(target)).rejects.toThrow();
    // Spawns go on meanwhile.
    const z = await connect(m.socket);
    expect((await (await z.spawn({ args: ['echo-args'] })).exited).code).toBe(0);
    // An endless request line is cut off at 8 KiB with a 431.
    hogs[0].write(`GET /${'a'.repeat(10_000)}`);
    const answer = await bounded(
      new Promise<string>((resolve) => {
        let got = '';
        hogs[0].on('data', (d) => (got += d)).on('close', () => resolve(got));
      }),
      10_000,
      'the 431',
    );
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
    // The other idle ones are dropped after 5 s; then scrapes are answered again.
    await bounded(Promise.all(hogs.slice(1).map((h) => new Promise((r) => h.once('close', r)))), 15_000, 'idle scrapers dropped');
    expect((await get(target)).status).toBe(200);
    await z.close();
  });

  it("replaces a stale metrics socket of its own uid, not another uid's, and removes only its own at exit", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zygote-metrics-stale-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, 'metrics.sock');
    // The attack: another uid's socket there, abandoned. Root could remove it; it must not.
    native.close(native.listenUnix(path, 1));
    chownSync(path, 4242, 4242);
    const refused = await startServed(['--metrics', `unix:${path}`], { expectExit: true });
    expect((await refused.exit).code).toBe(1);
    expect(refused.stderr()).toContain(`metrics socket ${path} is a socket owned by uid 4242, not by this server's uid 0: refusing to replace it`);
    expect(lstatSync(path).uid).toBe(4242);
    // The control: the same socket, its own uid's, is replaced and served.
    chownSync(path, 0, 0);
    const s = await startServed(['--metrics', `unix:${path}`]);
    expect(s.stderr()).toContain(`removing stale socket ${path}`);
    expect((await get({ socketPath: path })).status).toBe(200);
    // A live one is not replaced by a second server.
    const second = await startServed(['--metrics', `unix:${path}`], { expectExit: true });
    expect((await second.exit).code).toBe(1);
    expect(second.stderr()).toContain(`metrics socket ${path}: another process is already listening on ${path}`);
    expect((await get({ socketPath: path })).status).toBe(200);
    // At its exit it removes its socket, but not one put in its place meanwhile.
    rmSync(path);
    native.close(native.listenUnix(path, 1));
    const planted = lstatSync(path).ino;
    s.proc.kill('SIGTERM');
    expect((await s.exit).code).toBe(0);
    expect(existsSync(path) && lstatSync(path).ino).toBe(planted);
  });
});
