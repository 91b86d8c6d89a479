// Simulated servers behind the nexthops. Each keeps TCP connection state: a SYN opens a
// connection on the server it reaches; a later segment that reaches a server without that
// connection is answered with RST (the connection is broken); FIN closes it cleanly.

export type SegmentOutcome = 'opened' | 'ok' | 'closed' | 'reset';

export class SimServer {
  private readonly connections = new Set<string>();
  opened = 0;
  closed = 0;
  resetsSent = 0;

  constructor(readonly address: string) {}

  get connectionCount(): number {
    return this.connections.size;
  }

  holds(conn: string): boolean {
    return this.connections.has(conn);
  }

  /** A segment of connection `conn` arriving with the given TCP flags. */
  receive(conn: string, syn: boolean, fin: boolean): SegmentOutcome {
    if (syn) {
      this.connections.add(conn);
      this.opened++;
      return 'opened';
    }
    if (!this.connections.has(conn)) {
      this.resetsSent++;
      return 'reset';
    }
    if (fin) {
      this.connections.delete(conn);
      this.closed++;
      return 'closed';
    }
    return 'ok';
  }

  /** Forgets a connection its client gave up on (after a reset elsewhere). */
  forget(conn: string): void {
    this.connections.delete(conn);
  }
}
