import { fileURLToPath } from 'node:url';
import { PlatformError } from '@bulwark/core';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { type Asset, DashboardAssets } from './assets.js';

/** Where `npm run build:dashboard` writes the dashboard (packages/dashboard/dist). */
export const DEFAULT_DASHBOARD_DIR = fileURLToPath(new URL('../../../dashboard/dist', import.meta.url));

export interface DashboardOptions {
  /** The Vite build output; default: packages/dashboard/dist. */
  readonly dir?: string;
}

/** Hashed file names change with their content: cache them for a year, never revalidate. */
const IMMUTABLE = 'public, max-age=31536000, immutable';
/** index.html names the current hashed files: always revalidate it (cheap with its ETag). */
const REVALIDATE = 'no-cache';
const ASSET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

const NOT_BUILT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Bulwark: dashboard not built</title></head>
<body>
<h1>The Bulwark dashboard has not been built</h1>
<p>The API is running. To get the dashboard, build it once from the repository root and reload this page:</p>
<pre>npm run build:dashboard</pre>
<p>(<code>npm start</code> does this for you before it starts the server.) The API is described at <a href="/api/v1/docs">/api/v1/docs</a>.</p>
</body></html>
`;

function send(request: FastifyRequest, reply: FastifyReply, file: Asset, cacheControl: string) {
  void reply.header('cache-control', cacheControl).header('etag', file.etag).header('vary', 'accept-encoding');
  if (request.headers['if-none-match'] === file.etag) return reply.code(304).send();
  return reply.type(file.type).send(file.body);
}

/**
 * Serves the operator dashboard at `/` from the same process as the API. The security
 * headers (a Content-Security-Policy with scripts and styles from 'self' only and
 * frame-ancestors 'none', nosniff, Referrer-Policy) come from the app-wide helmet setup,
 * which the built files satisfy: Vite inlines nothing.
 */
export const dashboardRoutes: FastifyPluginAsync<DashboardOptions> = async (app, options) => {
  const assets = new DashboardAssets(options.dir ?? DEFAULT_DASHBOARD_DIR);

  app.get(
    '/',
    {
      config: { auth: { public: true } },
      schema: { tags: ['dashboard'], summary: 'The operator dashboard (a single-page app; its pages are #/ routes)' },
    },
    async (request, reply) => {
      const index = assets.index();
      if (!index) {
        request.log.warn({ dir: assets.dir }, 'the dashboard is not built: run npm run build:dashboard');
        return reply.code(503).header('cache-control', 'no-store').type('text/html; charset=utf-8').send(NOT_BUILT);
      }
      return send(request, reply, index, REVALIDATE);
    },
  );

  app.get(
    '/assets/:name',
    {
      config: { auth: { public: true } },
      schema: { hide: true },
    },
    async (request, reply) => {
      const { name } = request.params as { name: string };
      const file = ASSET_NAME.test(name) ? assets.file(name) : undefined;
      if (!file) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `no dashboard file ${name}; rebuild with npm run build:dashboard and reload`);
      return send(request, reply, file, IMMUTABLE);
    },
  );
};
