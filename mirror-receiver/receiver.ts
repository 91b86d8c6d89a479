// MirrorReceiver: runs the configured sources through the decoder and hands each decoded TCP
// segment to the sink as a FlowEvent. UDP mirror sockets (GRE-in-UDP, and VXLAN opened by
// address) are read and decoded in a worker thread (receiver-worker.ts), so that nothing the
// controller does on the main thread delays a socket read; events come back in batches. The
// worker reads them with the native recvmmsg reader (native/recvmmsg.c) unless `reader: dgram`
// is asked for or the reader is not built; the status names the reader of each socket.
// The raw GRE socket (listenRaw) is read in the worker too, by the native reader; only where
// that reader is not built does it fall back to the raw-socket addon on the calling thread (that
// addon polls on the process's main event loop, so it cannot serve a worker).
// Decoded on the calling thread: captures (readPcap); the raw GRE socket without the native
// reader; and a VXLAN socket handed over already bound (listenVxlan with `socket`, opened in another
// network namespace by the Linux lab): a dgram socket is a handle of the thread that made it
// and cannot be posted to a worker (worker_threads transfers ports, buffers and file handles,
// not sockets). Nothing a frame contains can stop it: every frame is decoded or counted
// under a drop reason, a sink that throws is counted, and so are the datagrams the kernel
// dropped for a full socket buffer (socket-drops.ts).

import type { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { MirrorDecoder } from './decoder.js';
import { DROP_REASONS, OK, reasonName } from './drop-reasons.js';
import { MirrorSourceError } from './errors.js';
import { readBatch, type BatchMessage } from './event-batch.js';
import { toFlowEvent, type FlowEvent } from './flow-event.js';
import { udpRcvbufErrors, udpSocketDrops } from './socket-drops.js';
import { DEFAULT_RECEIVE_BUFFER, type GreUdpOptions } from './sources/gre-udp.js';
import { loadNativeReader } from './native/addon.js';
import { RawGreSource, type RawGreOptions } from './sources/raw-gre.js';
import { readPcap, type PcapResult } from './sources/pcap.js';
import { VxlanSource, type VxlanOptions } from './sources/vxlan-udp.js';
import { VXLAN_PORT } from './decode-vxlan.js';
import type { ReaderChoice, ReaderName } from './sources/udp-reader.js';
import {
  COUNTER_TRUNCATED,
  COUNTERS,
  type SourceErrorMessage,
  type UdpListenOptions,
  type WorkerReply,
  type WorkerRequest,
} from './worker-protocol.js';

export type FlowEventSink = (event: FlowEvent) => void;

export interface SocketStatus {
  /** As in `listening`, e.g. gre-udp:127.0.0.1:4754. */
  source: string;
  /** Datagrams the kernel dropped for this socket (receive buffer full); null where unknown. */
  drops: number | null;
  /**
   * The socket's receive buffer as the kernel set it (Linux: twice the usable size, capped by
   * net.core.rmem_max).
   */
  receiveBufferBytes: number;
  /** The receive buffer asked for (configuration, or 32 MiB). */
  requestedBufferBytes: number;
  /**
   * What reads the socket: the native recvmmsg reader, Node's dgram, or (raw GRE without the native reader)
   * the raw-socket addon.
   */
  reader: ReaderName | 'raw-socket';
  /**
   * Why the native reader does not read this socket (not built, or a socket handed over already bound);
   * absent where it does or `reader: dgram` was asked for.
   */
  readerNote?: string;
}

export interface ReceiverStatus {
  frames: number;
  decoded: number;
  dropped: Record<string, number>;
  sinkErrors: number;
  listening: string[];
  /** Kernel drops over this receiver's UDP sockets (null when no socket's count is known). */
  socketDrops: number | null;
  /** Decoded events not delivered because the main thread was that far behind (bounded queue). */
  backlogDrops: number;
  /**
   * Datagrams longer than the native reader's slot, decoded from the bytes that fit (counted in frames too).
   */
  truncated: number;
  sockets: SocketStatus[];
  /** Host-wide UDP RcvbufErrors (every socket of every process), for context; null where unknown. */
  hostUdpRcvbufErrors: number | null;
}

const SOCKET_DROPS_CACHE_MS = 20;

interface UdpSocketInfo {
  source: string;
  address: string;
  port: number;
  receiveBufferBytes: number;
  requestedBufferBytes: number;
  /** The last count read while open, kept after stop. */
  drops: number | null;
  open: boolean;
  /** Read on the main thread (a socket handed over), not in the worker. */
  inThread: boolean;
  /** A raw GRE socket: no /proc/net/udp line (drops stay unknown). */
  raw: boolean;
  reader: ReaderName | 'raw-socket';
  readerNote: string | undefined;
}

export class MirrorReceiver {
  /** Decodes captures given to readPcap and raw GRE frames, on the calling thread. */
  private readonly decoder = new MirrorDecoder();
  private readonly inThread: { stop(): void | Promise<void> }[] = [];
  private readonly listening: string[] = [];
  private sinkErrors = 0;
  private worker: Worker | undefined;
  private consumed: Int32Array | undefined;
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (r: WorkerReply) => void; reject: (e: Error) => void }
  >();
  /** Counters of stopped workers, and the latest snapshot of the running one. */
  private readonly retired: Float64Array = new Float64Array(COUNTERS);
  private current: Float64Array = new Float64Array(COUNTERS);
  private readonly udp: UdpSocketInfo[] = [];
  private dropsReadAt = 0;
  private readonly atOf: (wallMs: number) => number;

  constructor(
    private readonly sink: FlowEventSink,
    private readonly now: () => number = Date.now,
    private readonly onSourceError: (err: Error) => void = () => undefined,
  ) {
    // The worker stamps frames with the wall clock as they arrive; with another clock (a
    // simulated one) an event carries that clock's time when it is delivered.
    this.atOf = now === Date.now ? (wall) => wall : () => this.now();
  }

  /** Listens for GRE-in-UDP in the worker (VXLAN on its port 4789); resolves with the bound address. */
  async listenUdp(
    options: GreUdpOptions & {
      encap?: 'gre' | 'vxlan';
      reader?: ReaderChoice;
      slots?: number;
      slotBytes?: number;
      holdMs?: number;
    },
  ): Promise<{ address: string; port: number }> {
    // UDP 4789 is VXLAN's port (RFC 7348): a configured listener there reads VXLAN.
    const encap = options.encap ?? (options.port === VXLAN_PORT ? 'vxlan' : 'gre');
    return this.listenInWorker({ ...options, encap });
  }

  /**
   * Listens for VXLAN; resolves with the bound address. Read in the worker, except a socket
   * handed over already bound (see the header): that one is read on this thread.
   */
  async listenVxlan(
    options: VxlanOptions & { reader?: ReaderChoice },
  ): Promise<{ address: string; port: number }> {
    if (options.socket === undefined) {
      const { socket: _none, ...rest } = options;
      return this.listenInWorker({ ...rest, port: rest.port ?? VXLAN_PORT, encap: 'vxlan' });
    }
    const { reader: _reader, ...vxlan } = options;
    const source = new VxlanSource(vxlan, (payload, outerSrc, outerDst) => {
      this.emitIf(this.decoder.decodeVxlanPayload(payload, outerSrc, outerDst), this.now());
    });
    const bound = await source.start();
    this.inThread.push(source);
    const name = `vxlan:${bound.address}:${bound.port}`;
    this.listening.push(name);
    const buf = source.receiveBuffer();
    this.udp.push({
      source: name,
      address: bound.address,
      port: bound.port,
      receiveBufferBytes: buf.granted,
      requestedBufferBytes: buf.requested,
      drops: null,
      open: true,
      inThread: true,
      raw: false,
      reader: 'dgram',
      readerNote: 'a socket handed over already bound is read on the main thread with dgram',
    });
    return bound;
  }

  private async listenInWorker(options: UdpListenOptions): Promise<{ address: string; port: number }> {
    const r = await this.request({
      type: 'listen-udp',
      id: 0,
      options: { ...options, receiveBufferBytes: options.receiveBufferBytes ?? DEFAULT_RECEIVE_BUFFER },
    });
    if (!r.ok) {
      // A worker with nothing to read would keep the process alive for nothing.
      if (this.listening.length === 0) await this.stop();
      throw new MirrorSourceError(r.message);
    }
    const bound = r.bound ?? { address: options.host ?? '0.0.0.0', port: options.port ?? 0 };
    const source = `${options.encap === 'vxlan' ? 'vxlan' : 'gre-udp'}:${bound.address}:${bound.port}`;
    this.listening.push(source);
    this.udp.push({
      source,
      address: bound.address,
      port: bound.port,
      receiveBufferBytes: r.receiveBuffer?.granted ?? 0,
      requestedBufferBytes: r.receiveBuffer?.requested ?? 0,
      drops: null,
      open: true,
      inThread: false,
      raw: false,
      reader: r.reader ?? 'dgram',
      readerNote: r.readerNote,
    });
    return bound;
  }

  /**
   * Opens a raw GRE socket (root or CAP_NET_RAW), read in the worker by the native reader.
   * Where that reader is not built, the raw-socket addon reads it on this thread instead (it
   * polls on the process's default event loop, so it cannot serve a worker), and the status says so.
   */
  async listenRaw(options: RawGreOptions & { receiveBufferBytes?: number }): Promise<void> {
    const family = options.family ?? 4;
    const name = `raw-gre:ipv${family}`;
    const native = loadNativeReader();
    if (!('error' in native)) {
      const requested = options.receiveBufferBytes ?? DEFAULT_RECEIVE_BUFFER;
      const r = await this.request({
        type: 'listen-raw',
        id: 0,
        options: { family, receiveBufferBytes: requested },
      });
      if (!r.ok) {
        if (this.listening.length === 0) await this.stop();
        throw new MirrorSourceError(r.message);
      }
      this.listening.push(name);
      this.udp.push({
        source: name,
        address: '',
        port: 0,
        receiveBufferBytes: r.receiveBuffer?.granted ?? 0,
        requestedBufferBytes: requested,
        drops: null,
        open: true,
        inThread: false,
        raw: true,
        reader: 'recvmmsg',
        readerNote: undefined,
      });
      return;
    }
    this.listenRawInThread(options, name, native.error);
  }

  private listenRawInThread(options: RawGreOptions, name: string, why: string): void {
    const source = new RawGreSource(options, {
      onIpPacket: (packet) => this.emitIf(this.decoder.decodeIpPacket(packet), this.now()),
      onGrePayload: (payload, outerSrc) =>
        this.emitIf(this.decoder.decodeGrePayload(payload, outerSrc, '::'), this.now()),
      onError: this.onSourceError,
    });
    source.start();
    this.inThread.push(source);
    this.listening.push(name);
    this.udp.push({
      source: name,
      address: '',
      port: 0,
      receiveBufferBytes: 0,
      requestedBufferBytes: 0,
      drops: null,
      open: true,
      inThread: true,
      raw: true,
      reader: 'raw-socket',
      readerNote: why,
    });
  }

  /** Reads a pcap or pcapng file or stream to its end, with capture timestamps as event times. */
  async readPcap(input: string | Readable): Promise<PcapResult> {
    return readPcap(input, (buf, off, end, linkType, at) =>
      this.emitIf(this.decoder.decodeLink(linkType, buf, off, end), at),
    );
  }

  status(): ReceiverStatus {
    const c = this.decoder.counters;
    const w = (i: number): number => (this.retired[i] ?? 0) + (this.current[i] ?? 0);
    const dropped: Record<string, number> = c.droppedByReason();
    for (let code = 1; code <= DROP_REASONS.length; code++) {
      const n = w(3 + code);
      if (n > 0) dropped[reasonName(code)] = (dropped[reasonName(code)] ?? 0) + n;
    }
    const sockets = this.socketStatus();
    const known = sockets.filter((s) => s.drops !== null);
    return {
      frames: c.frames + w(0),
      decoded: c.decoded + w(1),
      dropped,
      sinkErrors: this.sinkErrors,
      listening: [...this.listening],
      socketDrops: known.length === 0 ? null : known.reduce((a, s) => a + (s.drops ?? 0), 0),
      backlogDrops: w(2),
      truncated: w(COUNTER_TRUNCATED),
      sockets,
      hostUdpRcvbufErrors: udpRcvbufErrors(),
    };
  }

  /** Closes every source; the events decoded before are delivered first. */
  async stop(): Promise<void> {
    this.readSocketDrops(true);
    for (const u of this.udp) if (u.inThread) u.open = false;
    await Promise.all(this.inThread.splice(0).map(async (s) => s.stop()));
    const worker = this.worker;
    if (worker !== undefined) {
      await this.request({ type: 'stop', id: 0 });
      this.worker = undefined;
      for (let i = 0; i < COUNTERS; i++) this.retired[i] = (this.retired[i] ?? 0) + (this.current[i] ?? 0);
      this.current = new Float64Array(COUNTERS);
      for (const u of this.udp) u.open = false;
      await worker.terminate();
    }
    this.listening.length = 0;
  }

  private socketStatus(): SocketStatus[] {
    this.readSocketDrops(false);
    return this.udp.map((u) => ({
      source: u.source,
      drops: u.drops,
      receiveBufferBytes: u.receiveBufferBytes,
      requestedBufferBytes: u.requestedBufferBytes,
      reader: u.reader,
      ...(u.readerNote === undefined ? {} : { readerNote: u.readerNote }),
    }));
  }

  private readSocketDrops(force: boolean): void {
    const t = Date.now();
    if (!force && t - this.dropsReadAt < SOCKET_DROPS_CACHE_MS) return;
    this.dropsReadAt = t;
    for (const u of this.udp) if (u.open && !u.raw) u.drops = udpSocketDrops(u.address, u.port);
  }

  private sourceFailed(source: string, message: string): void {
    const i = this.listening.indexOf(source);
    if (i >= 0) this.listening.splice(i, 1);
    this.onSourceError(new MirrorSourceError(message));
    if (this.listening.length === 0)
      this.stop().catch((err: unknown) =>
        this.onSourceError(err instanceof Error ? err : new Error(String(err))),
      );
  }

  private emitIf(result: number, at: number): void {
    if (result === OK) this.deliver(toFlowEvent(this.decoder.view, at));
  }

  private deliver(ev: FlowEvent): void {
    try {
      this.sink(ev);
    } catch (err) {
      this.sinkErrors++;
      this.onSourceError(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private startWorker(): Worker {
    const consumed = new SharedArrayBuffer(4);
    this.consumed = new Int32Array(consumed);
    const worker = new Worker(new URL('./receiver-worker.js', import.meta.url), { workerData: { consumed } });
    worker.on('message', (msg: BatchMessage | WorkerReply | SourceErrorMessage) => {
      if (msg.type === 'batch') {
        readBatch(msg, this.atOf, (ev) => this.deliver(ev));
        this.current = msg.counters;
        if (this.consumed !== undefined) Atomics.add(this.consumed, 0, 1);
      } else if (msg.type === 'reply') {
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        p?.resolve(msg);
      } else {
        this.onSourceError(new MirrorSourceError(msg.message));
      }
    });
    const failAll = (err: Error): void => {
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on('error', (err) => {
      this.onSourceError(
        new MirrorSourceError(`mirror receiver worker failed: ${err.message}`, { cause: err }),
      );
      failAll(err);
    });
    worker.on('exit', (code) => {
      if (this.worker === worker) {
        this.worker = undefined;
        failAll(new MirrorSourceError(`mirror receiver worker exited (${code})`));
      }
    });
    this.worker = worker;
    return worker;
  }

  private request(req: WorkerRequest): Promise<WorkerReply> {
    if (req.type === 'stop' && this.worker === undefined)
      return Promise.resolve({ type: 'reply', id: 0, ok: true });
    const worker = this.worker ?? this.startWorker();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ ...req, id });
    });
  }
}
