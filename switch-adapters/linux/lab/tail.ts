// The bytes a lab server sends on a half-closed connection after the client's FIN (echo-server.ts),
// and that the lab client checks (traffic-client.ts).

export const tailByte = (k: number): number => (k * 13 + (k >> 8) * 5 + 1) & 0xff;
