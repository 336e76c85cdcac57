// The client's control connection: frames in and out of the native channel, the greeting,
// and a clean end however the connection ends.
import { decodeServerMessage, encodeClientMessage, MAX_CONTROL_FRAME_BYTES, PROTOCOL_VERSION, type ClientMessage, type ServerMessage } from '../protocol/control.js';
import { native, type NativeChannel } from '../native/index.js';
import { ProtocolError } from '../protocol/errors.js';
import { ZygoteClosedError, ZygoteRefusedError, ZygoteStartError } from './errors.js';

export type Hello = Extract<ServerMessage, { kind: 'hello' }>;

export interface ConnectionHandlers {
  /** A message after the greeting, with the fds that rode on it (the handler owns them). */
  message(msg: ServerMessage, fds: number[]): void;
  /** The connection is over; err says why; byPeer: the zygote's end closed (it died or hung up), not this side. Called once. */
  end(err: ZygoteClosedError, byPeer: boolean): void;
}

export class ControlConnection {
  private readonly channel: NativeChannel;
  private handlers: ConnectionHandlers | null = null;
  private greeting: { resolve(h: Hello): void; reject(e: Error): void } | null = null;
  private ended: ZygoteClosedError | null = null;
  private endedByPeer = false;

  /** Takes ownership of fd, a connected SEQPACKET socket. */
  constructor(fd: number, private readonly describePeer: () => string) {
    this.channel = new native.Channel(
      fd,
      MAX_CONTROL_FRAME_BYTES + 4,
      (data, fds, truncated) => this.onPacket(data, fds, truncated),
      (code) => this.finish(new ZygoteClosedError(`${this.describePeer()} closed the connection${code ? ` (${code})` : ''}`), true),
    );
  }

  /** Waits for the zygote's Hello; rejects with ZygoteStartError on timeout or hang-up, ZygoteRefusedError on its refusal. */
  hello(timeoutMs: number): Promise<Hello> {
    return new Promise<Hello>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.greeting = null;
        reject(new ZygoteStartError(`${this.describePeer()} did not greet within ${timeoutMs} ms`));
        this.close();
      }, timeoutMs);
      this.greeting = {
        resolve: (h) => {
          clearTimeout(timer);
          resolve(h);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
  }

  /** Routes every later message and the end to handlers. */
  attach(handlers: ConnectionHandlers): void {
    this.handlers = handlers;
    if (this.ended) handlers.end(this.ended, this.endedByPeer);
  }

  /** Sends a message, with fds to pass on it (the caller keeps and closes its own). */
  send(msg: ClientMessage, fds: number[] = []): void {
    if (this.ended) throw this.ended;
    this.channel.send(encodeClientMessage(msg), fds);
  }

  /** Whether the connection keeps the event loop alive. */
  setRef(on: boolean): void {
    if (this.ended) return;
    if (on) this.channel.ref();
    else this.channel.unref();
  }

  close(reason?: ZygoteClosedError): void {
    this.finish(reason ?? new ZygoteClosedError('the zygote handle was closed'));
  }

  private onPacket(data: Buffer, fds: number[], truncated: boolean): void {
    let msg: ServerMessage;
    try {
      if (truncated) throw new ProtocolError('too-large', `a frame from the zygote exceeds ${MAX_CONTROL_FRAME_BYTES} bytes`);
      msg = decodeServerMessage(data);
    } catch (err) {
      for (const fd of fds) native.close(fd);
      this.finish(new ZygoteClosedError(`${this.describePeer()} sent a bad frame: ${(err as Error).message}`, { cause: err }));
      return;
    }
    if (this.greeting) {
      const g = this.greeting;
      this.greeting = null;
      for (const fd of fds) native.close(fd);
      if (msg.kind === 'hello' && msg.protocolVersion === PROTOCOL_VERSION) g.resolve(msg);
      else if (msg.kind === 'hello') g.reject(new ZygoteStartError(`${this.describePeer()} speaks protocol ${msg.protocolVersion}; this client speaks ${PROTOCOL_VERSION}`));
      else if (msg.kind === 'startupFailed') g.reject(new ZygoteStartError(`zygote failed to start: ${msg.message}`));
      else if (msg.kind === 'refused') g.reject(new ZygoteRefusedError(`${this.describePeer()} refused this connection (${msg.reason}): ${msg.message}`, msg.reason, msg.limit ?? null));
      else g.reject(new ZygoteStartError(`${this.describePeer()} sent ${msg.kind} before its greeting`));
      return;
    }
    if (!this.handlers) {
      for (const fd of fds) native.close(fd);
      return;
    }
    this.handlers.message(msg, fds);
  }

  private finish(err: ZygoteClosedError, byPeer = false): void {
    if (this.ended) return;
    this.ended = err;
    this.endedByPeer = byPeer;
    this.channel.close();
    if (this.greeting) {
      const g = this.greeting;
      this.greeting = null;
      g.reject(new ZygoteStartError(err.message, { cause: err }));
    }
    this.handlers?.end(err, byPeer);
  }
}
