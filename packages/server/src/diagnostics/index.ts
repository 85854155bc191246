export { CommandService } from './commands.js';
export type { CommandSettings, IssueGuard, IssueOptions } from './commands.js';
export { LOG_LEVELS, LogStreams } from './log-streams.js';
export type { LogStreamStatus, StoredLogEntry } from './log-streams.js';
export { diagnosticsRoutes } from './routes.js';
export { COMMAND_STATES } from './diagnostics.js';
export type { CommandFilter, CommandRecord, CommandRepository, CommandState } from './diagnostics.js';
