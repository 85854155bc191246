export { SchemaService } from './service.js';
export type { SchemaCheck, Validation } from './service.js';
export { compatibilityProblems } from './compatibility.js';
export { schemaRoutes } from './routes.js';
export type { FieldSchema, SchemaDocument, SchemaProblem, SchemaRepository, TelemetrySchema } from './schemas.js';
