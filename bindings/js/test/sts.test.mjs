// The sts component through the installed package against a real STS (the
// moto peer: LAKEPORT_STS_ENDPOINT, LAKEPORT_STS_ROLE), and its egress check.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  StsClient,
  assumeRoleWithWebIdentity,
  sign,
  HostDeniedError,
  InvalidInputError,
  InvalidResponseError,
  StsRefusedError,
  StsError,
} from '@lakeport/components';

const endpoint = process.env.LAKEPORT_STS_ENDPOINT;
const roleArn = process.env.LAKEPORT_STS_ROLE;
assert.ok(endpoint && roleArn, 'LAKEPORT_STS_ENDPOINT and LAKEPORT_STS_ROLE name the STS peer and a role it knows');

// moto does not verify the web identity token; it must only look like a JWT.
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const token = `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64({ iss: 'https://issuer.example', sub: 'alice', aud: 'object' })}.c2ln`;

test('keys from STS sign a request the S3 service accepts', async () => {
  const creds = await assumeRoleWithWebIdentity({ endpoint, roleArn, webIdentityToken: token, durationSeconds: 3600 });
  assert.match(creds.accessKeyId, /^ASIA/);
  assert.ok(creds.secretAccessKey && creds.sessionToken);
  assert.ok(creds.expiration instanceof Date && creds.expiration > new Date(), String(creds.expiration));
  // moto checks S3 signatures and session tokens: a 200 proves the keys.
  const signed = sign({ url: new URL('/', endpoint).href }, creds, { region: 'us-east-1' });
  const res = await fetch(signed.url, { headers: signed.headers.filter(([n]) => n.toLowerCase() !== 'host') });
  const body = await res.text();
  assert.equal(res.status, 200, body);
  assert.match(body, /ListAllMyBucketsResult/);
});

test('a host outside the configured endpoint is refused before any request', async () => {
  const client = new StsClient({ endpoint });
  const elsewhere = new URL(endpoint);
  // The same server under another name: were the request let through, it would succeed.
  elsewhere.hostname = 'localhost';
  await assert.rejects(
    client.assumeRoleWithWebIdentity({ endpoint: elsewhere.href, roleArn, webIdentityToken: token }),
    (e) => e instanceof HostDeniedError && e instanceof StsError && e.message.includes(elsewhere.origin) && e.message.includes(new URL(endpoint).origin),
  );
  // The same client still reaches its own endpoint.
  const creds = await client.assumeRoleWithWebIdentity({ roleArn, webIdentityToken: token });
  assert.match(creds.accessKeyId, /^ASIA/);
  // Listed in allowedHosts, the other name is let through.
  const wider = new StsClient({ endpoint, allowedHosts: [elsewhere.href] });
  const other = await wider.assumeRoleWithWebIdentity({ endpoint: elsewhere.href, roleArn, webIdentityToken: token }).catch((e) => e);
  assert.ok(!(other instanceof HostDeniedError), `allowedHosts did not let ${elsewhere.origin} through: ${other}`);
});

test('errors are typed: bad input, STS refusal, not STS XML', async () => {
  const client = new StsClient({ endpoint });
  await assert.rejects(client.assumeRoleWithWebIdentity({ roleArn, webIdentityToken: '' }), InvalidInputError);
  await assert.rejects(async () => new StsClient({ endpoint: 'ftp://x/' }), InvalidInputError);
  const refusal = `<ErrorResponse><Error><Code>AccessDenied</Code><Message>Not authorized</Message></Error><RequestId>r-1</RequestId></ErrorResponse>`;
  await assert.rejects(client.parseResponse(403, 'text/xml', refusal), (e) => e instanceof StsRefusedError && e.code === 'AccessDenied' && e.status === 403);
  await assert.rejects(client.parseResponse(200, 'text/html', '<html>proxy login</html>'), InvalidResponseError);
  assert.equal(await client.sessionName(undefined, 'alice@example.org'), 'alice@example.org');
});
