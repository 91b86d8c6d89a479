// Maps every error the API can meet to one JSON shape and status: flowpin's coded errors,
// fastify's schema validation (400 with the field at fault), and anything else (500).

import type { FastifyError, FastifyInstance } from 'fastify';
import { FlowpinError } from '../errors.js';

export interface ErrorBody {
  error: string;
  message: string;
  field?: string;
  detail?: Record<string, unknown>;
}

export const errorSchema = {
  type: 'object',
  properties: { error: { type: 'string' }, message: { type: 'string' }, field: { type: 'string' }, detail: { type: 'object', additionalProperties: true } },
  required: ['error', 'message'],
} as const;

export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | FlowpinError | Error, req, reply) => {
    if (err instanceof FlowpinError) {
      const body: ErrorBody = { error: err.code, message: err.message };
      const field = err.detail?.['field'];
      if (typeof field === 'string') body.field = field;
      if (err.detail !== undefined) body.detail = err.detail;
      if (err.status >= 500) req.log.warn({ err }, 'request failed');
      return reply.status(err.status).send(body);
    }
    const fe = err as FastifyError;
    if (fe.validation !== undefined) {
      const first = fe.validation[0];
      const missing = (first?.params as { missingProperty?: string } | undefined)?.missingProperty;
      const path = first?.instancePath.replace(/^\//, '').replace(/\//g, '.') ?? '';
      const field = [fe.validationContext, path || missing].filter((x) => x !== undefined && x !== '').join('.');
      return reply.status(400).send({ error: 'bad-request', message: `${field || 'request'} ${first?.message ?? 'is invalid'}`, field } satisfies ErrorBody);
    }
    if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
      return reply.status(fe.statusCode).send({ error: fe.statusCode === 415 ? 'unsupported-media-type' : 'bad-request', message: fe.message } satisfies ErrorBody);
    }
    req.log.error({ err }, 'unexpected error');
    return reply.status(500).send({ error: 'internal', message: 'internal error' } satisfies ErrorBody);
  });
  app.setNotFoundHandler((req, reply) => reply.status(404).send({ error: 'not-found', message: `no route ${req.method} ${req.url}` } satisfies ErrorBody));
}
