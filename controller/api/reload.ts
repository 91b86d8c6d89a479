// `POST /api/v1/reload`: reads the configuration file again and applies what a reload can (API
// tokens, switches added or removed, their VIPs, nexthops and maxUnavailable), whole or not at
// all (controller/reload.ts). 200 with what changed; 400 naming the file and key where the file
// is invalid or changes a key read at start only, or where what runs refuses it (a change in
// flight); 409 where flowpin runs without a configuration file (flowpin start). SIGHUP does the
// same (cli/run.ts).

import type { FastifyPluginAsync } from 'fastify';
import { Type } from 'typebox';
import { FlowpinError } from '../errors.js';
import { ConfigError } from '../../lib/validate.js';
import { errorResponses } from './schemas.js';

export interface ReloadAnswer {
  file: string;
  /** What changed, one line each (empty: the file says what runs). */
  changed: string[];
}

const Answer = Type.Object({ file: Type.String(), changed: Type.Array(Type.String()) });

export const reloadRoutes =
  (reload: (() => Promise<ReloadAnswer>) | undefined): FastifyPluginAsync =>
  (app) => {
    app.post(
      '/api/v1/reload',
      {
        config: { access: 'operator' },
        schema: {
          summary:
            'Read the configuration file again and apply it whole (API tokens; switches added or removed; VIPs, nexthops and maxUnavailable of a switch), or refuse it whole naming the key (400): an invalid file, a key read at start only, a switch, VIP or nexthop removed with a change in flight',
          body: Type.Object(
            {},
            { additionalProperties: false, description: 'none (an empty object, or no body)' },
          ),
          response: { 200: Answer, ...errorResponses },
        },
      },
      async () => {
        if (reload === undefined)
          throw new FlowpinError(
            'conflict',
            'this flowpin runs without a configuration file (flowpin start makes its own): there is nothing to reload; flowpin run --config FILE reloads FILE',
          );
        try {
          return await reload();
        } catch (err) {
          if (err instanceof ConfigError)
            throw new FlowpinError('bad-request', err.message, { file: err.file, key: err.key });
          throw err;
        }
      },
    );
    return Promise.resolve();
  };
