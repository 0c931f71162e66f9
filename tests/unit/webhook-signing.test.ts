import { createLocalJWKSet, exportJWK, generateKeyPair, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { endpointsFromConfig } from '../../src/events/endpoints.ts';
import { createSetSigner, eventUri, setClaims, setRequest, standardWebhookRequest } from '../../src/events/signing.ts';

// Signing against the specifications' own examples, so that a receiver using any Standard
// Webhooks or JOSE library verifies what Parley sends.

const webhook = (secrets: string[]) => endpointsFromConfig([{
  url: 'https://crm.example.com/hook?token=abc', events: ['account.created'], purposes: [], format: 'standard', secrets,
}])[0]!;

describe('Standard Webhooks signatures', () => {
  it('match the reference implementation\'s test vector', () => {
    // standard-webhooks/standard-webhooks libraries/javascript/src/webhook.test.ts, "sign function works".
    const endpoint = webhook(['whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw']);
    expect(endpoint.sign('msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}'))
      .toEqual(['v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=']);
  });

  it('sign with every secret, current first, in one header', () => {
    const current = `whsec_${Buffer.alloc(32, 1).toString('base64')}`;
    const previous = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const request = standardWebhookRequest(webhook([current, previous]), 'msg_p5jXN8AQM9LWM0D4loKWxJek', new Date(1614265330_000), '{"test": 2432232314}');
    expect(request.headers).toMatchObject({
      'content-type': 'application/json',
      'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek',
      'webhook-timestamp': '1614265330',
    });
    const [first, second] = request.headers['webhook-signature']!.split(' ');
    expect(first).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    expect(second).toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  });

  it('keep the secrets out of the endpoint\'s data, so that logging it cannot leak them', () => {
    const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const endpoint = webhook([secret]);
    expect(JSON.stringify(endpoint)).not.toContain('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
    expect(JSON.stringify(endpoint)).not.toContain(Buffer.from('MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'base64').toString('hex'));
  });
});

describe('Security Event Tokens', () => {
  it('are JWS with typ secevent+jwt and the kid, verifiable with the public JWKS (RFC 8417, RFC 8935)', async () => {
    const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
    const sign = createSetSigner({ ...(await exportJWK(privateKey)), kid: 'k1', alg: 'RS256' });
    const endpoint = endpointsFromConfig([{ url: 'https://cdp.example.com/set', events: ['account.deleted'], purposes: [], format: 'set', secrets: [] }])[0]!;
    const event = { id: '7d0f8f4e-3f3f-4d7c-9f4a-1a2b3c4d5e6f', type: 'account.deleted', accountId: 'acc-1', payload: { version: 1, account_id: 'acc-1' }, createdAt: new Date('2026-11-23T10:00:00Z') };
    const claims = setClaims({ issuer: 'https://id.example.com', endpoint, event, data: event.payload, now: new Date('2026-11-23T10:00:05Z') });
    const request = setRequest(endpoint, await sign(claims));
    expect(request.headers['content-type']).toBe('application/secevent+jwt');

    const jwks = createLocalJWKSet({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256' }] });
    const { payload, protectedHeader } = await jwtVerify(request.body, jwks, {
      issuer: 'https://id.example.com', audience: 'https://cdp.example.com/set', typ: 'secevent+jwt',
    });
    expect(protectedHeader).toEqual({ alg: 'RS256', typ: 'secevent+jwt', kid: 'k1' });
    expect(payload).toEqual({
      iss: 'https://id.example.com', aud: 'https://cdp.example.com/set', jti: event.id,
      iat: 1795428005, toe: 1795428000,
      sub_id: { format: 'opaque', id: 'acc-1' },
      events: { [eventUri('account.deleted')]: { version: 1, account_id: 'acc-1' } },
    });
    expect(eventUri('account.deleted')).toBe('https://parley.dev/events/account.deleted');
  });
});
