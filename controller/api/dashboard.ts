// The dashboard's files (built by `npm run build:dashboard` into dist/dashboard) served at `/`
// through @fastify/static. Without a build, `/` says how to make one.

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync } from 'fastify';

/** dist/controller/api/dashboard.js → dist/dashboard */
export const DASHBOARD_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'dashboard');

export const dashboardRoutes =
  (root: string = DASHBOARD_DIR): FastifyPluginAsync =>
  async (app) => {
    if (!existsSync(join(root, 'index.html'))) {
      app.get('/', (_req, reply) =>
        reply
          .status(404)
          .type('text/plain')
          .send('The dashboard is not built: run `npm run build:dashboard` (part of `npm ci`).\n'),
      );
      return;
    }
    await app.register(fastifyStatic, {
      root,
      prefix: '/',
      index: ['index.html'],
      wildcard: false,
      cacheControl: true,
      maxAge: 0,
    });
  };
