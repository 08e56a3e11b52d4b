// STS AssumeRoleWithWebIdentity through the sts component. The component's
// only way out is wasi:http's outgoing-handler; the package supplies one that
// lets a request through to the client's STS endpoint (and `allowedHosts`)
// and refuses any other, so the component cannot reach hosts it was not given.
import { http } from '@bytecodealliance/preview2-shim';
import { WASIShim } from '@bytecodealliance/preview2-shim/instantiation';
import { instantiate } from '../gen/sts/sts.js';
import { coreModules, versionless } from './load.js';
import { HostDeniedError, InvalidInputError, stsErrors } from './errors.js';

const compile = coreModules('sts');
// Core modules are compiled once; each client instantiates its own.
const compiled = new Map();
const cachedCore = (file) => {
  if (!compiled.has(file)) compiled.set(file, compile(file));
  return compiled.get(file);
};

const SCHEMES = { HTTP: 'http:', HTTPS: 'https:' };

/** `scheme://host[:port]` as URL normalises it (default ports dropped), or null. */
function originOf(scheme, authority) {
  try {
    return new URL(`${scheme}//${authority}`).origin;
  } catch {
    return null;
  }
}

function endpointOrigin(url, what) {
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidInputError(`${what} ${JSON.stringify(url)} is not a URL: give an http(s) URL such as https://sts.example.org/`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new InvalidInputError(`${what} ${JSON.stringify(url)} is not http or https`);
  }
  return parsed.origin;
}

/**
 * An outgoing-handler that sends through preview2-shim's only to `allowed`
 * origins. A refusal is wasi:http's HTTP-request-denied (which the component
 * reports as host-denied); `denied` records the origin for the error message.
 */
function checkedOutgoingHandler(allowed, denied) {
  return {
    handle(request, options) {
      const scheme = request.scheme();
      const origin = originOf(scheme?.tag === 'other' ? `${scheme.val}:` : SCHEMES[scheme?.tag ?? 'HTTPS'], request.authority() ?? '');
      if (origin === null || !allowed.has(origin)) {
        denied.push(origin ?? String(request.authority()));
        const error = new Error(`request to ${origin} refused`);
        error.payload = { tag: 'HTTP-request-denied' };
        throw error;
      }
      return http.outgoingHandler.handle(request, options);
    },
  };
}

function credentialsOut(c) {
  return {
    accessKeyId: c.accessKeyId,
    secretAccessKey: c.secretAccessKey,
    sessionToken: c.sessionToken,
    expiration: new Date(Number(c.expiration) * 1000),
    assumedRoleId: c.assumedRoleId,
    assumedRoleArn: c.assumedRoleArn,
    subject: c.subject,
  };
}

/**
 * A client for one STS endpoint. Requests go to `endpoint` (and the origins
 * in `allowedHosts`, given as URLs) and nowhere else.
 *
 * The call blocks the Node thread while the component waits for the answer
 * (preview2-shim runs wasi:http synchronously for the guest).
 */
export class StsClient {
  #endpoint;
  #allowed;
  #denied = [];
  #instance;

  constructor({ endpoint, allowedHosts = [] } = {}) {
    this.#allowed = new Set([endpointOrigin(endpoint, 'endpoint'), ...allowedHosts.map((h) => endpointOrigin(h, 'allowedHosts entry'))]);
    this.#endpoint = endpoint;
  }

  get endpoint() {
    return this.#endpoint;
  }

  async #sts() {
    this.#instance ??= (async () => {
      // No environment, arguments or files: the component gets only the checked HTTP.
      const shim = new WASIShim({ sandbox: { env: {}, args: ['sts'], preopens: {} } });
      const imports = shim.getImportObject();
      imports['wasi:http/outgoing-handler'] = checkedOutgoingHandler(this.#allowed, this.#denied);
      return (await instantiate(cachedCore, versionless(imports))).sts;
    })();
    return this.#instance;
  }

  /**
   * AssumeRoleWithWebIdentity: `{ roleArn, webIdentityToken, sessionName?,
   * subject?, durationSeconds?, policy?, providerId?, endpoint? }` (endpoint
   * defaults to the client's). Resolves to temporary credentials.
   */
  async assumeRoleWithWebIdentity(params = {}) {
    const sts = await this.#sts();
    const req = {
      endpoint: params.endpoint ?? this.#endpoint,
      roleArn: params.roleArn ?? '',
      webIdentityToken: params.webIdentityToken ?? '',
      sessionName: params.sessionName,
      subject: params.subject,
      durationSeconds: params.durationSeconds,
      policy: params.policy,
      providerId: params.providerId,
    };
    this.#denied.length = 0;
    try {
      return credentialsOut(stsErrors(() => sts.assumeRoleWithWebIdentity(req)));
    } catch (e) {
      if (e instanceof HostDeniedError && this.#denied.length > 0) {
        const allowed = [...this.#allowed].join(', ');
        throw new HostDeniedError(
          `refused a request to ${this.#denied[0]}: this STS client may reach only ${allowed}; create a client for that endpoint or list it in allowedHosts`,
          { cause: e },
        );
      }
      throw e;
    }
  }

  /** Reads an STS answer fetched by other means: `(status, contentType, body)`. */
  async parseResponse(status, contentType, body) {
    const sts = await this.#sts();
    const bytes = typeof body === 'string' ? new TextEncoder().encode(body) : body;
    return credentialsOut(stsErrors(() => sts.parseResponse(status, contentType ?? undefined, bytes)));
  }

  /** The `RoleSessionName` lakeport uses for an explicit name and/or a token subject. */
  async sessionName(explicit, subject) {
    return (await this.#sts()).sessionName(explicit ?? undefined, subject ?? undefined);
  }
}

/** One call to `params.endpoint`, through a client that may reach only that endpoint. */
export async function assumeRoleWithWebIdentity(params = {}) {
  return new StsClient({ endpoint: params.endpoint }).assumeRoleWithWebIdentity(params);
}
