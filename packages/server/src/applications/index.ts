export type { Application, ApplicationRepository, NatsCredentialRecord, SchemaGrant } from './applications.js';
export { type AccountPublisher, ApplicationService, DEFAULT_NATS_CREDENTIAL_TTL_MS, type IssuedNatsCredentials, MAX_NATS_CREDENTIAL_TTL_MS } from './service.js';
export { applicationRoutes } from './routes.js';
export { type ApplicationsWiring, buildApplications, readNatsCreds } from './build.js';
