// One client connection as the zygote sees it: its socket, its outgoing queue, its children.
import { encodeServerMessage, type ServerMessage } from '../protocol/control.js';
import { native } from '../native/index.js';

/** A connection whose client has this many unsent packets is not reading: it is dropped. */
const MAX_QUEUED_PACKETS = 4096;

interface Outgoing {
  data: Buffer;
  /** fds to pass with the packet; the zygote's copies are closed once it is sent. */
  fds: number[];
  /** Of those, fds the zygote must keep (a child's pidfd, still needed for reaping). */
  keep: ReadonlySet<number>;
}

export class Connection {
  /** Spawn ids of this client's live children, by id. */
  readonly children = new Map<number, number>(); // id -> pid
  /** When each spawn request still unanswered arrived (performance.now()), by id: for the spawn latency metric. */
  readonly requestedAt = new Map<number, number>();
  private readonly queue: Outgoing[] = [];
  closed = false;

  constructor(
    readonly fd: number,
    readonly peer: { pid: number; uid: number; gid: number },
    /** An fd of the client's mount namespace when it is not the zygote's, else -1 (closed with the connection). */
    readonly mountNs: number = -1,
    /** Sees every message sent (the zygote's metrics). */
    private readonly observe: (conn: Connection, message: ServerMessage) => void = () => {},
  ) {}

  get label(): string {
    return `client fd=${this.fd} uid=${this.peer.uid} pid=${this.peer.pid}`;
  }

  get wantsWrite(): boolean {
    return this.queue.length > 0;
  }

  /**
   * Queues a message (and the fds to pass with it) and sends what the socket takes now.
   * Returns false if the client is too far behind and must be dropped.
   */
  send(message: ServerMessage, fds: number[] = [], keep: ReadonlySet<number> = new Set()): boolean {
    if (this.closed) {
      closeUnkept(fds, keep);
      return true;
    }
    this.observe(this, message);
    this.queue.push({ data: encodeServerMessage(message), fds, keep });
    this.flush();
    return this.queue.length <= MAX_QUEUED_PACKETS;
  }

  /** Sends queued packets until the socket is full. Throws on a dead socket. */
  flush(): void {
    while (this.queue.length > 0) {
      const head = this.queue[0];
      if (!native.sendPacket(this.fd, head.data, head.fds)) return;
      this.queue.shift();
      closeUnkept(head.fds, head.keep);
    }
  }

  /** Closes the socket and every fd still waiting to be passed. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const o of this.queue) closeUnkept(o.fds, o.keep);
    this.queue.length = 0;
    native.close(this.fd);
    if (this.mountNs >= 0) native.close(this.mountNs);
  }
}

function closeUnkept(fds: number[], keep: ReadonlySet<number>): void {
  for (const fd of fds) if (!keep.has(fd)) native.close(fd);
}
