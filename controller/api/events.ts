// Server-sent events for the dashboard: `GET /api/v1/events` streams a snapshot of the
// controller's state (snapshot.ts) every second. One timer serves every open page: the
// snapshot is built and serialised once per tick, whatever the number of pages, and the timer
// runs only while a page is connected. A client too slow to take the last snapshot skips the
// next one rather than queueing them.

import type { ServerResponse } from 'node:http';
import type { FastifyPluginAsync } from 'fastify';
import type { Controller } from '../controller.js';
import { buildSnapshot, type SimulatorCounters } from './snapshot.js';

export interface EventHub {
  /** Pages connected now. */
  readonly clients: number;
  /** Snapshots built since the start (one per tick with pages connected). */
  readonly built: number;
  close(): void;
}

export interface EventOptions {
  intervalMs?: number;
  simulator?: () => SimulatorCounters;
}

export function eventRoutes(
  controller: Controller,
  opts: EventOptions,
  expose: (hub: EventHub) => void,
): FastifyPluginAsync {
  return (app) => {
    const clients = new Set<ServerResponse>();
    const intervalMs = opts.intervalMs ?? 1000;
    let timer: NodeJS.Timeout | undefined;
    let built = 0;

    const frame = (): string => {
      built++;
      return `event: snapshot\ndata: ${JSON.stringify(buildSnapshot(controller, opts.simulator))}\n\n`;
    };
    const tick = (): void => {
      if (clients.size === 0) return;
      let data: string;
      try {
        data = frame();
      } catch (err) {
        app.log.warn({ err }, 'cannot build the dashboard snapshot');
        return;
      }
      for (const res of clients) if (res.writableNeedDrain === false) res.write(data);
    };
    const stop = (): void => {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
    };
    const hub: EventHub = {
      get clients() {
        return clients.size;
      },
      get built() {
        return built;
      },
      close() {
        stop();
        for (const res of clients) res.end();
        clients.clear();
      },
    };
    expose(hub);
    // Before the server closes: open streams would otherwise keep it from closing.
    app.addHook('preClose', (done) => {
      hub.close();
      done();
    });

    app.get(
      '/api/v1/events',
      {
        config: { access: 'read' },
        schema: {
          summary:
            "Server-sent events: a snapshot of switches, VIPs, nexthops, changes (and the demo's connection counters) every second",
        },
      },
      (req, reply) => {
        reply.hijack();
        const res = reply.raw;
        res.writeHead(200, {
          'content-type': 'text/event-stream; charset=utf-8',
          'cache-control': 'no-store',
          connection: 'keep-alive',
          'x-accel-buffering': 'no',
        });
        // The first snapshot at once, so a page shows data without waiting for the tick.
        res.write(`retry: 2000\n${frame()}`);
        clients.add(res);
        timer ??= setInterval(tick, intervalMs);
        timer.unref();
        req.raw.on('close', () => {
          clients.delete(res);
          if (clients.size === 0) stop();
        });
      },
    );
    return Promise.resolve();
  };
}
