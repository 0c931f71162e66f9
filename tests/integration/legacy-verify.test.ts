import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.ts';
import { createLegacyVerifier } from '../../src/import/legacy-verify.ts';

// The old system is played by a real HTTP server on loopback that checks each request the way
// its operator would: the Standard Webhooks signature computed independently here from the
// specification (HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>", base64, "v1,"), then
// the email and password against the one account it knows. Each path answers one way.

const SECRET_BYTES = randomBytes(32);
const SECRET = `whsec_${SECRET_BYTES.toString('base64')}`;
const PASSWORD = 'old-system pässword 7';
const EMAIL = 'ann@example.com';

interface Seen { path: string; headers: http.IncomingHttpHeaders; body: string; signatureValid: boolean }
const seen: Seen[] = [];
let server: http.Server;
let base: string;
const held: http.ServerResponse[] = [];

function signatureValid(headers: http.IncomingHttpHeaders, body: string): boolean {
  const expected = createHmac('sha256', SECRET_BYTES).update(`${String(headers['webhook-id'])}.${String(headers['webhook-timestamp'])}.${body}`).digest();
  return String(headers['webhook-signature'] ?? '').split(' ').some((entry) => {
    const [version, signature] = entry.split(',', 2);
    const given = Buffer.from(signature ?? '', 'base64');
    return version === 'v1' && given.length === expected.length && timingSafeEqual(given, expected);
  });
}

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const entry = { path: req.url ?? '', headers: req.headers, body, signatureValid: signatureValid(req.headers, body) };
      seen.push(entry);
      const json = (status: number, payload: string) => res.writeHead(status, { 'content-type': 'application/json' }).end(payload);
      switch (req.url) {
        case '/verify': {
          if (!entry.signatureValid) return json(401, '{"error":"bad signature"}');
          const { email, password } = JSON.parse(body) as { email: string; password: string };
          return json(200, JSON.stringify({ verified: email === EMAIL && password === PASSWORD }));
        }
        case '/slow': held.push(res); return undefined;          // never answers
        case '/broken': return json(500, '{"error":"database down"}');
        case '/not-json': return json(200, '<html>Sign in</html>');
        case '/wrong-shape': return json(200, '{"verified":"yes"}');
        case '/moved': return res.writeHead(302, { location: `${base}/verify` }).end();
        default: return json(404, '{}');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const res of held) res.destroy();
  await new Promise((resolve) => server.close(resolve));
});

function verifierFor(path: string, options: { secret?: string; timeout?: string } = {}) {
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, new Writable({ write(chunk, _encoding, done) { lines.push(String(chunk)); done(); } }));
  const config = loadConfig({ env: {}, overrides: { legacy_verify: { url: `${base}${path}`, secret: options.secret ?? SECRET, timeout: options.timeout ?? '3s' } } });
  const verifier = createLegacyVerifier(config.legacy_verify, { logger });
  if (!verifier) throw new Error('expected legacy_verify to be on');
  return { verifier, logs: () => lines.join('') };
}

describe('legacy_verify', () => {
  it('is off while no url is configured', () => {
    expect(createLegacyVerifier(loadConfig({ env: {} }).legacy_verify)).toBeUndefined();
  });

  it('answers verified for the right password, in a request the old system can check was signed with the shared secret', async () => {
    const { verifier } = verifierFor('/verify');
    const before = Math.floor(Date.now() / 1000);
    expect(await verifier.verify(EMAIL, PASSWORD)).toEqual({ outcome: 'verified' });
    const request = seen.at(-1)!;
    expect(request.signatureValid).toBe(true);
    expect(request.headers['content-type']).toBe('application/json');
    expect(Number(request.headers['webhook-timestamp'])).toBeGreaterThanOrEqual(before);
    expect(JSON.parse(request.body)).toEqual({ email: EMAIL, password: PASSWORD });
  });

  it('answers rejected for a wrong password', async () => {
    expect(await verifierFor('/verify').verifier.verify(EMAIL, 'guess')).toEqual({ outcome: 'rejected' });
  });

  it('is unavailable when the old system does not recognize the signature (another secret)', async () => {
    const { verifier } = verifierFor('/verify', { secret: `whsec_${randomBytes(32).toString('base64')}` });
    expect(await verifier.verify(EMAIL, PASSWORD)).toEqual({ outcome: 'unavailable', reason: 'HTTP 401' });
    expect(seen.at(-1)!.signatureValid).toBe(false);
  });

  it('is unavailable, not an error, when the old system is slow, broken, unreachable or answers something else', async () => {
    expect(await verifierFor('/slow', { timeout: '1s' }).verifier.verify(EMAIL, PASSWORD)).toEqual({ outcome: 'unavailable', reason: 'no response within 1s' });
    expect(await verifierFor('/broken').verifier.verify(EMAIL, PASSWORD)).toEqual({ outcome: 'unavailable', reason: 'HTTP 500' });
    expect(await verifierFor('/not-json').verifier.verify(EMAIL, PASSWORD)).toEqual({ outcome: 'unavailable', reason: 'the answer is not JSON' });
    expect(await verifierFor('/wrong-shape').verifier.verify(EMAIL, PASSWORD)).toEqual({ outcome: 'unavailable', reason: 'the answer is not {"verified": true | false}' });
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const config = loadConfig({ env: {}, overrides: { legacy_verify: { url: `http://127.0.0.1:${port}/verify`, secret: SECRET } } });
    expect(await createLegacyVerifier(config.legacy_verify)!.verify(EMAIL, PASSWORD)).toMatchObject({ outcome: 'unavailable', reason: expect.stringMatching(/ECONNREFUSED/) });
  });

  it('does not follow a redirect, which would carry the password somewhere nobody configured', async () => {
    const requests = seen.length;
    expect(await verifierFor('/moved').verifier.verify(EMAIL, PASSWORD)).toEqual({ outcome: 'unavailable', reason: 'HTTP 302' });
    expect(seen.slice(requests).map((r) => r.path)).toEqual(['/moved']);
  });

  it('asks once: no retry after a failure', async () => {
    const requests = seen.length;
    await verifierFor('/broken').verifier.verify(EMAIL, PASSWORD);
    expect(seen.length - requests).toBe(1);
  });

  it('logs why the old system gave no answer, and never the password or the email', async () => {
    const { verifier, logs } = verifierFor('/broken');
    await verifier.verify(EMAIL, PASSWORD);
    expect(logs()).toMatch(/legacy_verify: the old system gave no usable answer/);
    expect(logs()).toMatch(/"reason":"HTTP 500"/);
    expect(logs()).not.toContain(PASSWORD);
    expect(logs()).not.toContain(EMAIL);
  });
});
