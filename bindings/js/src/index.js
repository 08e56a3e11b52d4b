export { sign, presign, payloadSha256, Signer, ChunkSigner, component as sigv4Component } from './sigv4.js';
export { StsClient, assumeRoleWithWebIdentity } from './sts.js';
export {
  SignError,
  InvalidUrlError,
  InvalidHeaderError,
  InvalidTimeError,
  InvalidCredentialsError,
  InvalidOptionError,
  ChunkMismatchError,
  StsError,
  TransportError,
  HostDeniedError,
  InvalidResponseError,
  StsRefusedError,
  InvalidInputError,
} from './errors.js';
