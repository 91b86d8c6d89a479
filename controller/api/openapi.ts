// An OpenAPI 3 document built from the schemas of the routes as they are registered, served
// at /openapi.json: the API describes itself from the same schemas that validate it.

import type { FastifyInstance, RouteOptions } from 'fastify';

declare module 'fastify/types/schema.js' {
  interface FastifySchema {
    /** One line for the OpenAPI document. */
    summary?: string;
  }
}

interface Op {
  summary?: string;
  parameters: unknown[];
  requestBody?: unknown;
  responses: Record<string, unknown>;
  security?: unknown[];
}

export function collectOpenApi(app: FastifyInstance): () => unknown {
  const paths: Record<string, Record<string, Op>> = {};
  app.addHook('onRoute', (route: RouteOptions) => {
    const schema = (route.schema ?? {}) as { summary?: string; params?: { properties?: Record<string, unknown> }; querystring?: { properties?: Record<string, unknown> }; body?: unknown; response?: Record<string, unknown> };
    if (route.url === '/openapi.json') return;
    const path = route.url.replace(/:([A-Za-z]+)/g, '{$1}');
    const methods = (Array.isArray(route.method) ? route.method : [route.method]).filter((m) => m !== 'HEAD');
    for (const m of methods) {
      const op: Op = { parameters: [], responses: {} };
      if (schema.summary !== undefined) op.summary = schema.summary;
      for (const [name, s] of Object.entries(schema.params?.properties ?? {})) op.parameters.push({ name, in: 'path', required: true, schema: s });
      for (const [name, s] of Object.entries(schema.querystring?.properties ?? {})) op.parameters.push({ name, in: 'query', schema: s });
      if (schema.body !== undefined) op.requestBody = { content: { 'application/json': { schema: schema.body } } };
      for (const [code, s] of Object.entries(schema.response ?? { 200: {} })) op.responses[code] = { description: code, content: { 'application/json': { schema: s } } };
      if (Object.keys(op.responses).length === 0) op.responses['200'] = { description: 'ok' };
      if (route.preHandler !== undefined) op.security = [{ bearer: [] }];
      (paths[path] ??= {})[m.toLowerCase()] = op;
    }
  });
  return () => ({
    openapi: '3.0.3',
    info: { title: 'flowpin', version: '1', description: 'Connection-pinning ECMP controller: drain and add servers behind an anycast VIP without resetting connections.' },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    paths,
  });
}
