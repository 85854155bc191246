export { VERSION, buildServer } from './server.js';
export type { BulwarkServer, FirstStart, ServerDeps } from './server.js';
export { SETTINGS, defaultConfig, envName, loadConfig } from './config/index.js';
export type { ConfigSources, ServerConfig, Setting } from './config/index.js';
export { SCOPES, ROLES, ROLE_SCOPES } from './access/index.js';
export { HTTP_STATUS } from './http/errors.js';
export { describeAuth } from './http/app.js';
export type { RouteInfo } from './http/app.js';
