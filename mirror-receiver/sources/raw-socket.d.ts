// Types for the parts of the raw-socket native addon that the raw GRE source uses.
declare module 'raw-socket' {
  import type { EventEmitter } from 'node:events';
  export const AddressFamily: { readonly IPv4: number; readonly IPv6: number };
  export interface RawSocket extends EventEmitter {
    send(
      buffer: Buffer,
      offset: number,
      length: number,
      address: string,
      callback: (error: Error | null, bytes: number) => void,
    ): void;
    close(): void;
    on(event: 'message', listener: (buffer: Buffer, source: string) => void): this;
    on(event: 'error', listener: (error: Error) => void): this;
    on(event: 'close', listener: () => void): this;
  }
  export function createSocket(options: {
    addressFamily?: number;
    protocol?: number;
    bufferSize?: number;
  }): RawSocket;
  const raw: { AddressFamily: typeof AddressFamily; createSocket: typeof createSocket };
  export default raw;
}
