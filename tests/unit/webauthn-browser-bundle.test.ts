import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';

// The sign-in page serves @simplewebauthn/browser from our own origin as a plain script (the CSP
// allows no inline or remote script). The package exports only its module entry points, so the
// single-file bundle is found next to them; this test keeps that path honest across upgrades.
const require = createRequire(import.meta.url);
const WEBAUTHN_BROWSER_BUNDLE = path.join(path.dirname(require.resolve('@simplewebauthn/browser')), '../dist/bundle/index.umd.min.js');

describe('the WebAuthn browser bundle', () => {
  it('is one self-contained script defining SimpleWebAuthnBrowser, without eval', () => {
    const source = readFileSync(WEBAUTHN_BROWSER_BUNDLE, 'utf8');
    expect(source).not.toMatch(/\beval\(|new Function\(|import\(|\brequire\(/);
    const sandbox: Record<string, unknown> = {};
    sandbox.globalThis = sandbox;
    vm.runInNewContext(source, sandbox);
    const api = sandbox.SimpleWebAuthnBrowser as Record<string, unknown>;
    for (const name of ['startRegistration', 'startAuthentication', 'browserSupportsWebAuthn', 'browserSupportsWebAuthnAutofill']) {
      expect(typeof api[name]).toBe('function');
    }
  });
});
