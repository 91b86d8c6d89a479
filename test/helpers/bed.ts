// A test bed for the controller against the simulator under live traffic, in lockstep: the
// simulator runs on a virtual clock with its real eAPI; the controller uses the eAPI adapter
// and receives the simulator's mirrored SYNs over real GRE-in-UDP on loopback. Each step
// advances simulated time, then waits until every mirrored frame has arrived and every
// queue and pin write has drained, so hours of traffic run in seconds, deterministically.

import pino from 'pino';
import { Controller } from '../../controller/controller.js';
import { readConfig, type FlowpinConfig } from '../../controller/config.js';
import { Reader } from '../../lib/validate.js';
import { VirtualClock } from '../../switch-sim/clock.js';
import { portIndexOf, type SimSwitch } from '../../switch-sim/sim-switch.js';
import { clockOf } from '../../cli/scenario/world.js';
import { MirrorSender } from '../../switch-sim/mirror.js';
import { readScenario } from '../../switch-sim/scenario.js';
import { startSimulator, type RunningSimulator } from '../../switch-sim/run.js';
import { TrafficGenerator, type ResetRecord } from '../../switch-sim/traffic.js';
import { SimAdapter } from '../../switch-adapters/sim/adapter.js';
import { createAdapter } from '../../switch-adapters/registry.js';

export const VIP = '192.0.2.80';
export const NH = ['10.0.1.1', '10.0.1.2', '10.0.1.3', '10.0.1.4'];
export const FIFTH = '10.0.1.5';

export interface BedOptions {
  pinMode: 'always' | 'on-change';
  /** The controller runs on the simulator's clock (changes then need bed.during(), which moves it). */
  virtualController?: boolean;
  pinCapacity?: number;
  connectionsPerSecond?: number;
  mirrorFinRst?: boolean;
  stateFile?: string;
  adapter?: 'arista-eapi' | 'gnmi' | 'sim';
  /**
   * The switch mirrors the servers' SYN-ACKs too (ERSPAN II with the port index, or type I with
   * the server's MAC), and the controller learns each flow's server from them (resolution: observe).
   */
  replies?: 'erspan2' | 'erspan1';
  /** Lays out the simulated switch (servers behind SVIs, port-channels) before traffic starts. */
  topology?: (sw: SimSwitch) => void;
  /** Simulated time from accepting a pin or group change to its effect in forwarding, ms. */
  programDelayMs?: number;
  /** Run without flowpin: no controller, group changes made on the switch directly. */
  withoutFlowpin?: boolean;
  seed?: number;
}

export class Bed {
  controller: Controller | undefined;
  sender: MirrorSender | undefined;
  /** Frames the switch had mirrored before the current controller listened. */
  private mirroredBefore = 0;
  config: FlowpinConfig | undefined;
  /** Flows the controller counted at risk or in a change window, by flow id. */
  readonly counted = new Map<string, string>();

  private constructor(
    readonly opts: BedOptions,
    readonly clock: VirtualClock,
    readonly sim: RunningSimulator,
    readonly traffic: TrafficGenerator,
    /** Every reset connection, in order. */
    readonly resets: ResetRecord[],
  ) {}

  /** When the bed's traffic began (the controller's clock): no connection is older. */
  private bornAt = 0;

  static async create(opts: BedOptions): Promise<Bed> {
    const clock = new VirtualClock(0);
    const scenario = readScenario(
      Reader.fromObject('bed', {
        switch: { pinCapacity: opts.pinCapacity ?? 1500, mirrorFinRst: opts.mirrorFinRst ?? false },
        traffic: { enabled: false },
        mirror: { enabled: false },
        eapi: { port: 0 },
        gnmi:
          opts.adapter === 'gnmi'
            ? { enabled: true, port: 0, username: 'admin', password: 'flowpin' }
            : { enabled: false },
        status: { enabled: false },
      }),
    );
    const sim = await startSimulator(scenario, { clock });
    opts.topology?.(sim.sw);
    if (opts.programDelayMs !== undefined) sim.sw.programDelayMs = opts.programDelayMs;
    const resets: ResetRecord[] = [];
    const traffic = new TrafficGenerator(sim.sw, clock, {
      connectionsPerSecond: opts.connectionsPerSecond ?? 10,
      lifetime: { kind: 'lognormal', medianS: 60, sigma: 1, maxS: 1200 },
      packetIntervalMs: 2000,
      targets: [{ vip: VIP, port: 443 }],
      clientBase: '10.100.0.1',
      clientCount: 20_000,
      maxConcurrent: 100_000,
      seed: opts.seed ?? 7,
      onReset: (r) => resets.push(r),
    });
    const bed = new Bed(opts, clock, sim, traffic, resets);
    bed.bornAt = opts.virtualController === true ? clock.now() : Date.now();
    if (!opts.withoutFlowpin) await bed.startController();
    traffic.start();
    return bed;
  }

  /** Starts (or restarts) the controller and points the mirror session at it. */
  async startController(): Promise<Controller> {
    const o = this.opts;
    this.config = readConfig(
      Reader.fromObject('bed', {
        pinMode: o.pinMode,
        settleMs: 20,
        barrierTimeoutMs: 10_000,
        resyncIntervalS: 3600,
        persistIntervalS: 3600,
        retryMaxMs: 400,
        ...(o.stateFile === undefined ? {} : { stateFile: o.stateFile }),
        mirror: { udp: [] },
        switches: [
          {
            name: 'sw1',
            adapter: o.adapter ?? 'arista-eapi',
            mirrorSources: ['127.0.0.2'],
            pinTableSize: o.pinCapacity ?? 1500,
            vips: [{ address: VIP, nexthops: NH }],
            // The bed's traffic starts with it: no connection is older.
            connectionsSince: this.bornAt,
            mirrorEnds: o.mirrorFinRst === true ? 'both-ways' : 'syn-only',
            ...(o.replies === undefined ? {} : { mirrorReplies: true, resolution: 'observe' }),
            ...(o.adapter === 'sim' || o.adapter === 'gnmi'
              ? {}
              : {
                  eapi: {
                    url: this.sim.endpoints.eapi ?? 'http://unset',
                    username: 'admin',
                    password: 'flowpin',
                    timeoutMs: 2000,
                    groupTemplate: 'static-ecmp',
                  },
                }),
            ...(o.adapter === 'gnmi'
              ? {
                  gnmi: {
                    address: this.sim.endpoints.gnmi ?? 'unset:0',
                    insecure: true,
                    username: 'admin',
                    password: 'flowpin',
                    timeoutMs: 10_000,
                    ingressInterfaces: ['Ethernet47'],
                    sampleIntervalMs: 1000,
                    groupProgramDelayMs: (o.programDelayMs ?? 0) + 50,
                  },
                }
              : {}),
          },
        ],
      }),
    );
    const sw = this.config.switches[0];
    if (sw === undefined) throw new Error('no switch');
    const adapter =
      sw.adapter === 'sim'
        ? new SimAdapter(this.sim.sw)
        : createAdapter(sw, { pinIdleTimeoutS: this.config.pinIdleTimeoutS });
    const controller = new Controller({
      config: this.config,
      adapters: new Map([['sw1', adapter]]),
      logger: pino({ level: 'silent' }),
      listen: false,
      onCounted: (_rec, id, why) => this.counted.set(id, why),
      ...(o.virtualController ? { clock: clockOf(this.clock) } : {}),
    });
    await (o.virtualController ? this.during(controller.start()) : controller.start());
    const { port } = await controller.receiver.listenUdp({
      host: '127.0.0.1',
      port: 0,
      receiveBufferBytes: 8 * 1024 * 1024,
    });
    this.mirroredBefore = this.sim.sw.counters.mirrored;
    this.sender?.stop();
    const sender = new MirrorSender({
      host: '127.0.0.1',
      port,
      transport: 'udp',
      sourceAddress: '127.0.0.2',
    });
    await sender.start();
    this.sim.sw.mirror = (p) => sender.send(p);
    const encap = o.replies;
    if (encap !== undefined)
      this.sim.sw.replyMirror = (p, from) =>
        sender.sendReply(p, { mac: from.mac, portIndex: portIndexOf(from.port) }, encap);
    else if (o.mirrorFinRst === true)
      this.sim.sw.replyMirror = (p, from) =>
        sender.sendReply(p, { mac: from.mac, portIndex: portIndexOf(from.port) }, 'erspan1');
    // FIN and RST mirrored both ways: the servers' too, on the reply session (a connection ends with a FIN
    // from each side).
    this.sim.sw.replyMirrorFin = o.mirrorFinRst === true;
    this.sim.sw.replyMirrorRst = o.mirrorFinRst === true;
    this.sender = sender;
    this.controller = controller;
    return controller;
  }

  async stopController(): Promise<void> {
    await this.settle();
    this.sim.sw.mirror = undefined;
    this.sim.sw.replyMirror = undefined;
    await this.controller?.stop();
    this.controller = undefined;
  }

  /**
   * Waits for `p` (a change, say) while simulated time moves on in `stepMs` steps, a step
   * per few real milliseconds: the switch programs pins and group changes and traffic goes
   * on while the controller waits on the switch.
   */
  async during<T>(p: Promise<T>, stepMs = 5, maxSteps = 20_000): Promise<T> {
    let done = false;
    const out = p.finally(() => (done = true));
    out.catch(() => undefined);
    for (let i = 0; !done && i < maxSteps; i++) {
      this.clock.advance(stepMs);
      await new Promise((r) => setTimeout(r, 2));
      // The mirror is real UDP: time waits for frames in flight, so a SYN reaches flowpin
      // within a step of reaching the switch however loaded the machine is.
      await this.mirrorCaughtUp(200);
    }
    return out;
  }

  private async mirrorCaughtUp(maxMs: number): Promise<void> {
    const c = this.controller;
    if (c === undefined) return;
    const end = Date.now() + maxMs;
    while (
      c.receiver.status().frames < this.sim.sw.counters.mirrored - this.mirroredBefore &&
      Date.now() < end
    )
      await new Promise((r) => setTimeout(r, 1));
  }

  /** Waits until every mirrored frame arrived and every queue and pin write is done. */
  async settle(): Promise<void> {
    const c = this.controller;
    if (c === undefined) return;
    const deadline = Date.now() + 20_000;
    for (;;) {
      const received = c.receiver.status().frames;
      const sent = this.sim.sw.counters.mirrored - this.mirroredBefore;
      const busy = [...c.runtimes.values()].some(
        (rt) => rt.queue.length > 0 || !rt.queue.doneThrough(rt.seq),
      );
      if (received >= sent && !busy) break;
      if (Date.now() > deadline)
        throw new Error(`bed did not settle: sent ${sent}, received ${received}, busy ${busy}`);
      await new Promise((r) => setTimeout(r, 1));
    }
    await Promise.all([...c.runtimes.values()].map((rt) => rt.reconciler.flush()));
  }

  /** Runs simulated time forward in steps, settling after each; resync/track every `periodicS`. */
  async run(seconds: number, stepMs = 1000, periodicS = 30): Promise<void> {
    const end = this.clock.now() + seconds * 1000;
    let nextPeriodic = this.clock.now() + periodicS * 1000;
    while (this.clock.now() < end) {
      this.clock.advanceTo(Math.min(end, this.clock.now() + stepMs));
      await this.settle();
      if (this.controller && this.clock.now() >= nextPeriodic) {
        await this.controller.periodic();
        nextPeriodic += periodicS * 1000;
      }
    }
  }

  /** Stops new connections and runs until every live one has ended. */
  async drainTraffic(): Promise<void> {
    this.traffic.stop();
    await this.run(1250, 5000);
  }

  async close(): Promise<void> {
    this.traffic.stop();
    await this.controller?.stop();
    this.sender?.stop();
    await this.sim.stop();
  }
}
