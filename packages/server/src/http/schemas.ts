import Type, { type Static } from 'typebox';

/** Schemas shared by routes of every context. */
export const ErrorResponse = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'Stable error code, see docs/reference/errors.md' }),
      message: Type.String(),
      requestId: Type.String(),
      details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    }),
  },
  { $id: 'ErrorResponse' },
);

export const IdParams = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._:-]+$' }),
  },
  { additionalProperties: false },
);

/**
 * The error body by reference: the app registers ErrorResponse once (addSchema), so the
 * OpenAPI document names it in components instead of repeating it in every response of every
 * route. Typed as the body it stands for.
 */
const ErrorRef = Type.Unsafe<Static<typeof ErrorResponse>>({ $ref: 'ErrorResponse#' });

/** Error responses every authenticated route can give. */
export const errorResponses = {
  400: ErrorRef,
  401: ErrorRef,
  403: ErrorRef,
  404: ErrorRef,
  409: ErrorRef,
  413: ErrorRef,
  415: ErrorRef,
  429: ErrorRef,
  500: ErrorRef,
  503: ErrorRef,
};

export const bearer = [{ bearerAuth: [] }];

/** A string or integer field that may also be null. */
export const Nullable = <T extends ReturnType<typeof Type.Integer> | ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);
