import { constants, randomUUID } from 'node:crypto';
import helmet from '@fastify/helmet';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import websocket from '@fastify/websocket';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { PlatformError } from '@bulwark/core';
import type { Metrics } from '../observe/index.js';
import { type ErrorBody, clientErrorResponse, sendError, toPlatformError } from './errors.js';
import { ErrorResponse } from './schemas.js';
import { lazySerializers } from './serializers.js';
import { useBoundedJsonParser } from './json-body.js';
import { requestLogSerializer } from './log-redaction.js';
import type { RouteAuth } from './route-config.js';
import { validatorCompiler } from './validation.js';

export const DOCS_PREFIX = '/api/v1/docs';
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,64}$/;
/**
 * Longest path parameter the router matches (Fastify's default is 100, shorter than a device
 * id may be). Up to here a route's own schema names the problem; beyond it the router
 * refuses with BULWARK_ERR_VALIDATION.
 */
export const MAX_PARAM_LENGTH = 256;
/** How much of an unknown path a 404 message repeats. */
const ECHOED_PATH_LENGTH = 200;

/** One registered route, as the guard and the docs see it. */
export interface RouteInfo {
  readonly method: string;
  readonly url: string;
  readonly auth: RouteAuth;
  readonly audit: string | undefined;
  /** What principal-management routes act on (see RouteAuth's `actsOn`). */
  readonly actsOn: 'principal' | 'key' | undefined;
  /** What it does for a principal limited to device groups (see RouteAuth's `groupLimit`). */
  readonly groupLimit: 'device' | 'filtered' | 'none' | undefined;
  /** A WebSocket route (OpenAPI cannot describe it; the reference lists it separately). */
  readonly websocket: boolean;
  readonly schema: { readonly body?: unknown; readonly querystring?: unknown; readonly params?: unknown };
}

export function describeAuth(auth: RouteAuth): string {
  if ('public' in auth) return 'anyone';
  if ('authenticated' in auth) return 'any token';
  if ('scope' in auth) return `\`${auth.scope}\``;
  return `loopback, or \`${auth.loopbackOrScope}\``;
}

export interface HttpAppOptions {
  readonly logger: FastifyBaseLogger;
  readonly bodyLimitBytes: number;
  /** Addresses or CIDR ranges of trusted reverse proxies (empty: trust none). */
  readonly trustedProxies: readonly string[];
  readonly metrics: Metrics;
  readonly version: string;
  /** Serve HTTPS with this key and certificate chain (PEM), sending HSTS for `hstsMaxAgeS` seconds (0: no header). */
  readonly tls?: { readonly key: string; readonly cert: string; readonly hstsMaxAgeS: number };
}

/**
 * The Fastify instance with everything every route relies on: request ids, strict
 * validation, the error format, security headers, metrics, and the OpenAPI document.
 * Routes are added by the caller; a route without an `auth` setting is refused here.
 */
export async function createHttpApp(o: HttpAppOptions): Promise<{ app: FastifyInstance; routes: RouteInfo[] }> {
  const routes: RouteInfo[] = [];
  const limits = { maxParamLength: MAX_PARAM_LENGTH };
  const fail = (err: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const error = toPlatformError(err, limits);
    o.metrics.httpErrors.inc({ code: error.code });
    if (error.category === 'internal' || error.category === 'unavailable') request.log.error({ err }, error.message);
    else request.log.info({ code: error.code }, error.message);
    return sendError(request, reply, error);
  };
  const app = Fastify({
    // HTTPS only when TLS is on (no plain listener beside it): TLS 1.2 and up, no session tickets to outlive a key change.
    ...(o.tls ? { https: { key: o.tls.key, cert: o.tls.cert, minVersion: 'TLSv1.2' as const, secureOptions: constants.SSL_OP_NO_TICKET } } : {}),
    // Request log lines carry the URL without credentials (stream tickets ride in the query).
    loggerInstance: o.logger.child({}, { serializers: { req: requestLogSerializer } }),
    bodyLimit: o.bodyLimitBytes,
    trustProxy: o.trustedProxies.length > 0 ? [...o.trustedProxies] : false,
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    return503OnClosing: true,
    schemaController: { compilersFactory: { buildSerializer: lazySerializers } },
    forceCloseConnections: true,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // Errors of the router, before any route, hook or error handler: our format and codes too.
    frameworkErrors: (err, request, reply) => {
      void fail(err, request, reply);
    },
    // Requests Node's HTTP parser refuses never become a request object.
    clientErrorHandler(err, socket) {
      if (err.code === 'ECONNRESET' || socket.destroyed) return;
      o.metrics.httpErrors.inc({ code: 'BULWARK_ERR_BAD_REQUEST' });
      if (socket.writable) socket.end(clientErrorResponse(err));
      else socket.destroy(err);
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  app.setValidatorCompiler(validatorCompiler());
  useBoundedJsonParser(app);

  app.addHook('onRoute', (route) => {
    const url = route.url ?? route.path;
    if (url.startsWith(DOCS_PREFIX)) {
      route.config = { ...(route.config ?? {}), auth: { public: true } };
      route.schema = { ...(route.schema ?? {}), hide: true };
    }
    const auth = route.config?.auth;
    if (!auth) throw new Error(`route ${String(route.method)} ${url} declares no auth setting`);
    const schema = (route.schema ?? {}) as RouteInfo['schema'];
    for (const method of [route.method].flat()) {
      if (method !== 'HEAD') routes.push({ method, url, auth, audit: route.config?.audit, actsOn: route.config?.actsOn, groupLimit: route.config?.groupLimit, websocket: (route as { websocket?: boolean }).websocket === true, schema });
    }
  });

  app.addHook('onRequest', async (request, reply) => {
    void reply.header('x-request-id', request.id);
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    o.metrics.httpRequests.inc({ method: request.method, route, status: String(reply.statusCode) });
    o.metrics.httpDuration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
  });

  app.setErrorHandler(async (err, request, reply) => fail(err, request, reply));
  // A plugin's bare refusal gets the format too: @fastify/websocket answers a plain GET on a
  // WebSocket route with a bodiless 404.
  app.addHook('onSend', async (request, reply, payload) => {
    if (reply.statusCode !== 404 || (payload !== undefined && payload !== null && payload !== '')) return payload;
    o.metrics.httpErrors.inc({ code: 'BULWARK_ERR_NOT_FOUND' });
    const url = request.routeOptions.url;
    const websocketOnly = routes.some((r) => r.websocket && r.url === url);
    const message = websocketOnly ? `${request.method} ${url} answers WebSocket upgrades only` : 'not found';
    const body: ErrorBody = { error: { code: 'BULWARK_ERR_NOT_FOUND', message, requestId: request.id } };
    void reply.type('application/json; charset=utf-8');
    return JSON.stringify(body);
  });

  // The 404 route passes the guard as a public route (address rate limit), so the answer is
  // this one, which repeats the path without its query (credentials) and cut to a bounded length.
  const notFoundOptions = { config: { auth: { public: true } } } as Parameters<typeof app.setNotFoundHandler>[0];
  app.setNotFoundHandler(notFoundOptions, async (request, reply) => {
    o.metrics.httpErrors.inc({ code: 'BULWARK_ERR_NOT_FOUND' });
    const path = request.url.split('?')[0] ?? '';
    const shown = path.length > ECHOED_PATH_LENGTH ? `${path.slice(0, ECHOED_PATH_LENGTH)}…` : path;
    return sendError(request, reply, new PlatformError('BULWARK_ERR_NOT_FOUND', `no route ${request.method} ${shown}`));
  });

  await app.register(helmet, {
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        objectSrc: ["'none'"],
        frameAncestors: ["'none'"],
        baseUri: ["'self'"],
        formAction: ["'self'"],
      },
    },
    // HSTS only over TLS: browsers ignore it on plain HTTP, and loopback development must stay reachable.
    hsts: o.tls && o.tls.hstsMaxAgeS > 0 ? { maxAge: o.tls.hstsMaxAgeS, includeSubDomains: false } : false,
  });

  app.addSchema(ErrorResponse);
  await app.register(swagger, {
    // Shared schemas (ErrorResponse) keep their $id as their name in components.
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Bulwark API', version: o.version, description: 'Operate a Bulwark deployment: users, keys, audit log, system. Authenticate with an access token from POST /api/v1/auth/token.' },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'bwt' } } },
    },
  });
  await app.register(swaggerUi, { routePrefix: DOCS_PREFIX, staticCSP: true });
  await app.register(websocket, { options: { maxPayload: 64 * 1024 } });

  app.get('/api/v1/openapi.json', { config: { auth: { public: true } }, schema: { hide: true } }, async () => app.swagger());

  return { app, routes };
}
