/**
 * Scopes name what a principal may do; roles are named bundles of scopes. A route declares
 * the one scope it needs. `*` (admin) holds every scope. Later contexts add their scopes here.
 */
export const SCOPES = [
  'devices:read',
  'devices:write',
  'devices:command',
  'devices:logs',
  'groups:write',
  'jobs:read',
  'jobs:write',
  'twin:write',
  'telemetry:read',
  'telemetry:write',
  'telemetry:decrypt',
  'schemas:read',
  'schemas:write',
  'firmware:read',
  'firmware:write',
  'rollouts:read',
  'rollouts:write',
  'audit:read',
  'users:read',
  'users:write',
  'keys:read',
  'keys:write',
  'keys:self',
  'metrics:read',
  'secrets:rotate',
  'pki:write',
  'cluster:write',
  'webhooks:read',
  'webhooks:write',
  'applications:read',
  'applications:write',
  'alerts:read',
  'alerts:write',
  'privacy:resolve',
] as const;

export type Scope = (typeof SCOPES)[number];
export type Grant = Scope | '*';

export const ROLES = ['admin', 'operator', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

export const ROLE_SCOPES: Readonly<Record<Role, readonly Grant[]>> = {
  admin: ['*'],
  operator: [
    'devices:read',
    'devices:write',
    'devices:command',
    'devices:logs',
    'groups:write',
    'jobs:read',
    'jobs:write',
    'twin:write',
    'telemetry:read',
    'schemas:read',
    'schemas:write',
    'firmware:read',
    'firmware:write',
    'rollouts:read',
    'rollouts:write',
    'audit:read',
    'users:read',
    'keys:self',
    'metrics:read',
    'webhooks:read',
    'webhooks:write',
    'alerts:read',
    'alerts:write',
  ],
  viewer: ['devices:read', 'jobs:read', 'telemetry:read', 'schemas:read', 'firmware:read', 'rollouts:read', 'metrics:read', 'alerts:read'],
};

export function isScope(value: string): value is Scope {
  return (SCOPES as readonly string[]).includes(value);
}

export function hasScope(granted: readonly Grant[], required: Scope): boolean {
  return granted.includes('*') || granted.includes(required);
}

/**
 * The scopes a key actually carries: the principal's, narrowed to the key's own list when it
 * has one. A key can never hold more than its principal.
 */
export function effectiveScopes(principal: readonly Grant[], key: readonly Grant[] | null): Grant[] {
  if (key === null) return [...principal];
  if (principal.includes('*')) return [...key];
  return key.filter((s) => principal.includes(s));
}

/**
 * Whether a caller holding `caller` may hand out `grants` (to a new key or principal):
 * never more than it holds itself, and `*` only from `*`.
 */
export function covers(caller: readonly Grant[], grants: readonly Grant[]): boolean {
  if (caller.includes('*')) return true;
  return grants.every((g) => g !== '*' && caller.includes(g));
}
