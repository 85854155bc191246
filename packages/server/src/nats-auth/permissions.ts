import type { Permissions } from '@nats-io/jwt';
import { TELEMETRY_PREFIX, TELEMETRY_STREAM, schemaSubjects, subjectToken } from '../stream/index.js';

/** A schema an application may read: every version of `name`, or only `version`. */
export interface SchemaGrant {
  readonly name: string;
  readonly version?: number;
}

/** One consumer an application may create on the telemetry stream: its name and its filter. */
export interface ConsumerGrant {
  readonly name: string;
  readonly filter: string;
  readonly schema: SchemaGrant;
}

export interface ApplicationNatsAccess {
  /** The client must create its inboxes under this prefix (nats.js: `inboxPrefix`). */
  readonly inboxPrefix: string;
  readonly consumers: ConsumerGrant[];
  readonly permissions: Permissions;
}

const S = TELEMETRY_STREAM;

/** The name of an application's consumer for its `index`-th schema grant. */
export const consumerName = (applicationId: string, index: number): string => `app-${applicationId}-${index}`;

/**
 * What an application's NATS user may do: create, read, acknowledge and delete its own named
 * pull consumers on BULWARK_TELEMETRY, one per schema grant, each filtered to that schema's
 * subjects (nats-server 2.9 refuses a create whose body's filter differs from the one in the
 * subject: the permission on the subject is the permission on the filter); and receive on its
 * own inbox prefix. Nothing else: no stream reads by sequence (`STREAM.MSG.GET`, `DIRECT.GET`),
 * no stream info or changes, no other consumer, no publish to readings.
 */
export function applicationNatsAccess(applicationId: string, schemas: readonly SchemaGrant[]): ApplicationNatsAccess {
  const consumers = schemas.map((schema, i): ConsumerGrant => ({ name: consumerName(applicationId, i), filter: schemaSubjects(schema.name, schema.version), schema }));
  const inboxPrefix = `_INBOX_${applicationId}`;
  const allow = ['$JS.API.INFO'];
  schemas.forEach((schema, i) => {
    const name = consumerName(applicationId, i);
    const filters = `${TELEMETRY_PREFIX}.${subjectToken(schema.name)}.${schema.version ?? '*'}.>`;
    allow.push(`$JS.API.CONSUMER.CREATE.${S}.${name}.${filters}`, `$JS.API.CONSUMER.INFO.${S}.${name}`, `$JS.API.CONSUMER.DELETE.${S}.${name}`, `$JS.API.CONSUMER.MSG.NEXT.${S}.${name}`, `$JS.ACK.${S}.${name}.>`);
  });
  return {
    inboxPrefix,
    consumers,
    permissions: {
      pub: {
        allow,
        // Denials win over any allow: reads by sequence or subject, stream changes, readings.
        deny: ['$JS.API.STREAM.>', '$JS.API.DIRECT.GET.>', `${TELEMETRY_PREFIX}.>`, '$JS.API.CONSUMER.DURABLE.>'],
      },
      sub: { allow: [`${inboxPrefix}.>`] },
    },
  };
}
