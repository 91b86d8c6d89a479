// Simulated servers behind the nexthops, with the TCP state of each connection as the server
// sees it. A SYN opens a connection on the server it reaches; a later segment that reaches a
// server without that connection is answered with RST (the connection is broken). Closing
// takes a FIN each way: the client's FIN half-closes (the server may keep sending, and the
// client keeps ACKing through the switch); the server's FIN leaves on its own port (the
// reply mirror's side); the connection ends when the last of the two FINs is ACKed — the
// client's final ACK after the server's FIN crosses the switch toward the VIP like any
// client segment (RFC 793, section 3.5). A RST from either side ends it at once.

export type SegmentOutcome = 'opened' | 'ok' | 'closed' | 'reset';

/** Where a connection is, seen from the server (RFC 793 state names, server side). */
type ServerState = 'established' | 'close-wait' | 'fin-wait' | 'last-ack';

const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const ACK = 0x10;

export class SimServer {
  private readonly connections = new Map<string, ServerState>();
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

  /**
   * A client segment of connection `conn` with TCP `flags`. For compatibility, `syn`/`fin`
   * booleans are accepted too: receive(conn, true, false) is a SYN, (conn, false, true) a FIN.
   */
  receive(conn: string, synOrFlags: boolean | number, fin = false): SegmentOutcome {
    const flags =
      typeof synOrFlags === 'number' ? synOrFlags : (synOrFlags ? SYN : ACK) | (fin ? FIN | ACK : 0);
    if ((flags & SYN) !== 0 && (flags & ACK) === 0) {
      this.connections.set(conn, 'established');
      this.opened++;
      return 'opened';
    }
    const st = this.connections.get(conn);
    if (st === undefined) {
      // A RST for a connection it does not hold is dropped silently (RFC 793: never answer a RST).
      if ((flags & RST) !== 0) return 'ok';
      this.resetsSent++;
      return 'reset';
    }
    if ((flags & RST) !== 0) {
      this.connections.delete(conn);
      this.closed++;
      return 'closed';
    }
    if ((flags & FIN) !== 0) {
      // The client's FIN: half-closed (the server may still send), or the end if the server had closed first.
      if (st === 'fin-wait') return this.end(conn);
      this.connections.set(conn, 'close-wait');
      return typeof synOrFlags === 'boolean' ? this.end(conn) : 'ok';
    }
    // An ACK: the final one after the server's FIN ends the connection.
    if (st === 'last-ack') return this.end(conn);
    return 'ok';
  }

  /** The server closes its side (sends FIN); false if it does not hold the connection. */
  fin(conn: string): boolean {
    const st = this.connections.get(conn);
    if (st === undefined) return false;
    if (st === 'close-wait') this.connections.set(conn, 'last-ack');
    else if (st === 'established') this.connections.set(conn, 'fin-wait');
    return true;
  }

  /** The server resets the connection (sends RST); false if it does not hold it. */
  rst(conn: string): boolean {
    if (!this.connections.delete(conn)) return false;
    this.resetsSent++;
    return true;
  }

  /** Forgets a connection its client gave up on (after a reset elsewhere). */
  forget(conn: string): void {
    this.connections.delete(conn);
  }

  private end(conn: string): SegmentOutcome {
    this.connections.delete(conn);
    this.closed++;
    return 'closed';
  }
}
