// `zygote serve --metrics ADDRESS`: a minimal HTTP/1.x responder for Prometheus scrapes, driven
// by the serve loop's poll(2). GET /metrics gets the exposition; anything else a 404 or 405.
// Every fd is non-blocking and close-on-exec (and closed in children by their fd sweep); a
// scraper is bounded in what it may send (8 KiB), how long it may take (5 s) and how many may be
// connected at once (8): a slow or hostile scraper can neither stall nor exhaust the zygote.
import { closeSync, lstatSync, readSync, unlinkSync, writeSync } from 'node:fs';
import { native, POLLERR, POLLHUP, POLLIN, POLLOUT } from '../native/index.js';
import { formatMetricsAddress, type MetricsAddress } from '../protocol/operations.js';
import type { Log } from './log.js';
import { listenReplacingStale } from './stale-socket.js';

const MAX_REQUEST_BYTES = 8 * 1024;
const SCRAPE_TIMEOUT_MS = 5_000;
const MAX_SCRAPERS = 8;

interface Scrape {
  fd: number;
  request: Buffer;
  response: Buffer | null;
  written: number;
  deadline: number;
}

export class MetricsServer {
  readonly listenFd: number;
  /** The Unix socket's inode as bound: only that one is removed at close. */
  private readonly socketIno: number | null = null;
  private readonly scrapes = new Map<number, Scrape>();
  private readonly chunk = Buffer.alloc(4096);

  /** Binds address (a stale Unix socket there is replaced; anything else refused); throws naming it. */
  constructor(
    private readonly address: MetricsAddress,
    private readonly render: () => string,
    log: Log,
  ) {
    try {
      const listen = () => native.listenStream(address, 64);
      this.listenFd = address.kind === 'unix' ? listenReplacingStale(address.path, `metrics socket ${address.path}`, listen, log) : listen();
      if (address.kind === 'unix') this.socketIno = lstatSync(address.path).ino;
    } catch (err) {
      throw new Error(`cannot serve metrics at ${formatMetricsAddress(address)}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** The fds to poll, with their events, and what each is. */
  watches(): { fd: number; events: number }[] {
    const out = [{ fd: this.listenFd, events: POLLIN }];
    for (const s of this.scrapes.values()) out.push({ fd: s.fd, events: s.response === null ? POLLIN : POLLOUT });
    return out;
  }

  /** One ready fd of watches(). */
  onReady(fd: number, revents: number): void {
    if (fd === this.listenFd) return this.acceptAll();
    const s = this.scrapes.get(fd);
    if (!s) return;
    if (s.response === null && revents & (POLLIN | POLLHUP | POLLERR)) this.read(s);
    else if (s.response !== null && revents & (POLLOUT | POLLHUP | POLLERR)) this.write(s);
  }

  /** The earliest scrape deadline, for the poll timeout. */
  nextDeadline(): number | null {
    let next: number | null = null;
    for (const s of this.scrapes.values()) next = next === null ? s.deadline : Math.min(next, s.deadline);
    return next;
  }

  /** Drops scrapers past their deadline. */
  expire(now: number): void {
    for (const s of [...this.scrapes.values()]) if (now >= s.deadline) this.drop(s);
  }

  close(): void {
    for (const s of [...this.scrapes.values()]) this.drop(s);
    native.close(this.listenFd);
    if (this.address.kind === 'unix') {
      try {
        // Not a socket someone else bound there since.
        if (lstatSync(this.address.path).ino === this.socketIno) unlinkSync(this.address.path);
      } catch {
        // Gone already.
      }
    }
  }

  private acceptAll(): void {
    for (let i = 0; i < MAX_SCRAPERS * 2; i++) {
      let fd: number | null;
      try {
        fd = native.accept(this.listenFd);
      } catch {
        return; // EMFILE and the like: the next round tries again
      }
      if (fd === null) return;
      if (this.scrapes.size >= MAX_SCRAPERS) {
        native.close(fd);
        continue;
      }
      this.scrapes.set(fd, { fd, request: Buffer.alloc(0), response: null, written: 0, deadline: performance.now() + SCRAPE_TIMEOUT_MS });
    }
  }

  private read(s: Scrape): void {
    let n: number;
    try {
      n = readSync(s.fd, this.chunk);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') this.drop(s);
      return;
    }
    if (n === 0) return this.drop(s);
    s.request = Buffer.concat([s.request, this.chunk.subarray(0, n)]);
    const end = s.request.indexOf('\r\n\r\n');
    if (end < 0) {
      if (s.request.length > MAX_REQUEST_BYTES) this.respond(s, 431, 'Request Header Fields Too Large', 'request too large\n');
      return;
    }
    const [method, target] = s.request.subarray(0, s.request.indexOf('\r\n')).toString('latin1').split(' ');
    if (method !== 'GET' && method !== 'HEAD') return this.respond(s, 405, 'Method Not Allowed', 'only GET\n');
    if (target !== '/metrics') return this.respond(s, 404, 'Not Found', 'metrics are at /metrics\n');
    this.respond(s, 200, 'OK', this.render(), method === 'HEAD');
  }

  private respond(s: Scrape, status: number, reason: string, body: string, headOnly = false): void {
    const bytes = Buffer.from(body);
    const head = `HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: ${bytes.length}\r\nConnection: close\r\n\r\n`;
    s.response = headOnly ? Buffer.from(head) : Buffer.concat([Buffer.from(head), bytes]);
    this.write(s);
  }

  private write(s: Scrape): void {
    const r = s.response!;
    while (s.written < r.length) {
      try {
        s.written += writeSync(s.fd, r, s.written);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') this.drop(s);
        return; // EAGAIN: the next POLLOUT goes on
      }
    }
    this.drop(s);
  }

  private drop(s: Scrape): void {
    this.scrapes.delete(s.fd);
    closeSync(s.fd);
  }
}
