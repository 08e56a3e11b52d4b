// The shared vectors (tests/vectors/sigv4.json, path in LAKEPORT_VECTORS)
// through the installed package, compared key by key as tests/sigv4_suite.rs does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  sign,
  presign,
  Signer,
  SignError,
  InvalidUrlError,
  InvalidOptionError,
  InvalidCredentialsError,
  ChunkMismatchError,
} from '@lakeport/components';

const vectorsPath = process.env.LAKEPORT_VECTORS;
assert.ok(vectorsPath, 'LAKEPORT_VECTORS names tests/vectors/sigv4.json');
const { cases } = JSON.parse(readFileSync(vectorsPath, 'utf8'));

function request(c) {
  const { method, url, headers, payload } = c.request;
  const r = { method, url, headers };
  if (payload.kind === 'utf8') r.body = payload.text;
  else if (payload.kind === 'precomputed') r.payloadHash = payload.value;
  else if (payload.kind === 'unsigned') r.unsignedPayload = true;
  return r;
}

const credentials = ({ credentials: c }) => ({
  accessKeyId: c.access_key_id,
  secretAccessKey: c.secret_access_key,
  sessionToken: c.session_token ?? undefined,
});

function options({ options: o }) {
  return {
    region: o.region,
    service: o.service,
    time: o.amz_date,
    expiresIn: o.presign_expires ?? undefined,
    normalizePath: o.normalize_path,
    signBody: o.sign_body,
    signSessionToken: o.sign_session_token,
  };
}

/** Query parameters, decoded, sorted by name. */
function queryParams(url) {
  const query = url.includes('?') ? url.slice(url.indexOf('?') + 1) : '';
  const decode = (s) => decodeURIComponent(s);
  const pairs = query
    .split('&')
    .filter(Boolean)
    .map((kv) => {
      const i = kv.indexOf('=');
      return i < 0 ? [decode(kv), ''] : [decode(kv.slice(0, i)), decode(kv.slice(i + 1))];
    });
  return Object.fromEntries(pairs.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** What a signed request shows, under the vectors' keys. */
function outputs(signed, expected) {
  const wanted = Object.keys(expected.headers ?? {});
  return {
    canonical_request: signed.canonicalRequest,
    string_to_sign: signed.stringToSign,
    signature: signed.signature,
    signed_headers: signed.signedHeaders,
    authorization: signed.authorization ?? null,
    url: signed.url,
    query: queryParams(signed.url),
    headers: Object.fromEntries(signed.headers.filter(([n]) => wanted.includes(n.toLowerCase())).map(([n, v]) => [n.toLowerCase(), v])),
  };
}

const decoder = new TextDecoder();
const chunkHeader = (framed) => {
  const text = decoder.decode(framed.subarray(0, Math.min(framed.length, 200)));
  return text.slice(0, text.indexOf('\r\n'));
};

function run(c) {
  if (c.form === 'header') return outputs(sign(request(c), credentials(c), options(c)), c.expected);
  if (c.form === 'query') return outputs(presign(request(c), credentials(c), options(c)), c.expected);
  if (c.form === 'streaming') {
    const { decoded_length: decodedLength, chunk_size: chunkSize, fill } = c.stream;
    const signer = new Signer(credentials(c));
    const { request: signed, chunkSigner } = signer.startStreaming(request(c), options(c), { decodedLength, chunkSize });
    const out = outputs(signed, c.expected);
    out.chunks = [];
    let framedLength = 0;
    for (let left = decodedLength; left > 0; left -= Math.min(left, chunkSize)) {
      const framed = chunkSigner.signChunk(new Uint8Array(Math.min(left, chunkSize)).fill(fill.charCodeAt(0)));
      out.chunks.push(chunkHeader(framed));
      framedLength += framed.length;
    }
    const last = chunkSigner.finish();
    out.final_chunk = decoder.decode(last);
    out.framed_length = framedLength + last.length;
    chunkSigner.dispose();
    signer.dispose();
    return out;
  }
  throw new Error(`unknown form ${c.form}`);
}

test('the shared vectors give the expected outputs', () => {
  assert.ok(cases.length >= 74, `only ${cases.length} cases`);
  const failures = [];
  for (const c of cases) {
    let actual;
    try {
      actual = run(c);
    } catch (e) {
      failures.push(`${c.name}: ${e.name}: ${e.message}`);
      continue;
    }
    for (const [key, want] of Object.entries(c.expected)) {
      try {
        assert.deepStrictEqual(actual[key], want);
      } catch {
        failures.push(`${c.name}: ${key}\n  expected: ${JSON.stringify(want)}\n  actual:   ${JSON.stringify(actual[key])}`);
      }
    }
  }
  assert.deepStrictEqual(failures, [], `${failures.length} failures:\n${failures.join('\n')}`);
});

const aws = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' };
const range = { url: 'https://examplebucket.s3.amazonaws.com/test.txt', headers: { Range: 'bytes=0-9' } };
const may24 = { region: 'us-east-1', time: '20130524T000000Z' };

test('Signer and signForSending send what sign() sends', () => {
  const signer = new Signer(aws);
  const signed = signer.sign(range, may24);
  assert.equal(signed.signature, 'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41');
  assert.deepStrictEqual(signer.signForSending(range, may24), { url: signed.url, headers: signed.headers });
  assert.deepStrictEqual(sign(range, aws, may24).headers, signed.headers);
  // A Date and Unix seconds name the same instant as the X-Amz-Date string.
  const date = new Date(Date.UTC(2013, 4, 24));
  assert.equal(sign(range, aws, { region: 'us-east-1', time: date }).signature, signed.signature);
  assert.equal(sign(range, aws, { region: 'us-east-1', time: date.getTime() / 1000 }).signature, signed.signature);
  const presigned = signer.signForSending(range, { ...may24, expiresIn: 60 });
  assert.match(presigned.url, /X-Amz-Expires=60&.*X-Amz-Signature=[0-9a-f]{64}$/);
  signer.dispose();
});

test('each WIT error case is an Error subclass with the message', () => {
  assert.throws(() => sign({ url: 'not a url' }, aws, may24), (e) => e instanceof InvalidUrlError && e instanceof SignError && e instanceof Error && /not a url/.test(e.message));
  assert.throws(() => sign(range, aws, { region: 'bad region!' }), (e) => e instanceof InvalidOptionError && e.name === 'InvalidOptionError');
  assert.throws(() => sign(range, {}, may24), InvalidCredentialsError);
  assert.throws(() => presign(range, aws, { ...may24, expiresIn: 0 }), InvalidOptionError);
  const signer = new Signer(aws);
  const { chunkSigner } = signer.startStreaming({ method: 'PUT', url: 'https://s3.amazonaws.com/b/k' }, may24, { decodedLength: 20000, chunkSize: 8192 });
  assert.throws(() => chunkSigner.signChunk(new Uint8Array(9000)), (e) => e instanceof ChunkMismatchError && /exceeds the chunk size/.test(e.message));
});
