/**
 * Types of one API call, read off the generated api-schema.d.ts (the server's OpenAPI
 * document): which paths a method has, their path and query parameters, the request body
 * and the body of the success response. `api()` in api.ts and the aliases in types.ts use them.
 */
import type { paths } from './api-schema';

export type Method = 'GET' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';

type Operation<M extends Method, P> = P extends keyof paths ? (paths[P] extends { readonly [K in Lowercase<M>]: infer O } ? O : never) : never;

/** The API's paths (as the document writes them, `/api/v1/devices/{id}`) that answer `M`. */
export type PathOf<M extends Method> = { [P in keyof paths]: Operation<M, P> extends never ? never : P }[keyof paths];

type Json<R> = R extends { readonly content: { readonly 'application/json': infer B } } ? B : undefined;
type Success<R> = R extends { readonly 200: infer X } ? X : R extends { readonly 201: infer X } ? X : R extends { readonly 202: infer X } ? X : R extends { readonly 204: infer X } ? X : never;

/** The JSON body of the call's success answer (200, else 201, 202, 204); `undefined` when it has none. */
export type ResponseBody<M extends Method, P extends PathOf<M>> = Json<Success<Operation<M, P> extends { readonly responses: infer R } ? R : never>>;

/** The JSON body the call takes; `never` when it takes none. */
export type RequestBody<M extends Method, P extends PathOf<M>> = Json<NonNullable<Operation<M, P> extends { readonly requestBody?: infer B } ? B : never>>;

type Parameters<M extends Method, P extends PathOf<M>> = Operation<M, P> extends { readonly parameters: infer X } ? X : never;

/** `{id: string}` for `/api/v1/devices/{id}`; `undefined` for a path without parameters. */
export type PathParams<M extends Method, P extends PathOf<M>> = Parameters<M, P> extends { readonly path: infer X } ? X : undefined;

/** The query parameters the call accepts, all optional (the server fills in its defaults). */
export type Query<M extends Method, P extends PathOf<M>> = Parameters<M, P> extends { readonly query?: infer X } ? { readonly [K in keyof NonNullable<X>]?: NonNullable<X>[K] | undefined } : never;

/** One row of a list answer. */
export type Row<L> = L extends readonly (infer R)[] ? R : never;

/** The body of `GET path`'s success answer. */
export type Get<P extends PathOf<'GET'>> = ResponseBody<'GET', P>;
