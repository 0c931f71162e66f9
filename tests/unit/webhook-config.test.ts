import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.ts';
import { problemsOf } from '../support/config.ts';

// The webhooks and events settings: defaults from config/default.yaml, and every mistake named by
// its key path with what is expected.

const secret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;

describe('webhook configuration', () => {
  it('ships defaults for the delivery worker, durations in seconds', () => {
    const config = loadConfig({ env: {} });
    expect(config.webhooks).toEqual([]);
    expect(config.events).toEqual({
      worker: true, poll_interval: 1, batch_size: 50, parallel_batches: 4, timeout: 10, retry_for: 3 * 86400,
      backoff_base: 5, backoff_max: 3600, allow_http_hosts: ['127.0.0.1', 'localhost', '::1'],
    });
  });

  it('accepts an https endpoint with its defaults filled in', () => {
    const config = loadConfig({ env: {}, overrides: { webhooks: [{ url: 'https://crm.example.com/hook', events: ['answer.recorded'], secrets: [secret] }] } });
    expect(config.webhooks[0]).toEqual({ url: 'https://crm.example.com/hook', events: ['answer.recorded'], purposes: [], format: 'standard', secrets: [secret] });
  });

  it('allows plain http only to the hosts listed in events.allow_http_hosts', () => {
    for (const url of ['http://127.0.0.1:4000/events', 'http://localhost/events', 'http://[::1]:4000/events']) {
      expect(() => loadConfig({ env: {}, overrides: { webhooks: [{ url, events: ['account.created'], secrets: [secret] }] } })).not.toThrow();
    }
    expect(problemsOf({ webhooks: [{ url: 'http://crm.example.com/hook', events: ['account.created'], secrets: [secret] }] })).toEqual([
      'overrides: webhooks[0].url: webhooks must use https; plain http is allowed only to the hosts in events.allow_http_hosts (127.0.0.1, localhost, ::1), not "crm.example.com"',
    ]);
    expect(() => loadConfig({ env: {}, overrides: {
      events: { allow_http_hosts: ['receiver.internal'] },
      webhooks: [{ url: 'http://receiver.internal/hook', events: ['account.created'], secrets: [secret] }],
    } })).not.toThrow();
  });

  it('names every mistake in an endpoint at once', () => {
    const problems = problemsOf({
      webhooks: [
        { id: 'crm', url: 'https://a.example.com', events: ['answer.recorded', 'answer.exploded'], purposes: ['marketing'], secrets: ['hunter2'] },
        { id: 'crm', url: 'https://b.example.com', events: ['account.created'] },
        { url: 'https://c.example.com', events: ['account.created'], format: 'set', secrets: [secret] },
        { url: 'https://d.example.com', events: [], secret },
      ],
    });
    expect(problems).toEqual(expect.arrayContaining([
      expect.stringMatching(/^overrides: webhooks\[0\]\.events\[1\]: Invalid option: expected one of "account\.created"\|/),
      expect.stringMatching(/^overrides: webhooks\[0\]\.secrets\[0\]: expected "whsec_" followed by the base64 of 24 to 64 random bytes/),
      'overrides: webhooks[3].events: Too small: expected array to have >=1 items',
      'overrides: webhooks[3].secret: unknown key; check its spelling and place (config/default.yaml lists every key)',
    ]));
    // Cross-field checks run once the shapes are right.
    const crossField = problemsOf({
      webhooks: [
        { id: 'crm', url: 'https://a.example.com', events: ['answer.recorded'], purposes: ['marketing'], secrets: [secret] },
        { id: 'crm', url: 'https://b.example.com', events: ['account.created'] },
        { url: 'https://c.example.com', events: ['account.created'], format: 'set', secrets: [secret] },
      ],
    });
    expect(crossField).toEqual([
      'overrides: webhooks[0].purposes[0]: unknown purpose "marketing"; declare it under purposes: (known: personalization, offers)',
      'overrides: webhooks[1].id: duplicate webhook id "crm"; give each endpoint its own id',
      'overrides: webhooks[1]: format standard signs with a shared secret: add secrets: ["whsec_..."]',
      "overrides: webhooks[2].secrets: format set is signed with the issuer's keys (receivers verify with the JWKS): remove secrets",
    ]);
  });

  it('rejects secrets that are too short to be Standard Webhooks secrets', () => {
    const short = `whsec_${Buffer.alloc(16).toString('base64')}`;
    expect(problemsOf({ webhooks: [{ url: 'https://a.example.com', events: ['account.created'], secrets: [short] }] })[0])
      .toMatch(/webhooks\[0\]\.secrets\[0\]: expected "whsec_"/);
  });

  it('checks the worker settings', () => {
    expect(problemsOf({ events: { timeout: '0s', batch_size: 0, retry_for: 'forever' } })).toEqual([
      'overrides: events.batch_size: Too small: expected number to be >=1',
      'overrides: events.timeout: must be longer than 0s',
      'overrides: events.retry_for: expected a duration such as 60s, 15m, 20h or 7d, got "forever"',
    ]);
  });
});
