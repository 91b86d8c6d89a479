// Maps every error the API can meet to one JSON shape (schemas.ts ErrorSchema) and status:
// flowpin's coded errors, schema validation (400 with the field at fault), HTTP-level errors
// (401/403/429 of auth, 404 of unknown routes, 408, 413, 414, 415, 431), and anything else
// (500). Input is never echoed at length: messages are cut at MESSAGE_MAX characters.
// Status meanings: RFC 9110 section 15.5 (400-415), RFC 6585 sections 4 and 5 (429 with
// Retry-After, 431). Node's HTTP parser reports oversized headers as HPE_HEADER_OVERFLOW and a
// request slower than server.requestTimeout as ERR_HTTP_REQUEST_TIMEOUT (node's http docs,
// 'clientError' event); fastify hands both to its clientErrorHandler option.

import type { Socket } from 'node:net';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FlowpinError } from '../errors.js';
import type { ErrorBody } from './schemas.js';

export type { ErrorBody } from './schemas.js';

/** Longest message an error body carries. */
export const MESSAGE_MAX = 300;
/** Longest URL quoted in a 404. */
const URL_QUOTE = 100;

/** An HTTP-level refusal (auth, limits) with its own code. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const CODES: Record<number, string> = {
  400: 'bad-request',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'not-found',
  405: 'method-not-allowed',
  406: 'not-acceptable',
  408: 'request-timeout',
  409: 'conflict',
  421: 'misdirected-request',
  413: 'payload-too-large',
  414: 'uri-too-long',
  415: 'unsupported-media-type',
  429: 'too-many-requests',
  431: 'headers-too-large',
  503: 'unavailable',
};

export const codeFor = (status: number): string =>
  CODES[status] ?? (status >= 500 ? 'internal' : 'bad-request');

const cut = (s: string, n = MESSAGE_MAX): string => (s.length > n ? `${s.slice(0, n)}...` : s);

export function errorBody(
  status: number,
  message: string,
  extra: Omit<ErrorBody, 'error' | 'message'> = {},
): ErrorBody {
  return { error: codeFor(status), message: cut(message), ...extra };
}

/** Where a URL is quoted: cut, one line. */
export const quoteUrl = (url: string): string => cut(url.replace(/[\r\n]/g, ''), URL_QUOTE);

function sendError(
  req: FastifyRequest,
  reply: FastifyReply,
  err: FastifyError | FlowpinError | HttpError | Error,
): FastifyReply {
  if (err instanceof FlowpinError) {
    const body: ErrorBody = { error: err.code, message: cut(err.message) };
    const field = err.detail?.['field'];
    if (typeof field === 'string') body.field = cut(field, 100);
    if (err.detail !== undefined) body.detail = err.detail;
    if (err.status >= 500) req.log.warn({ err }, 'request failed');
    const location = err.detail?.['location'];
    if (typeof location === 'string') void reply.header('location', location);
    return reply.status(err.status).send(body);
  }
  if (err instanceof HttpError)
    return reply
      .status(err.statusCode)
      .headers(err.headers)
      .send({ error: err.code, message: cut(err.message) } satisfies ErrorBody);
  const fe = err as FastifyError;
  if (fe.statusCode === 415) {
    const sent = String(req.headers['content-type'] ?? 'none').slice(0, 64);
    return reply
      .status(415)
      .send(
        errorBody(
          415,
          `the body must be JSON: send it with 'Content-Type: application/json' (the request said '${sent}')`,
        ),
      );
  }
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    return reply.status(fe.statusCode).send(errorBody(fe.statusCode, fe.message));
  }
  if (fe.statusCode === 503)
    return reply.status(503).send(errorBody(503, 'the service is shutting down or overloaded'));
  req.log.error({ err }, 'unexpected error');
  return reply.status(500).send(errorBody(500, 'internal error'));
}

export function installErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | FlowpinError | Error, req, reply) => sendError(req, reply, err));
  app.setNotFoundHandler((req, reply) =>
    reply.status(404).send(errorBody(404, `no route ${req.method.slice(0, 16)} ${quoteUrl(req.url)}`)),
  );
}

/** fastify's router errors (over-long path parameter, malformed URL) in the same shape. */
export function frameworkErrors(err: FastifyError, req: FastifyRequest, reply: FastifyReply): void {
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH')
    void reply.status(414).send(errorBody(414, 'a path parameter is too long'));
  else
    void reply
      .status(400)
      .send(errorBody(400, err.code === 'FST_ERR_BAD_URL' ? 'the URL is malformed' : 'bad request'));
}

/**
 * Errors node's HTTP parser meets before fastify sees a request (headers or URL too large,
 * request too slow, malformed HTTP), answered in the same shape; then the connection closes.
 */
export function clientErrorHandler(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const status =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? 408
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? 431
        : err.code === 'HPE_URI_TOO_LONG'
          ? 414
          : 400;
  const what =
    status === 408
      ? 'the request took too long to arrive'
      : status === 431
        ? 'the request headers (or URL) are too large'
        : status === 414
          ? 'the URL is too long'
          : 'malformed HTTP request';
  const body = JSON.stringify(errorBody(status, what));
  if (socket.writable)
    socket.write(
      `HTTP/1.1 ${status} ${codeFor(status)}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    );
  socket.destroy(err);
}
