import { SerializerSelector } from '@fastify/fast-json-stringify-compiler';
import type { FastifyServerOptions } from 'fastify';

type SerializerFactory = NonNullable<NonNullable<NonNullable<FastifyServerOptions['schemaController']>['compilersFactory']>['buildSerializer']>;

/**
 * Response serializers: fast-json-stringify, compiled on a route's first reply of a status
 * instead of for every route and status at start (over a thousand of them, most of a start's
 * time). Error replies are built by sendError in one fixed shape and go out as plain JSON.
 */
export const lazySerializers: SerializerFactory = (externalSchemas, options) => {
  const compile = SerializerSelector()(externalSchemas, options);
  return (info) => {
    if (/^[45]/.test(String(info.httpStatus))) return (data: unknown) => JSON.stringify(data);
    let serialize: ((data: unknown) => string) | undefined;
    return (data: unknown) => (serialize ??= compile(info) as (data: unknown) => string)(data);
  };
};
