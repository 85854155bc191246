import type { AuthContext, Scope } from '../access/index.js';

/**
 * Every route states who may call it. A route registered without `auth` makes buildServer
 * fail: there is no default-open route.
 * - `public`: anyone (health, token exchange, CRL, API docs).
 * - `authenticated`: any valid access token (whoami, own keys).
 * - `scope`: a valid access token carrying the scope.
 * - `loopbackOrScope`: anyone on loopback, otherwise a token with the scope (metrics).
 */
export type RouteAuth = { readonly public: true } | { readonly authenticated: true } | { readonly scope: Scope } | { readonly loopbackOrScope: Scope };

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: RouteAuth;
    /** Audit action name for calls to this route, e.g. `key.create`. */
    audit?: string;
    /**
     * The route acts on a principal (named by `:id` or `principalId`) or on a key (`:id`).
     * Such a route must refuse a caller that lacks any scope of the target principal; the
     * route-table test calls every one of them against an admin target.
     */
    actsOn?: 'principal' | 'key';
    /**
     * What the route does for a principal limited to device groups (see Principal.deviceGroups):
     * - `device`: its `:id` is a device id; the guard answers 404 for a device outside the groups.
     * - `filtered`: the handler narrows what it reads or changes to the groups' devices.
     * - `none`: it reads or changes nothing about devices (schemas, firmware, whoami).
     * Not set: the route reaches the whole fleet, and such a principal is refused (403).
     */
    groupLimit?: 'device' | 'filtered' | 'none';
  }
  interface FastifyRequest {
    auth?: AuthContext;
    /** Set by a handler to name what it acted on, for the audit entry. */
    auditTarget?: string;
    /** Set by a handler that authenticates its caller itself (token exchange). */
    auditActor?: string;
    /** Extra facts for the audit entry (for example whose key was created). */
    auditDetails?: Record<string, unknown>;
    /**
     * The principal behind a credential that proved itself (right secret, valid signature)
     * but is revoked, expired or disabled: the refusal is audited under its name.
     */
    auditRevoked?: string;
    /** Set by a handler whose read must be audited too (it revealed protected data). */
    auditRead?: string;
  }
}
