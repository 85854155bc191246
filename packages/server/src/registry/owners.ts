import { PlatformError } from '@bulwark/core';

/** An owner naming a group rather than a principal: `group:<group id>`. */
export const OWNER_GROUP_PREFIX = 'group:';

/**
 * A device's owner is a principal (`usr_…`, `svc_…`: the account of the customer who owns it)
 * or a group binding (`group:<id>`: whoever is limited to that group). Returns the check run
 * on every write of an owner; an unknown one is not found, anything else is invalid.
 */
export function ownerCheck(deps: { principalExists(id: string): Promise<boolean>; groupExists(id: string): Promise<boolean> }): (owner: string) => Promise<void> {
  return async (owner) => {
    if (owner.startsWith(OWNER_GROUP_PREFIX)) {
      const group = owner.slice(OWNER_GROUP_PREFIX.length);
      if (!(await deps.groupExists(group))) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `owner ${owner}: no group ${group}`);
      return;
    }
    if (/^(usr|svc)_[a-z0-9]+$/.test(owner)) {
      if (!(await deps.principalExists(owner))) throw new PlatformError('BULWARK_ERR_NOT_FOUND', `owner ${owner}: no user or service account ${owner}`);
      return;
    }
    throw new PlatformError('BULWARK_ERR_VALIDATION', `owner "${owner}" must name a user or service account (usr_…, svc_…) or a group (group:<id>)`, { details: { owner } });
  };
}
