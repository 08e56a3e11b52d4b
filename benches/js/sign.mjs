// µs per SigV4 signature from Node: lakeport's sigv4 component (its own
// exports through jco, and the package's wrappers) against @smithy/signature-v4
// (the AWS SDK v3's signer) and aws4, on the same request: AWS's S3
// GET-object-with-Range example, at its fixed signing time. Every signer's
// signature is checked against AWS's published one before it is timed.
//
//   node sign.mjs [--rounds N] [--iterations N] [--warmup N] [--json FILE]
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import aws4 from 'aws4';
import { SignatureV4 } from '@smithy/signature-v4';
import { Hash } from '@smithy/hash-node';
import { sign, Signer, sigv4Component } from '../../bindings/js/src/index.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '7' },
    iterations: { type: 'string', default: '20000' },
    warmup: { type: 'string', default: '20000' },
    json: { type: 'string' },
  },
});
const ROUNDS = Number(args.rounds);
const ITERATIONS = Number(args.iterations);
const WARMUP = Number(args.warmup);

const EXPECTED = 'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41';
const HOST = 'examplebucket.s3.amazonaws.com';
const URL_ = `https://${HOST}/test.txt`;
const AMZ_DATE = '20130524T000000Z';
const DATE = new Date(Date.UTC(2013, 4, 24));
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const creds = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' };
const signatureOf = (authorization) => /Signature=([0-9a-f]{64})/.exec(authorization)?.[1];
const header = (pairs, name) => pairs.find(([n]) => n.toLowerCase() === name)?.[1];

// The component's records, built per call as a caller would.
const witRequest = () => ({ method: 'GET', url: URL_, headers: [['Range', 'bytes=0-9']], payload: { tag: 'empty' } });
const witOptions = () => ({
  region: 'us-east-1',
  service: 's3',
  time: { tag: 'amz-date', val: AMZ_DATE },
  presignExpires: undefined,
  normalizePath: true,
  signBody: false,
  signSessionToken: true,
});
const witCreds = { accessKeyId: creds.accessKeyId, secretAccessKey: creds.secretAccessKey, sessionToken: undefined };
const witSigner = new sigv4Component.Signer(witCreds);
const pkgSigner = new Signer(creds);
const pkgRequest = () => ({ url: URL_, headers: [['Range', 'bytes=0-9']] });
const pkgOptions = { region: 'us-east-1', time: AMZ_DATE };

const smithy = new SignatureV4({
  credentials: creds,
  region: 'us-east-1',
  service: 's3',
  sha256: Hash.bind(null, 'sha256'),
  uriEscapePath: false,
  applyChecksum: true,
});
const smithyRequest = () => ({
  method: 'GET',
  protocol: 'https:',
  hostname: HOST,
  path: '/test.txt',
  query: {},
  headers: { host: HOST, range: 'bytes=0-9', 'x-amz-content-sha256': EMPTY_SHA256 },
});

// aws4 signs the headers it is given plus Host and X-Amz-Date (S3 wants
// x-amz-content-sha256 too, as the others send it) but never Range (it is in
// aws4's list of headers to leave unsigned): its signature is checked against
// the component's for the same request without Range.
const aws4Request = () => ({
  host: HOST,
  path: '/test.txt',
  service: 's3',
  region: 'us-east-1',
  headers: { Range: 'bytes=0-9', 'X-Amz-Date': AMZ_DATE, 'X-Amz-Content-Sha256': EMPTY_SHA256 },
});

const signers = [
  { name: 'component sign (jco export)', run: () => sigv4Component.sign(witRequest(), witCreds, witOptions()).signature },
  { name: 'component signer.sign-for-sending (jco export)', run: () => signatureOf(header(witSigner.signForSending(witRequest(), witOptions()).headers, 'authorization')) },
  { name: 'component sign-flat (jco export)', run: () => sigv4Component.signFlat('GET', URL_, 'Range\0bytes=0-9', 1, '', creds.accessKeyId, creds.secretAccessKey, '', 'us-east-1', 's3', AMZ_DATE, 0, true, false, true).split('\0', 2)[1] },
  { name: 'package sign() (over sign-flat)', run: () => sign(pkgRequest(), creds, pkgOptions).signature },
  { name: 'package Signer#signForSending()', run: () => signatureOf(header(pkgSigner.signForSending(pkgRequest(), pkgOptions).headers, 'authorization')) },
  { name: 'aws4 1.13.2', expected: 'without range', run: () => signatureOf(aws4.sign(aws4Request(), creds).headers.Authorization) },
  { name: '@smithy/signature-v4 5.7.5', async: true, run: async () => signatureOf((await smithy.sign(smithyRequest(), { signingDate: DATE })).headers.authorization) },
];

async function timeRound(s, n) {
  const start = process.hrtime.bigint();
  if (s.async) for (let i = 0; i < n; i++) await s.run();
  else for (let i = 0; i < n; i++) s.run();
  return Number(process.hrtime.bigint() - start) / 1000 / n;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const results = [];
const withoutRange = sigv4Component.sign({ ...witRequest(), headers: [] }, witCreds, witOptions()).signature;
for (const s of signers) {
  const got = await s.run();
  const want = s.expected === 'without range' ? withoutRange : EXPECTED;
  if (got !== want) throw new Error(`${s.name} signed ${got}, not ${want}: the requests differ`);
}
// Rounds interleave the signers so that a noisy moment hits all of them.
const rounds = new Map(signers.map((s) => [s.name, []]));
for (const s of signers) await timeRound(s, WARMUP);
for (let r = 0; r < ROUNDS; r++) {
  for (const s of signers) rounds.get(s.name).push(await timeRound(s, ITERATIONS));
}
for (const s of signers) {
  const us = rounds.get(s.name);
  results.push({ signer: s.name, median_us: median(us), min_us: Math.min(...us), max_us: Math.max(...us) });
}

console.log(`node ${process.version}, ${ROUNDS} rounds x ${ITERATIONS} signatures after ${WARMUP} warm-up, µs per signature`);
console.log('| signer | median µs | min | max |');
console.log('|---|---:|---:|---:|');
for (const r of results) console.log(`| ${r.signer} | ${r.median_us.toFixed(2)} | ${r.min_us.toFixed(2)} | ${r.max_us.toFixed(2)} |`);
if (args.json) writeFileSync(args.json, JSON.stringify({ node: process.version, rounds: ROUNDS, iterations: ITERATIONS, results }, null, 2));
