// A real OpenID provider (node oidc-provider, v9) for lakeport's tests,
// listening on 127.0.0.1. Configuration only — the protocol is the library's:
//   - device flow, client credentials, refresh tokens (rotated), revocation;
//   - JWT access tokens whose `aud` comes from RFC 8707 `resource` or, as
//     INDIGO IAM does, from an `audience` parameter;
//   - RFC 8693 token exchange (registered as an extension grant, as
//     deployments such as INDIGO IAM offer it): a valid access token of this
//     issuer in, a token for another audience with the same subject out;
//   - test-only routes to approve or deny a device code without a browser,
//     and to sign any claims and header with the provider's key (or with a
//     stranger's key it never publishes), for WLCG storage scopes and
//     hostile tokens a gateway must refuse;
//     and one that answers as GitHub Actions' job token service;
//   - one RS256 signing key, fresh per run, published with a self-signed
//     certificate (`x5c`): Ceph RGW's STS verifies tokens only with the
//     first JWK's certificate and refuses a JWKS of bare `n`/`e`.
//
// Usage: node oidc-provider.mjs PORT   (env: ACCESS_TTL, REFRESH_TTL seconds)
// Prints "ready <issuer>" on stdout once listening.
import { execFileSync } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Provider, { errors } from 'oidc-provider';
import { CompactSign, createRemoteJWKSet, generateKeyPair, importJWK, jwtVerify } from 'jose';

const port = Number(process.argv[2] || process.env.PORT || 0);
const issuer = `http://127.0.0.1:${port}`;
const accessTtl = Number(process.env.ACCESS_TTL || 300);
const refreshTtl = Number(process.env.REFRESH_TTL || 30 * 24 * 3600);
const AUD_PREFIX = 'urn:lakeport:audience:';
const SCOPES = 'openid offline_access profile s3 rucio';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
const deviceGrants = ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'];
const clients = [
  { client_id: 'device-basic', client_secret: 'device-basic-secret', token_endpoint_auth_method: 'client_secret_basic', grant_types: deviceGrants },
  { client_id: 'device-post', client_secret: 'device-post-secret', token_endpoint_auth_method: 'client_secret_post', grant_types: deviceGrants },
  { client_id: 'device-public', token_endpoint_auth_method: 'none', grant_types: deviceGrants },
  { client_id: 'service', client_secret: 'service-secret', token_endpoint_auth_method: 'client_secret_basic', grant_types: ['client_credentials'] },
  { client_id: 'service-post', client_secret: 'service-post-secret', token_endpoint_auth_method: 'client_secret_post', grant_types: ['client_credentials'] },
  { client_id: 'exchanger', client_secret: 'exchanger-secret', token_endpoint_auth_method: 'client_secret_basic', grant_types: [TOKEN_EXCHANGE] },
].map((c) => ({ redirect_uris: [], response_types: [], scope: SCOPES, ...c }));

// A new RSA key and a self-signed certificate for it (openssl: node can
// parse certificates but not make them).
function signingKey() {
  const dir = mkdtempSync(join(tmpdir(), 'lakeport-op-key-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'),
      '-out', join(dir, 'cert.pem'), '-days', '7', '-subj', '/CN=lakeport test OpenID provider'], { stdio: 'ignore' });
    const jwk = createPrivateKey(readFileSync(join(dir, 'key.pem'))).export({ format: 'jwk' });
    const cert = new X509Certificate(readFileSync(join(dir, 'cert.pem')));
    return { ...jwk, kid: cert.fingerprint256.replace(/:/g, '').slice(0, 16).toLowerCase(), use: 'sig', alg: 'RS256', x5c: [cert.raw.toString('base64')] };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const audienceOf = (indicator) => (indicator.startsWith(AUD_PREFIX) ? indicator.slice(AUD_PREFIX.length) : indicator);

const published = signingKey();
const provider = new Provider(issuer, {
  clients,
  jwks: { keys: [published] },
  scopes: SCOPES.split(' '),
  extraParams: ['audience'],
  features: {
    devInteractions: { enabled: false },
    deviceFlow: { enabled: true },
    clientCredentials: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      // INDIGO IAM takes `audience=object`; map it onto a resource indicator.
      defaultResource: (ctx, client, oneOf) => {
        // extraParams cover the authorization endpoints; at the token
        // endpoint the parameter is read from the form body.
        const audience = ctx.oidc.params?.audience || ctx.oidc.body?.audience;
        if (audience) return `${AUD_PREFIX}${audience}`;
        return oneOf ? oneOf[0] : undefined;
      },
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, indicator) => ({
        scope: 's3 rucio',
        audience: audienceOf(indicator),
        accessTokenTTL: accessTtl,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  rotateRefreshToken: true,
  ttl: {
    AccessToken: accessTtl,
    ClientCredentials: accessTtl,
    RefreshToken: refreshTtl,
    DeviceCode: 600,
    // The grant and session outlive short-lived refresh tokens, so a test
    // that lets a refresh token expire does not also lose the login itself.
    Grant: Math.max(refreshTtl, 24 * 3600),
    Session: Math.max(refreshTtl, 24 * 3600),
  },
  findAccount: (ctx, sub) => ({ accountId: sub, claims: () => ({ sub, name: `Test user ${sub}` }) }),
  loadExistingGrant: async (ctx) => {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session?.grantIdFor(ctx.oidc.client.clientId);
    return grantId ? ctx.oidc.provider.Grant.find(grantId) : undefined;
  },
});
provider.proxy = false;

// RFC 8693: only access tokens this issuer signed, still valid, are
// exchanged; the new token keeps their subject and gets the requested audience.
const jwks = createRemoteJWKSet(new URL(`${issuer}/jwks`));
provider.registerGrantType(
  TOKEN_EXCHANGE,
  async (ctx) => {
    const { subject_token: subjectToken, subject_token_type: subjectType, audience, resource } = ctx.oidc.params;
    if (subjectType !== ACCESS_TOKEN_TYPE) throw new errors.InvalidRequest(`subject_token_type must be ${ACCESS_TOKEN_TYPE}`);
    let subject;
    try {
      ({ payload: subject } = await jwtVerify(subjectToken, jwks, { issuer }));
    } catch {
      throw new errors.InvalidGrant('subject_token is not a valid access token of this issuer');
    }
    const indicator = audience ? `${AUD_PREFIX}${audience}` : resource;
    if (!indicator) throw new errors.InvalidTarget('audience or resource is required');
    const token = new provider.AccessToken({ accountId: subject.sub, client: ctx.oidc.client, scope: 's3 rucio' });
    token.resourceServer = {
      audience: audienceOf(indicator),
      scope: 's3 rucio',
      accessTokenTTL: accessTtl,
      accessTokenFormat: 'jwt',
      jwt: { sign: { alg: 'RS256' } },
      identifier: () => indicator,
    };
    ctx.body = {
      access_token: await token.save(),
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: 'Bearer',
      expires_in: token.expiration,
      scope: token.scope,
    };
  },
  ['subject_token', 'subject_token_type', 'audience', 'resource', 'requested_token_type', 'scope'],
);

// What a user does in the browser, done over HTTP for tests:
//   POST /test/device/approve?user_code=...&sub=alice[&audience=object]
//   POST /test/device/deny?user_code=...
provider.use(async (ctx, next) => {
  if (ctx.method !== 'POST' || !ctx.path.startsWith('/test/device/')) return next();
  const userCode = String(ctx.query.user_code || '').toUpperCase().replace(/\W/g, '');
  const code = await provider.DeviceCode.findByUserCode(userCode);
  if (!code) {
    ctx.status = 404;
    ctx.body = { error: 'no such user code' };
    return undefined;
  }
  if (ctx.path === '/test/device/deny') {
    Object.assign(code, { error: 'access_denied', errorDescription: 'End-User aborted interaction' });
  } else {
    const sub = String(ctx.query.sub || 'alice');
    const requested = String(code.params.scope || 'openid').split(' ');
    const grant = new provider.Grant({ accountId: sub, clientId: code.clientId });
    grant.addOIDCScope(requested.filter((s) => ['openid', 'offline_access', 'profile'].includes(s)).join(' '));
    // The audience comes from the device request or, for clients that send
    // it only to the token endpoint (oidc-agent), from the approval: the
    // user consents to it, as on an IAM consent page.
    const audience = code.params.audience || (ctx.query.audience ? String(ctx.query.audience) : '');
    const resource = audience ? `${AUD_PREFIX}${audience}` : code.params.resource;
    if (resource) grant.addResourceScope(resource, 's3 rucio');
    const grantId = await grant.save();
    Object.assign(code, {
      accountId: sub,
      grantId,
      authTime: Math.floor(Date.now() / 1000),
      scope: requested.join(' '),
      ...(resource ? { resource } : {}),
    });
  }
  await code.save();
  ctx.status = 204;
  return undefined;
});

// Tokens a test composes, signed with the published key (or a stranger's):
//   POST /test/sign {"claims": {...}, "header": {...}, "key": "published"|"stranger"}
// The header defaults to {alg: RS256, typ: at+jwt, kid: <published kid>};
// claims are signed exactly as given. Answers the compact JWT as text.
const publishedKey = await importJWK(published, 'RS256');
const { privateKey: strangerKey } = await generateKeyPair('RS256');
provider.use(async (ctx, next) => {
  if (ctx.method !== 'POST' || ctx.path !== '/test/sign') return next();
  const chunks = [];
  for await (const chunk of ctx.req) chunks.push(chunk);
  const { claims = {}, header = {}, key = 'published' } = JSON.parse(Buffer.concat(chunks).toString() || '{}');
  const protectedHeader = { alg: 'RS256', typ: 'at+jwt', kid: published.kid, ...header };
  const jws = await new CompactSign(Buffer.from(JSON.stringify(claims)))
    .setProtectedHeader(protectedHeader)
    .sign(key === 'stranger' ? strangerKey : publishedKey);
  ctx.type = 'text/plain';
  ctx.body = jws;
  return undefined;
});

// GitHub Actions' token service as a job sees it (GET the request URL with
// the request token as bearer, `audience` in the query; answer
// {"value": JWT}), the JWT signed by this issuer for the job's subject:
//   GET /test/actions/token?audience=AUD   Authorization: Bearer actions-request-token
const ACTIONS_REQUEST_TOKEN = 'actions-request-token';
provider.use(async (ctx, next) => {
  if (ctx.method !== 'GET' || ctx.path !== '/test/actions/token') return next();
  if (ctx.get('authorization') !== `Bearer ${ACTIONS_REQUEST_TOKEN}`) {
    ctx.status = 401;
    ctx.body = { message: 'Bad credentials' };
    return undefined;
  }
  const audience = String(ctx.query.audience || 'https://github.com/lakeport');
  const client = await provider.Client.find('service');
  const token = new provider.AccessToken({ accountId: 'repo:lakeport/example:ref:refs/heads/main', client, scope: 's3 rucio' });
  token.resourceServer = {
    audience,
    scope: 's3 rucio',
    accessTokenTTL: accessTtl,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: 'RS256' } },
    identifier: () => `${AUD_PREFIX}${audience}`,
  };
  ctx.body = { count: 1, value: await token.save() };
  return undefined;
});

// Tests should not wait 5 s between polls: this server asks for 1 s.
provider.use(async (ctx, next) => {
  await next();
  if (ctx.path === '/device/auth' && ctx.status === 200 && ctx.body && typeof ctx.body === 'object') {
    ctx.body = { ...ctx.body, interval: 1 };
  }
});

const server = provider.listen(port, '127.0.0.1', () => {
  const actual = server.address().port;
  process.stdout.write(`ready http://127.0.0.1:${actual}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
