import type { Migration } from './migrations.js';

/** Migrations of message tracing; MIGRATIONS puts every context's in id order. */
export const TRACING_MIGRATIONS: readonly Migration[] = [
  {
    id: 25,
    // The spans each node recorded for a traced message (a JSON array), for `bulwark telemetry
    // trace`: found by device and message id, or by trace id; deleted by age.
    name: 'message traces',
    sql: `
      CREATE TABLE message_traces (
        trace_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        msg_id TEXT,
        node TEXT NOT NULL,
        recorded_at BIGINT NOT NULL,
        spans TEXT NOT NULL
      );
      CREATE INDEX message_traces_message ON message_traces (device_id, msg_id);
      CREATE INDEX message_traces_trace ON message_traces (trace_id);
      CREATE INDEX message_traces_recorded ON message_traces (recorded_at)
    `,
  },
];
