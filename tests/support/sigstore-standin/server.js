// Stand-in for services this machine cannot reach, for tests only: Sigstore's public Fulcio
// (with its CT log) and Rekor, and GitHub's Actions OIDC token endpoint, all on one
// 127.0.0.1 port.
//
// Built on @sigstore/mock (Sigstore's own test doubles, pinned by package-lock.json): its
// CA, CT log and Fulcio handler are used as they are. Adjusted here, because a real client
// and real verifiers need it:
// - Fulcio: the token may come in the Authorization header; the proof of possession (a
//   signature over the token's `sub`) is checked; the certificate's SAN follows Fulcio's
//   GitHub rule, `https://github.com/{job_workflow_ref}`.
// - Rekor: a real Merkle tree (RFC 6962) of every entry, seeded with one leaf so that every
//   inclusion proof has hashes; entries canonicalised as Rekor does (the PEM re-encoded,
//   JSON canonicalised); signed entry timestamps and signed-note checkpoints.
// - Token endpoint: `GET /actions-token?audience=...` with `Authorization: Bearer <request
//   token>` answers `{"value": "<JWT>"}` like GitHub's; the JWT is ES256-signed, its claims
//   those of a GitHub Actions token (no `email`).
//
// - A clock tests may set back (`POST /clock?offset=SECONDS`, 0 to reset) to make a
//   signature "made" days ago: Fulcio's certificates and Rekor's entries then carry that
//   time. The CA, the CT log and the log keys are made with the clock 30 days back, so a
//   time a test picks within those 30 days is one they were valid at. The Actions token
//   endpoint keeps the real time (clients check a token's expiry against theirs).
//
// Usage: node server.js OUT_DIR REQUEST_TOKEN
// Writes OUT_DIR/trusted_root.json, signing_config.json and trust_config.json (the client
// trust config sigstore-python reads), then prints `listening PORT` on stdout.
'use strict';

const RealDate = Date;
let clockOffsetMs = -30 * 86400 * 1000;
class StandInDate extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(RealDate.now() + clockOffsetMs);
    else super(...args);
  }
  static now() {
    return RealDate.now() + clockOffsetMs;
  }
}
global.Date = StandInDate;

const http = require('http');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const canonicalize = require('canonicalize');
const jose = require('jose');
const {
  initializeCA,
  initializeCTLog,
  initializeTLog,
  fulcioHandler,
  rekorHandler,
} = require('@sigstore/mock');

const [outDir, requestToken] = process.argv.slice(2);
if (!outDir || !requestToken) {
  console.error('usage: node server.js OUT_DIR REQUEST_TOKEN');
  process.exit(2);
}

const ISSUER = 'https://token.actions.githubusercontent.com';
const TREE_ID = 1193050959916656506n;

const ec = () => crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const spki = (key) => key.export({ format: 'der', type: 'spki' });
const sha256 = (...parts) => {
  const h = crypto.createHash('sha256');
  parts.forEach((p) => h.update(p));
  return h.digest();
};

function pemOf(der, label) {
  const b64 = der.toString('base64').match(/.{1,64}/g).join('\n');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}
function derOf(pem) {
  return Buffer.from(pem.replace(/-----(BEGIN|END) [^-]+-----/g, '').replace(/\s/g, ''), 'base64');
}

// RFC 6962 Merkle tree hashes and audit paths.
const leafHash = (data) => sha256(Buffer.from([0]), data);
const nodeHash = (l, r) => sha256(Buffer.from([1]), l, r);
function split(n) {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}
function treeHash(leaves) {
  if (leaves.length === 1) return leaves[0];
  const k = split(leaves.length);
  return nodeHash(treeHash(leaves.slice(0, k)), treeHash(leaves.slice(k)));
}
function auditPath(m, leaves) {
  if (leaves.length === 1) return [];
  const k = split(leaves.length);
  return m < k
    ? [...auditPath(m, leaves.slice(0, k)), treeHash(leaves.slice(k))]
    : [...auditPath(m - k, leaves.slice(k)), treeHash(leaves.slice(0, k))];
}

// Rekor stores hashedrekord entries with the public key PEM re-encoded.
function canonicalEntry(entry) {
  if (entry.kind === 'hashedrekord' && entry.spec?.signature?.publicKey?.content) {
    const pem = Buffer.from(entry.spec.signature.publicKey.content, 'base64').toString();
    const label = pem.match(/-----BEGIN ([^-]+)-----/)?.[1] ?? 'CERTIFICATE';
    entry.spec.signature.publicKey.content = Buffer.from(pemOf(derOf(pem), label)).toString('base64');
  }
  return Buffer.from(canonicalize(entry));
}

async function main() {
  const server = http.createServer();
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const port = server.address().port;
  const base = `http://127.0.0.1:${port}`;

  const caKeys = ec();
  const ctKeys = ec();
  const tlogKeys = ec();
  const tokenKeys = ec();
  const ctlog = await initializeCTLog(ctKeys);
  const ca = await initializeCA(caKeys, ctlog);
  const tlog = await initializeTLog(base, tlogKeys);
  const host = new URL(base).host;

  // Rekor: a growing log; the first leaf is a seed, so no entry is ever alone in the tree.
  const tlogID = sha256(spki(tlogKeys.publicKey));
  const leaves = [leafHash(Buffer.from('margo-gitops stand-in log seed'))];
  tlog.log = async (proposed) => {
    const body = canonicalEntry(proposed);
    const logIndex = leaves.length;
    leaves.push(leafHash(body));
    const treeSize = leaves.length;
    const integratedTime = Math.floor(Date.now() / 1000);
    const root = treeHash(leaves);
    const set = crypto.sign(
      'sha256',
      Buffer.from(canonicalize({
        body: body.toString('base64'),
        integratedTime,
        logID: tlogID.toString('hex'),
        logIndex,
      })),
      tlogKeys.privateKey,
    );
    const note = `${host} - ${TREE_ID}\n${treeSize}\n${root.toString('base64')}\n`;
    const noteSig = crypto.sign('sha256', Buffer.from(note), tlogKeys.privateKey);
    const checkpoint = `${note}\n\u2014 ${host} ${Buffer.concat([tlogID.subarray(0, 4), noteSig]).toString('base64')}\n`;
    return {
      [crypto.randomBytes(32).toString('hex')]: {
        body: body.toString('base64'),
        integratedTime,
        logID: tlogID.toString('hex'),
        logIndex,
        verification: {
          inclusionProof: {
            logIndex,
            treeSize,
            rootHash: root.toString('hex'),
            hashes: auditPath(logIndex, leaves).map((h) => h.toString('hex')),
            checkpoint,
          },
          signedEntryTimestamp: set.toString('base64'),
        },
      },
    };
  };

  const fulcio = fulcioHandler(ca, { subjectClaim: 'fulcio_san' });
  const rekor = rekorHandler(tlog);

  async function signingCert(body, headers) {
    const req = JSON.parse(body.toString());
    const bearer = (headers.authorization || '').replace(/^Bearer /, '');
    const token = req.credentials?.oidcIdentityToken || bearer;
    if (!token) return { statusCode: 401, response: 'no identity token' };
    const claims = jose.decodeJwt(token);
    const pem = req.publicKeyRequest?.publicKey?.content;
    const pop = req.publicKeyRequest?.proofOfPossession;
    if (req.certificateSigningRequest && !req.certificateSigningRequest.startsWith('-----')) {
      // Fulcio's API carries the CSR as base64 of its PEM.
      req.certificateSigningRequest = Buffer.from(req.certificateSigningRequest, 'base64').toString();
    }
    if (pem) {
      const ok = pop && crypto.verify('sha256', Buffer.from(claims.sub), pem, Buffer.from(pop, 'base64'));
      if (!ok) return { statusCode: 400, response: 'proof of possession does not verify' };
    }
    // Fulcio's GitHub rule: SAN = https://github.com/{job_workflow_ref}.
    const san = claims.job_workflow_ref ? `https://github.com/${claims.job_workflow_ref}` : claims.sub;
    const rewritten = await new jose.UnsecuredJWT({ ...claims, fulcio_san: san }).encode();
    req.credentials = { oidcIdentityToken: rewritten };
    return fulcio.fn(Buffer.from(JSON.stringify(req)));
  }

  async function actionsToken(url, headers) {
    if (headers.authorization !== `Bearer ${requestToken}`) {
      return { statusCode: 401, response: 'bad request token' };
    }
    const audience = url.searchParams.get('audience') || ISSUER;
    const now = Math.floor(RealDate.now() / 1000);
    const jwt = await new jose.SignJWT({
      sub: 'repo:margo-gitops/poc-app:ref:refs/heads/main',
      repository: 'margo-gitops/poc-app',
      repository_owner: 'margo-gitops',
      ref: 'refs/heads/main',
      sha: '0123456789abcdef0123456789abcdef01234567',
      event_name: 'push',
      workflow: 'publish',
      job_workflow_ref: 'margo-gitops/poc-app/.github/workflows/publish.yml@refs/heads/main',
      runner_environment: 'github-hosted',
    })
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT' })
      .setIssuer(ISSUER)
      .setAudience(audience)
      .setIssuedAt(now)
      .setNotBefore(now - 5)
      .setExpirationTime(now + 600)
      .sign(tokenKeys.privateKey);
    return { statusCode: 200, response: JSON.stringify({ count: 1, value: jwt }), contentType: 'application/json' };
  }

  server.on('request', (req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      const url = new URL(req.url, base);
      let out;
      try {
        if (req.method === 'POST' && url.pathname === '/api/v2/signingCert') {
          out = await signingCert(Buffer.concat(chunks), req.headers);
        } else if (req.method === 'POST' && url.pathname === rekor.path) {
          out = await rekor.fn(Buffer.concat(chunks).toString());
        } else if (req.method === 'POST' && url.pathname === '/clock') {
          clockOffsetMs = Number(url.searchParams.get('offset') || 0) * 1000;
          out = { statusCode: 200, response: 'ok' };
        } else if (req.method === 'GET' && url.pathname === '/actions-token') {
          out = await actionsToken(url, req.headers);
        } else {
          out = { statusCode: 404, response: 'not found' };
        }
      } catch (e) {
        out = { statusCode: 400, response: String(e && e.message) };
      }
      res.writeHead(out.statusCode, { 'content-type': out.contentType || 'text/plain' });
      res.end(out.response);
    });
  });

  const since = new Date(Date.now() - 60_000).toISOString();
  const key = (k) => ({
    rawBytes: spki(k.publicKey).toString('base64'),
    keyDetails: 'PKIX_ECDSA_P256_SHA_256',
    validFor: { start: since },
  });
  const trustedRoot = {
    mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1',
    tlogs: [{ baseUrl: base, hashAlgorithm: 'SHA2_256', publicKey: key(tlogKeys), logId: { keyId: tlogID.toString('base64') } }],
    certificateAuthorities: [{
      subject: { organization: 'sigstore.mock', commonName: 'sigstore' },
      uri: base,
      certChain: { certificates: [{ rawBytes: ca.rootCertificate.toString('base64') }] },
      validFor: { start: since },
    }],
    ctlogs: [{
      baseUrl: base,
      hashAlgorithm: 'SHA2_256',
      publicKey: key(ctKeys),
      logId: { keyId: sha256(spki(ctKeys.publicKey)).toString('base64') },
    }],
    timestampAuthorities: [],
  };
  const service = { url: base, majorApiVersion: 1, validFor: { start: since }, operator: 'margo-gitops tests' };
  const signingConfig = {
    mediaType: 'application/vnd.dev.sigstore.signingconfig.v0.2+json',
    caUrls: [service],
    oidcUrls: [],
    rekorTlogUrls: [service],
    tsaUrls: [],
    rekorTlogConfig: { selector: 'ANY' },
    tsaConfig: { selector: 'ANY' },
  };
  fs.mkdirSync(outDir, { recursive: true });
  const write = (name, v) => fs.writeFileSync(path.join(outDir, name), JSON.stringify(v, null, 2));
  write('trusted_root.json', trustedRoot);
  write('signing_config.json', signingConfig);
  write('trust_config.json', {
    mediaType: 'application/vnd.dev.sigstore.clienttrustconfig.v0.1+json',
    trustedRoot,
    signingConfig,
  });
  clockOffsetMs = 0; // the keys are made: real time from now on
  console.log(`listening ${port}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
