export { ERROR_CODES, PlatformError, isPlatformError } from './errors.js';
export type { ErrorCategory, ErrorCode, PlatformErrorOptions } from './errors.js';
export { ManualClock, systemClock } from './clock.js';
export type { Clock } from './clock.js';
export { SequentialIds, randomIds } from './ids.js';
export type { IdGen } from './ids.js';
export { silentLogger } from './logger.js';
export type { Logger } from './logger.js';
export { GenerationalMap } from './generational-map.js';
