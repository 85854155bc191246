import Type, { type Static } from 'typebox';

/**
 * The exchanges the platform answers itself: time sync, certificate rotation, and the
 * notices on a device's errors topic. JSON on the wire.
 */

/** `{"error": {"code", "message"}}`: the platform's error body, as over HTTP. */
export const PlatformErrorReply = Type.Object(
  {
    error: Type.Object(
      {
        code: Type.String({ description: 'A stable `BULWARK_ERR_*` code, listed in the error reference.' }),
        message: Type.String({ description: 'What to do about it.' }),
      },
      { description: 'What went wrong.' },
    ),
  },
  { description: 'The request was refused.' },
);
export type PlatformErrorReply = Static<typeof PlatformErrorReply>;

export const TimeRequest = Type.Object(
  {
    t0: Type.Number({ description: 'Device wall clock when sent, ms since the epoch.' }),
  },
  { description: 'Asks for the platform time (NTP-style).' },
);
export type TimeRequest = Static<typeof TimeRequest>;

export const TimeAnswer = Type.Object(
  {
    t0: Type.Number({ description: "The request's t0, echoed." }),
    t1: Type.Number({ description: 'Platform time the request was received.' }),
    t2: Type.Number({ description: 'Platform time the answer was sent.' }),
  },
  { description: "With t3 the device's receive time: offset = ((t1 - t0) + (t2 - t3)) / 2, round trip = (t3 - t0) - (t2 - t1)." },
);
export type TimeAnswer = Static<typeof TimeAnswer>;

export const TimeRefusal = Type.Object(
  {
    error: PlatformErrorReply.properties.error,
    t1: Type.Number({ description: 'Platform time the request was received.' }),
    t2: Type.Number({ description: 'Platform time the answer was sent.' }),
  },
  { description: 'The request had no numeric `t0`.' },
);
export type TimeRefusal = Static<typeof TimeRefusal>;

export const TimeReply = Type.Union([TimeAnswer, TimeRefusal], { description: 'The answer to a time request.' });
export type TimeReply = Static<typeof TimeReply>;

export const RotationRequest = Type.Object(
  {
    csr: Type.String({ description: 'PEM certificate request for a new key, signed with it; sent with the current certificate.' }),
  },
  { description: 'Asks for a new certificate.' },
);
export type RotationRequest = Static<typeof RotationRequest>;

export const RotationIssued = Type.Object(
  {
    serial: Type.String({ description: 'Serial number of the new certificate.' }),
    certificate: Type.String({ description: 'The new certificate, PEM.' }),
    caChain: Type.String({ description: 'The issuing CA chain, PEM.' }),
    notAfter: Type.Integer({ description: 'End of validity, ms since the epoch.' }),
  },
  { description: 'The new certificate. The old one stays valid until the new one is first used.' },
);
export type RotationIssued = Static<typeof RotationIssued>;

export const RotationResult = Type.Union([RotationIssued, PlatformErrorReply], { description: 'The new certificate, or why not.' });
export type RotationResult = Static<typeof RotationResult>;

/** One problem of a telemetry message refused by its schema. */
export const SchemaProblem = Type.Object({
  path: Type.String({ description: 'JSON pointer into the message, e.g. `/data/temp_c`.' }),
  expected: Type.String({ description: 'What the schema wants there.' }),
  got: Type.String({ description: 'What the message had (masked where the schema says so).' }),
});

export const ErrorNotice = Type.Object(
  {
    reason: Type.String({ description: 'Stable reason, e.g. `invalid`, `too_large`, `unknown_schema`.' }),
    problems: Type.Array(Type.Union([Type.String(), SchemaProblem]), { description: 'What was wrong: text lines, or `{path, expected, got}` for telemetry.' }),
    topic: Type.String({ description: 'The topic the refused message was published on.' }),
    deadLetterId: Type.Optional(Type.String({ description: 'Telemetry only: the dead letter holding the message.' })),
  },
  { description: 'Why the platform refused a message (MQTT 3.1.1 has no negative PUBACK). The session stays up.' },
);
export type ErrorNotice = Static<typeof ErrorNotice>;
