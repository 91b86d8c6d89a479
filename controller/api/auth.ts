// Mutating API calls need the bearer token from the configuration; reads do not. Without a
// configured token, mutating calls are refused (never open by default).

import { timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { FlowpinError } from '../errors.js';

export function requireToken(token: string | undefined): (req: FastifyRequest) => Promise<void> {
  const expected = token === undefined ? undefined : Buffer.from(`Bearer ${token}`);
  return (req: FastifyRequest): Promise<void> => {
    if (expected === undefined) return Promise.reject(new FlowpinError('unauthorized', 'changes through the API need api.token in the configuration'));
    const got = Buffer.from(req.headers.authorization ?? '');
    if (got.length !== expected.length || !timingSafeEqual(got, expected)) return Promise.reject(new FlowpinError('unauthorized', 'missing or wrong bearer token'));
    return Promise.resolve();
  };
}
