export { IdentityService } from './service.js';
export type { IdentitySettings, IssuedCertificate, IssuedClaimToken, PeerCertificate } from './service.js';
export { loadOrCreateAuthority, fingerprintOf } from './authority.js';
export type { DeviceAuthority } from './authority.js';
export { issueServerCertificate, deviceIdOf, DEVICE_URN_PREFIX } from './pki.js';
export { pkcs8Pem, exportPkcs8 } from './x509.js';
export type { CaRecord, ClaimToken, DeviceCertificate, IdentityRepository } from './identity.js';
