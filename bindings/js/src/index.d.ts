// Types of @lakeport/components (ESM). The components' own generated types
// are in gen/sigv4/sigv4.d.ts and gen/sts/sts.d.ts.

export type HeaderPairs = Array<[string, string]>;

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface Request {
  /** Default `GET`. */
  method?: string;
  /** Absolute http(s) URL. */
  url: string;
  /** In order; repeated names are joined with `,` in that order. */
  headers?: HeaderPairs | Record<string, string> | Iterable<[string, string]>;
  /** The body: the signer hashes it. */
  body?: string | Uint8Array | ArrayBufferView | ArrayBuffer;
  /** A hash (lowercase hex SHA-256) or literal computed by the caller. */
  payloadHash?: string;
  /** Sign `UNSIGNED-PAYLOAD`. */
  unsignedPayload?: boolean;
}

export interface SignOptions {
  region: string;
  /** Default `s3` (S3 rules: path as given, single encoding, `x-amz-content-sha256` sent). */
  service?: string;
  /** A Date, Unix seconds or `YYYYMMDDTHHMMSSZ`; default now. */
  time?: Date | number | bigint | string;
  /** Generic services: remove dot segments and collapse slashes (default true). */
  normalizePath?: boolean;
  /** Generic services: also send `x-amz-content-sha256` (default false). */
  signBody?: boolean;
  /** False adds the session token after signing, unsigned (default true). */
  signSessionToken?: boolean;
}

export interface PresignOptions extends SignOptions {
  /** Seconds the URL stays valid, 1..=604800 (default 3600). */
  expiresIn?: number;
}

export interface SignedRequest {
  method: string;
  /** Wire-encoded URL (with the signature when presigned). */
  url: string;
  /** Every header to send, in order. */
  headers: HeaderPairs;
  signature: string;
  canonicalRequest: string;
  stringToSign: string;
  signedHeaders: string;
  /** The `Authorization` value (header signing only). */
  authorization?: string;
  payloadHash: string;
}

export interface RequestToSend {
  url: string;
  headers: HeaderPairs;
}

export function sign(request: Request | string, credentials: Credentials, options: SignOptions): SignedRequest;
export function presign(request: Request | string, credentials: Credentials, options: PresignOptions): SignedRequest;
/** Lowercase hex SHA-256. */
export function payloadSha256(body: string | Uint8Array): string;

export class Signer {
  constructor(credentials: Credentials);
  /** With `options.expiresIn` it presigns. */
  sign(request: Request | string, options: PresignOptions): SignedRequest;
  signForSending(request: Request | string, options: PresignOptions): RequestToSend;
  startStreaming(
    request: Request | string,
    options: SignOptions,
    stream: { decodedLength: number | bigint; chunkSize: number },
  ): { request: SignedRequest; chunkSigner: ChunkSigner };
  /** Forgets the secret. */
  dispose(): void;
}

export class ChunkSigner {
  private constructor();
  /** `hex-size;chunk-signature=SIG\r\n` + data + `\r\n`. */
  signChunk(data: Uint8Array): Uint8Array;
  /** The framing header for a chunk the caller hashed (SHA-256, 32 bytes). */
  signChunkDigest(length: number, sha256: Uint8Array): string;
  /** The final empty chunk. */
  finish(): Uint8Array;
  readonly lastSignature: string;
  dispose(): void;
}

/** The sigv4 component's own exports (jco's records: see gen/sigv4/interfaces). */
export const sigv4Component: typeof import('../gen/sigv4/interfaces/lakeport-plugins-sigv4.js');

export interface AssumeRoleParams {
  roleArn: string;
  /** The OIDC token; never appears in errors. */
  webIdentityToken: string;
  sessionName?: string;
  /** The token's `sub`: the session name when none is given. */
  subject?: string;
  /** 900..=43200. */
  durationSeconds?: number;
  policy?: string;
  providerId?: string;
  /** Default: the client's endpoint. */
  endpoint?: string;
}

export interface StsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: Date;
  assumedRoleId?: string;
  assumedRoleArn?: string;
  subject?: string;
}

export class StsClient {
  /** Requests may go to `endpoint` and to the origins of `allowedHosts` (URLs), nowhere else. */
  constructor(config: { endpoint: string; allowedHosts?: string[] });
  readonly endpoint: string;
  assumeRoleWithWebIdentity(params: AssumeRoleParams): Promise<StsCredentials>;
  parseResponse(status: number, contentType: string | undefined, body: string | Uint8Array): Promise<StsCredentials>;
  sessionName(explicit?: string, subject?: string): Promise<string>;
}

/** One call through a client that may reach only `params.endpoint`. */
export function assumeRoleWithWebIdentity(params: AssumeRoleParams & { endpoint: string }): Promise<StsCredentials>;

export class SignError extends Error {}
export class InvalidUrlError extends SignError {}
export class InvalidHeaderError extends SignError {}
export class InvalidTimeError extends SignError {}
export class InvalidCredentialsError extends SignError {}
export class InvalidOptionError extends SignError {}
export class ChunkMismatchError extends SignError {}

export class StsError extends Error {}
export class TransportError extends StsError {}
export class HostDeniedError extends StsError {}
export class InvalidResponseError extends StsError {}
export class StsRefusedError extends StsError {
  readonly code: string;
  readonly status: number;
  readonly requestId?: string;
}
export class InvalidInputError extends StsError {}
