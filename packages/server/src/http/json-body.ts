import { PlatformError } from '@bulwark/core';
import { jsonTextDepth } from '@bulwark/protocol';
import type { FastifyInstance, FastifyRequest } from 'fastify';

/**
 * The deepest nesting of objects and arrays any JSON body of the API may have, the
 * outermost value being level 1. Far above what any route's schema needs; low enough that
 * nothing walking a body recursively (validation, JSON.stringify, the store) runs out of stack.
 */
export const API_JSON_MAX_DEPTH = 32;

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * A tighter nesting bound for this route's JSON body (a body that is sent on to devices
     * must fit their limit); API_JSON_MAX_DEPTH applies to every route either way.
     */
    jsonMaxDepth?: number;
  }
}

type ParseDone = (err: Error | null, body?: unknown) => void;

/**
 * Replaces Fastify's JSON body parser with one that first measures the nesting of the text,
 * without recursion and stopping at the bound, and refuses a deeper body with
 * BULWARK_ERR_JSON_TOO_DEEP (400, details.maxDepth) before anything parses it. Everything
 * else is Fastify's own parser: an empty body and invalid JSON are refused as before, and
 * `__proto__` / `constructor.prototype` keys as the instance's poisoning options say; the
 * body limit applies unchanged.
 */
export function useBoundedJsonParser(app: FastifyInstance, maxDepth = API_JSON_MAX_DEPTH): void {
  const { onProtoPoisoning, onConstructorPoisoning } = app.initialConfig;
  const parse = app.getDefaultJsonParser(onProtoPoisoning ?? 'error', onConstructorPoisoning ?? 'error') as (request: FastifyRequest, body: string, done: ParseDone) => void;
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done: ParseDone) => {
    const routeBound = request.routeOptions.config.jsonMaxDepth;
    const bound = routeBound === undefined ? maxDepth : Math.min(routeBound, maxDepth);
    const text = body as string;
    if (jsonTextDepth(text, bound) > bound) {
      done(new PlatformError('BULWARK_ERR_JSON_TOO_DEEP', `the body nests objects and arrays deeper than ${bound} levels`, { details: { maxDepth: bound } }));
      return;
    }
    parse(request, text, done);
  });
}
