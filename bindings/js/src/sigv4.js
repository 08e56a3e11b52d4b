// SigV4 signing through the sigv4 component (it imports nothing).
import { createHash } from 'node:crypto';
import { instantiate } from '../gen/sigv4/sigv4.js';
import { coreModules, versionless } from './load.js';
import { InvalidOptionError, InvalidTimeError, signErrors } from './errors.js';

const exports = await instantiate(coreModules('sigv4'), versionless({}));
const wit = exports.sigv4;

const encoder = new TextEncoder();
// jco's resources dispose under this key (Symbol.dispose where it exists).
const dispose = Symbol.dispose || Symbol.for('dispose');

/** The component's payload variant from a request's body fields. */
function payload(request) {
  const { body, payloadHash, unsignedPayload } = request;
  if (body !== undefined && body !== null) {
    if (typeof body === 'string') return { tag: 'bytes', val: encoder.encode(body) };
    if (body instanceof Uint8Array) return { tag: 'bytes', val: body };
    if (ArrayBuffer.isView(body)) return { tag: 'bytes', val: new Uint8Array(body.buffer, body.byteOffset, body.byteLength) };
    if (body instanceof ArrayBuffer) return { tag: 'bytes', val: new Uint8Array(body) };
    throw new TypeError('body must be a string, a Uint8Array or an ArrayBuffer');
  }
  if (payloadHash !== undefined) return { tag: 'precomputed', val: payloadHash };
  if (unsignedPayload) return { tag: 'unsigned-payload' };
  return { tag: 'empty' };
}

/** Headers as (name, value) pairs, in order, from an array of pairs, an object, a Map or a Headers. */
function headerPairs(headers) {
  if (headers === undefined) return [];
  if (Array.isArray(headers)) return headers;
  if (typeof headers[Symbol.iterator] === 'function') return Array.from(headers, ([n, v]) => [n, String(v)]);
  return Object.entries(headers).map(([n, v]) => [n, String(v)]);
}

function signableRequest(request) {
  if (typeof request === 'string') request = { url: request };
  return { method: request.method ?? 'GET', url: request.url ?? '', headers: headerPairs(request.headers), payload: payload(request) };
}

function signingTime(time) {
  if (time === undefined) time = new Date();
  if (time instanceof Date) {
    const ms = time.getTime();
    if (Number.isNaN(ms)) throw new InvalidTimeError('the signing time is an invalid Date');
    return { tag: 'unix-seconds', val: BigInt(Math.floor(ms / 1000)) };
  }
  if (typeof time === 'string') return { tag: 'amz-date', val: time };
  if (typeof time === 'bigint') return { tag: 'unix-seconds', val: time };
  if (Number.isSafeInteger(time)) return { tag: 'unix-seconds', val: BigInt(time) };
  throw new InvalidTimeError('time must be a Date, Unix seconds or an X-Amz-Date string (YYYYMMDDTHHMMSSZ)');
}

function signOptions(options = {}, presign) {
  return {
    region: options.region ?? '',
    service: options.service ?? 's3',
    time: signingTime(options.time),
    presignExpires: presign ? (options.expiresIn ?? 3600) : undefined,
    normalizePath: options.normalizePath ?? true,
    signBody: options.signBody ?? false,
    signSessionToken: options.signSessionToken ?? true,
  };
}

function credentialsRecord(credentials = {}) {
  return {
    accessKeyId: credentials.accessKeyId ?? '',
    secretAccessKey: credentials.secretAccessKey ?? '',
    sessionToken: credentials.sessionToken ?? undefined,
  };
}

// `sign` and `presign` call the component's `sign-flat` export: a dozen
// strings and scalars in, one NUL-separated string out, where `sign` takes
// a request record with a list of header tuples and returns a record that
// jco builds field by field. The body is hashed here (node:crypto, native)
// and only its digest crosses.

function flatPayload(request) {
  const { body, payloadHash, unsignedPayload } = request;
  if (body !== undefined && body !== null) {
    if (typeof body === 'string' || ArrayBuffer.isView(body)) return createHash('sha256').update(body).digest('hex');
    if (body instanceof ArrayBuffer) return createHash('sha256').update(new Uint8Array(body)).digest('hex');
    throw new TypeError('body must be a string, a Uint8Array or an ArrayBuffer');
  }
  if (payloadHash !== undefined) return payloadHash;
  return unsignedPayload ? 'UNSIGNED-PAYLOAD' : '';
}

/** `sign-flat`'s time: decimal Unix seconds or an X-Amz-Date. */
function flatTime(time) {
  const t = signingTime(time);
  return t.tag === 'amz-date' ? t.val : String(t.val);
}

/** `sign-flat`'s presign-expires, where 0 signs the headers: values it cannot carry are refused here, the rest (the 7-day limit) by the component. */
function flatExpires(options, presign) {
  if (!presign) return 0;
  const expires = options?.expiresIn ?? 3600;
  if (!Number.isSafeInteger(expires) || expires <= 0 || expires >= 2 ** 32) {
    throw new InvalidOptionError(`presign expiry ${expires} is not a positive number of seconds`);
  }
  return expires;
}

function signFlat(request, credentials = {}, options = {}, presign) {
  if (typeof request === 'string') request = { url: request };
  const fields = [];
  for (const [name, value] of headerPairs(request.headers)) fields.push(String(name), String(value));
  const flat = wit.signFlat(
    request.method ?? 'GET',
    request.url ?? '',
    fields.join('\0'),
    fields.length / 2,
    flatPayload(request),
    credentials.accessKeyId ?? '',
    credentials.secretAccessKey ?? '',
    credentials.sessionToken ?? '',
    options.region ?? '',
    options.service ?? 's3',
    flatTime(options.time),
    flatExpires(options, presign),
    options.normalizePath ?? true,
    options.signBody ?? false,
    options.signSessionToken ?? true,
  );
  const f = flat.split('\0');
  const headers = [];
  for (let i = 7; i < f.length; i += 2) headers.push([f[i], f[i + 1]]);
  const canonicalRequest = f[6];
  return {
    // The canonical request starts with the method as signed.
    method: canonicalRequest.slice(0, canonicalRequest.indexOf('\n')),
    url: f[0],
    headers,
    signature: f[1],
    canonicalRequest,
    stringToSign: f[5],
    signedHeaders: f[2],
    authorization: f[4] || undefined,
    payloadHash: f[3],
  };
}

/** Signs a request's headers (an `Authorization` header). */
export function sign(request, credentials, options) {
  return signErrors(() => signFlat(request, credentials, options, false));
}

/** A presigned URL request: the signature in the query, valid `expiresIn` seconds (default 3600). */
export function presign(request, credentials, options) {
  return signErrors(() => signFlat(request, credentials, options, true));
}

/** Lowercase hex SHA-256 of a payload. */
export function payloadSha256(body) {
  return wit.payloadSha256(typeof body === 'string' ? encoder.encode(body) : body);
}

/**
 * Holds credentials for a series of requests; derives the signing key once
 * per (date, region, service). `dispose()` (or `using`) forgets the secret.
 */
export class Signer {
  #signer;

  constructor(credentials) {
    this.#signer = new wit.Signer(credentialsRecord(credentials));
  }

  /** Like `sign()`; with `options.expiresIn` it presigns. */
  sign(request, options) {
    return signErrors(() => this.#signer.sign(signableRequest(request), signOptions(options, options?.expiresIn !== undefined)));
  }

  /** Only what goes on the wire: `{ url, headers }`. */
  signForSending(request, options) {
    return signErrors(() =>
      this.#signer.signForSending(signableRequest(request), signOptions(options, options?.expiresIn !== undefined)),
    );
  }

  /**
   * Signs the headers of an aws-chunked upload of `decodedLength` bytes in
   * chunks of `chunkSize` bytes; returns the signed request and the
   * ChunkSigner that frames the body.
   */
  startStreaming(request, options, { decodedLength, chunkSize }) {
    return signErrors(() => {
      const [signed, chunks] = this.#signer.startStreaming(
        signableRequest(request),
        signOptions(options, false),
        BigInt(decodedLength),
        chunkSize,
      );
      return { request: signed, chunkSigner: new ChunkSigner(chunks) };
    });
  }

  dispose() {
    this.#signer?.[dispose]?.();
    this.#signer = undefined;
  }

  [dispose]() {
    this.dispose();
  }
}

/** Frames the chunks of one aws-chunked body, each signature chained to the previous one. */
export class ChunkSigner {
  #chunks;

  /** @internal made by Signer#startStreaming */
  constructor(chunks) {
    this.#chunks = chunks;
  }

  /** `hex-size;chunk-signature=SIG\r\n` + data + `\r\n`. */
  signChunk(data) {
    return signErrors(() => this.#chunks.signChunk(data));
  }

  /** The framing header of a chunk hashed by the caller: send header, data, `\r\n`. */
  signChunkDigest(length, sha256) {
    return signErrors(() => this.#chunks.signChunkDigest(length, sha256));
  }

  /** The final empty chunk; fails if the chunks did not add up to the announced length. */
  finish() {
    return signErrors(() => this.#chunks.finish());
  }

  /** The signature of the last chunk signed (the seed before any). */
  get lastSignature() {
    return this.#chunks.lastSignature();
  }

  dispose() {
    this.#chunks?.[dispose]?.();
    this.#chunks = undefined;
  }

  [dispose]() {
    this.dispose();
  }
}

/** The component's own exports, for callers that build its records themselves. */
export const component = wit;
