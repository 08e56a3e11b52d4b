// One Error subclass per case of the WIT error variants (sigv4's sign-error,
// sts's sts-error), so callers catch by class instead of reading tags.

/** Base of every error the sigv4 component reports. */
export class SignError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = new.target.name;
  }
}
export class InvalidUrlError extends SignError {}
export class InvalidHeaderError extends SignError {}
export class InvalidTimeError extends SignError {}
export class InvalidCredentialsError extends SignError {}
export class InvalidOptionError extends SignError {}
/** A streaming body did not match what was announced. */
export class ChunkMismatchError extends SignError {}

/** Base of every error the sts component reports. */
export class StsError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = new.target.name;
  }
}
/** No HTTP answer: DNS, refused connection, TLS, timeout. */
export class TransportError extends StsError {}
/** A request to a host outside the configured STS endpoint was refused. */
export class HostDeniedError extends StsError {}
/** An answer that is not STS XML. */
export class InvalidResponseError extends StsError {}
/** The STS service said no; `code`, `status` and `requestId` say how. */
export class StsRefusedError extends StsError {
  constructor(refusal) {
    const id = refusal.requestId ? ` [request id ${refusal.requestId}]` : '';
    super(`STS refused (HTTP ${refusal.status}, ${refusal.code}): ${refusal.message}${id}`);
    this.code = refusal.code;
    this.status = refusal.status;
    this.requestId = refusal.requestId;
  }
}
/** The request cannot work as given. */
export class InvalidInputError extends StsError {}

const SIGN_ERRORS = {
  'invalid-url': InvalidUrlError,
  'invalid-header': InvalidHeaderError,
  'invalid-time': InvalidTimeError,
  'invalid-credentials': InvalidCredentialsError,
  'invalid-option': InvalidOptionError,
  'chunk-mismatch': ChunkMismatchError,
};

const STS_ERRORS = {
  transport: TransportError,
  'host-denied': HostDeniedError,
  'invalid-response': InvalidResponseError,
  sts: StsRefusedError,
  'invalid-input': InvalidInputError,
};

// jco throws a result's error case as an Error whose `payload` is the
// variant ({ tag, val }); anything else (a trap) passes through unchanged.
function translate(table, fn) {
  try {
    return fn();
  } catch (e) {
    const Class = e?.payload && table[e.payload.tag];
    if (!Class) throw e;
    throw new Class(e.payload.val);
  }
}

export const signErrors = (fn) => translate(SIGN_ERRORS, fn);
export const stsErrors = (fn) => translate(STS_ERRORS, fn);
