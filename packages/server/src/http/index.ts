// What other contexts use of http/: the route schemas, the SSE writer, the status table.
// The app itself (app.ts, guard.ts, audit-hook.ts) is assembled by the composition root (server.ts).
export { IdParams, Nullable, bearer, errorResponses } from './schemas.js';
export { SseWriter } from './sse.js';
export { HTTP_STATUS } from './errors.js';
