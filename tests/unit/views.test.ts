import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { direction, loadMessages, pickLocale, translate } from '../../src/views/i18n.ts';
import type { PageData, PageName } from '../../src/views/pages.ts';
import { ASSETS_DIR, createRenderer } from '../../src/views/render.ts';

const LOCALES = ['en', 'ar', 'ja'];
const renderer = createRenderer({ defaultLocale: 'en', supported: LOCALES });
const messages = loadMessages();

type Sample = { [P in PageName]: { page: P; data: PageData[P] } }[PageName];
const sample = <P extends PageName>(page: P, data: PageData[P]): Sample => ({ page, data }) as Sample;

const LOGOUT_FORM = '<form id="op.logoutForm" method="post" action="/session/end/confirm"><input type="hidden" name="xsrf" value="abc123"/></form>';

// Every page, and every branch of it that shows something different.
const SAMPLES: Sample[] = [
  sample('login', { csrfToken: 'tok', action: '/interaction/u1/login', registerUrl: '/interaction/u1/register', forgotUrl: '/forgot-password' }),
  sample('login', {
    csrfToken: 'tok', action: '/interaction/u1/login', email: 'ana@example.com', error: 'The email or password is incorrect.',
    clientName: 'Demo Shop', registerUrl: '/interaction/u1/register', forgotUrl: '/forgot-password',
  }),
  sample('register', { csrfToken: 'tok', action: '/interaction/u1/register', errors: {}, loginUrl: '/interaction/u1', passwordMinLength: 12 }),
  sample('register', {
    csrfToken: 'tok', action: '/interaction/u1/register', email: 'ana@example', name: 'Ana',
    errors: { email: 'Enter an email address like name@example.com.', password: 'Use at least 12 characters.', form: 'Please fix the problems below.' },
    loginUrl: '/interaction/u1', passwordMinLength: 12,
  }),
  sample('check_email', { csrfToken: 'tok', email: 'ana@example.com', continueAction: '/interaction/u1/continue', resendAction: '/interaction/u1/resend' }),
  sample('check_email', { csrfToken: 'tok', email: '' }),
  sample('consent', {
    csrfToken: 'tok', action: '/interaction/u1/consent', cancelAction: '/interaction/u1/abort', clientName: 'Web App',
    items: ['Your email address', 'Your name and language'],
  }),
  sample('consent', { csrfToken: 'tok', action: '/interaction/u1/consent', cancelAction: '/interaction/u1/abort', clientName: 'Web App', items: [] }),
  sample('logout', { formHtml: LOGOUT_FORM, clientName: 'Demo Shop' }),
  sample('logout', { formHtml: LOGOUT_FORM }),
  sample('logged_out', { clientName: 'Demo Shop' }),
  sample('logged_out', {}),
  sample('verify_email', { ok: true, message: 'Your email address is verified.', continueUrl: '/interaction/u1' }),
  sample('verify_email', { ok: false, message: 'This link has expired. Ask for a new one.' }),
  sample('forgot_password', { csrfToken: 'tok', action: '/forgot-password', sent: false }),
  sample('forgot_password', { csrfToken: 'tok', action: '/forgot-password', email: 'ana@example.com', sent: false, error: 'Enter an email address.' }),
  sample('forgot_password', { csrfToken: 'tok', action: '/forgot-password', email: 'ana@example.com', sent: true }),
  sample('reset_password', { csrfToken: 'tok', action: '/reset-password', token: 'reset-token', errors: {}, done: false, passwordMinLength: 12, invalidToken: false }),
  sample('reset_password', {
    csrfToken: 'tok', action: '/reset-password', token: 'reset-token', errors: { password: 'Too common.' }, done: false, passwordMinLength: 12, invalidToken: false,
  }),
  sample('reset_password', {
    csrfToken: 'tok', action: '/reset-password', token: 'x', errors: { form: 'This link has expired.' }, done: false, passwordMinLength: 12, invalidToken: true,
  }),
  sample('reset_password', { csrfToken: 'tok', action: '/reset-password', token: 'x', errors: {}, done: true, loginUrl: '/demo/login', passwordMinLength: 12, invalidToken: false }),
  sample('message', { title: 'Sorry, there is a problem', message: 'We could not find that page.', requestId: 'req-12345678', backUrl: '/' }),
  sample('message', { title: 'Sorry, there is a problem', message: 'Something went wrong on our side.' }),
  sample('demo', { signedIn: false, loginUrl: '/demo/login', error: 'Signing in did not complete.' }),
  sample('demo', {
    signedIn: true, loginUrl: '/demo/login', logoutUrl: '/demo/logout',
    idTokenClaims: JSON.stringify({ sub: 'abc', email: 'ana@example.com', email_verified: false }, null, 2),
    userinfo: JSON.stringify({ sub: 'abc', name: 'Ana' }, null, 2),
  }),
];

function render(s: Sample, locale: string): string {
  return renderer.render(s.page, locale, s.data as never);
}

const attribute = (tag: string, name: string) => new RegExp(`\\s${name}="([^"]*)"`).exec(tag)?.[1];

describe('every page', () => {
  it('has a sample for each page name', () => {
    const pages = readdirSync(path.join(import.meta.dirname, '../../src/views/pages')).map((f) => path.basename(f, '.hbs'));
    expect(new Set(SAMPLES.map((s) => s.page))).toEqual(new Set(pages));
  });

  for (const locale of LOCALES) {
    describe(locale, () => {
      it.each(SAMPLES.map((s, i) => [`${s.page} #${i}`, s] as const))('%s renders a complete, accessible document', (_, s) => {
        const html = render(s, locale);
        expect(html.startsWith('<!doctype html>\n')).toBe(true);
        expect(html).toContain(`<html lang="${locale}" dir="${locale === 'ar' ? 'rtl' : 'ltr'}">`);
        expect(html).toContain('<meta charset="utf-8">');
        expect(html).toContain('<meta name="viewport" content="width=device-width, initial-scale=1">');
        expect(html).toContain('<link rel="stylesheet" href="/assets/parley.css">');
        expect(html).toMatch(/<title>[^<]+<\/title>/);
        expect(html.match(/<main\b/g)).toHaveLength(1);
        expect(html.match(/<h1>[^<]+<\/h1>/g)).toHaveLength(1);

        // A strict CSP allows neither.
        expect(html).not.toMatch(/\sstyle\s*=/i);
        expect(html).not.toMatch(/<script/i);

        // Every text comes from the locale files: no message key is left showing.
        for (const key of Object.keys(messages.en!)) expect(html).not.toContain(key);

        const ids = [...html.matchAll(/\sid="([^"]+)"/g)].map((m) => m[1]!);
        expect(new Set(ids).size).toBe(ids.length);
        const labelled = new Set([...html.matchAll(/<label\b[^>]*\sfor="([^"]+)"/g)].map((m) => m[1]!));
        for (const [input] of html.matchAll(/<input\b[^>]*>/g)) {
          if (attribute(input, 'type') === 'hidden') continue;
          expect(labelled, input).toContain(attribute(input, 'id'));
        }
        for (const [, refs] of html.matchAll(/aria-describedby="([^"]*)"/g)) {
          for (const ref of refs!.split(' ')) expect(ids).toContain(ref);
        }
        for (const [form] of html.matchAll(/<form\b[^>]*>/g)) {
          expect(attribute(form, 'method')).toBe('post');
        }
      });
    });
  }

  it('puts a CSRF token in every form of ours', () => {
    for (const s of SAMPLES.filter((x) => x.page !== 'logout')) {
      const html = render(s, 'en');
      for (const [, body] of html.matchAll(/<form\b[^>]*>([\s\S]*?)<\/form>/g)) {
        expect(body).toContain('<input type="hidden" name="csrf" value="tok">');
      }
    }
  });
});

describe('escaping', () => {
  const evil = '"><script>alert(1)</script>';
  const escaped = '&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;';

  it.each(LOCALES)('escapes user-supplied values (%s)', (locale) => {
    const pages = [
      renderer.render('login', locale, { csrfToken: evil, action: '/x', email: evil, error: evil, clientName: evil, registerUrl: '/r', forgotUrl: '/f' }),
      renderer.render('register', locale, { csrfToken: 't', action: '/x', email: evil, name: evil, errors: { email: evil, password: evil, form: evil }, loginUrl: '/l', passwordMinLength: 8 }),
      renderer.render('check_email', locale, { csrfToken: 't', email: evil, continueAction: '/c' }),
      renderer.render('consent', locale, { csrfToken: 't', action: '/a', cancelAction: '/c', clientName: evil, items: [evil] }),
      renderer.render('forgot_password', locale, { csrfToken: 't', action: '/f', email: evil, sent: false, error: evil }),
      renderer.render('reset_password', locale, { csrfToken: 't', action: '/r', token: evil, errors: { password: evil }, done: false, passwordMinLength: 8, invalidToken: false }),
      renderer.render('message', locale, { title: evil, message: evil, requestId: evil }),
      renderer.render('demo', locale, { signedIn: true, loginUrl: '/l', idTokenClaims: evil, userinfo: evil }),
      renderer.render('logged_out', locale, { clientName: evil }),
    ];
    for (const html of pages) {
      expect(html).not.toContain('<script');
      expect(html).toContain(escaped);
    }
  });

  it('inserts only the provider\'s logout form unescaped, with buttons joined to it by form=', () => {
    const html = renderer.render('logout', 'en', { formHtml: LOGOUT_FORM, clientName: 'Demo Shop' });
    expect(html).toContain(LOGOUT_FORM);
    expect(html).toMatch(/<button type="submit" class="button" form="op\.logoutForm" name="logout" value="yes">Sign out<\/button>/);
    expect(html).toMatch(/<button type="submit" class="button button--secondary" form="op\.logoutForm">Stay signed in<\/button>/);
    const templates = readdirSync(path.join(import.meta.dirname, '../../src/views'), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.hbs'))
      .map((f) => readFileSync(path.join(import.meta.dirname, '../../src/views', f), 'utf8'));
    expect(templates.join('').match(/\{\{\{[^}]*\}\}\}/g)).toEqual(['{{{formHtml}}}']);
  });
});

describe('page details', () => {
  it('shows the sign-in page as the e2e tests and password managers expect', () => {
    const html = renderer.render('login', 'en', {
      csrfToken: 't', action: '/login', email: 'ana@example.com', error: 'The email or password is incorrect.',
      registerUrl: '/register', forgotUrl: '/forgot',
    });
    expect(/role="alert"[^>]*>([^<]*)</.exec(html)?.[1]).toBe('The email or password is incorrect.');
    expect(html).toMatch(/<input id="email" name="email" type="email" autocomplete="username" value="ana@example.com"[^>]* required>/);
    expect(html).toMatch(/<input id="password" name="password" type="password" autocomplete="current-password"[^>]* required>/);
    expect(html).toContain('<a href="/register">Create an account</a>');
    expect(html).toContain('<a href="/forgot">Forgot your password?</a>');
    expect(html).toContain('<title>Error: \u2068Sign in\u2069 · Parley</title>');
  });

  it('ties field errors and the password hint to their inputs', () => {
    const html = renderer.render('register', 'en', {
      csrfToken: 't', action: '/r', errors: { password: 'Use at least 12 characters.' }, loginUrl: '/l', passwordMinLength: 12,
    });
    expect(html).toContain('<p class="field__hint" id="password-hint">At least 12 characters. Long passphrases welcome.</p>');
    expect(html).toContain('<p class="field__error" id="password-error"><span class="field__error-prefix">Error:</span> Use at least 12 characters.</p>');
    expect(html).toMatch(/<input id="password"[^>]* minlength="12" aria-invalid="true" aria-describedby="password-error password-hint">/);
    expect(html).toMatch(/<input id="email"[^>]*autocomplete="username"[^>]* required>/);
    expect(html).not.toMatch(/<input id="email"[^>]*aria-invalid/);
    expect(html).toMatch(/<input id="name" name="name" type="text" autocomplete="name"/);
  });

  it('does not let a page\'s own error leak into its fields', () => {
    const html = renderer.render('login', 'ar', { csrfToken: 't', action: '/x', error: 'wrong', registerUrl: '/r', forgotUrl: '/f' });
    expect(html).not.toContain('aria-invalid');
    expect(html).not.toMatch(/<input[^>]*dir="rtl"/);
  });

  it('renders the reset form with its token, and without the form once done', () => {
    const form = renderer.render('reset_password', 'en', {
      csrfToken: 't', action: '/reset-password', token: 'tk', errors: {}, done: false, passwordMinLength: 10, invalidToken: false,
    });
    expect(form).toContain('<input type="hidden" name="token" value="tk">');
    expect(form).toMatch(/autocomplete="new-password"/);
    const done = renderer.render('reset_password', 'en', {
      csrfToken: 't', action: '/reset-password', token: 'tk', errors: {}, done: true, passwordMinLength: 10, invalidToken: false,
    });
    expect(done).not.toContain('<form');
    expect(done).toContain('Your password is changed.');
  });

  it('says the same after a reset request whatever the address', () => {
    const page = (email: string) => renderer.render('forgot_password', 'en', { csrfToken: 't', action: '/f', email, sent: true });
    expect(page('known@example.com')).toBe(page('nobody@example.com'));
    expect(page('a@example.com')).toContain('If an account exists for that address, we sent a link');
  });

  it('offers continue and resend only when their actions are given', () => {
    const both = renderer.render('check_email', 'en', { csrfToken: 't', email: 'ana@example.com', continueAction: '/c', resendAction: '/r' });
    expect(both).toContain('We sent a link to \u2068ana@example.com\u2069.');
    expect(both).toContain('I have verified my email — continue');
    expect(both).toContain('Send the link again');
    const none = renderer.render('check_email', 'en', { csrfToken: 't', email: '' });
    expect(none).not.toContain('<form');
    expect(none).toContain('We sent you a link.');
  });

  it('posts Deny to the cancel action', () => {
    const html = renderer.render('consent', 'en', { csrfToken: 't', action: '/consent', cancelAction: '/abort', clientName: 'Web App', items: ['Your email address'] });
    expect(html).toContain('<form method="post" action="/consent">');
    expect(html).toContain('formaction="/abort">Deny</button>');
    expect(html).toContain('<li>Your email address</li>');
  });

  it('shows the demo claims as JSON, left to right even in Arabic', () => {
    const html = renderer.render('demo', 'ar', { signedIn: true, loginUrl: '/l', logoutUrl: '/o', idTokenClaims: '{\n  "email_verified": false\n}' });
    expect(html).toContain('<pre dir="ltr">{\n  &quot;email_verified&quot;: false\n}</pre>');
    expect(html).not.toContain('class="brand"');
    const signedOut = renderer.render('demo', 'en', { signedIn: false, loginUrl: '/demo/login' });
    expect(signedOut).toContain('<a class="button" href="/demo/login">Sign in with Parley</a>');
  });

  it('takes the stylesheet path from the options', () => {
    const local = createRenderer({ defaultLocale: 'en', supported: ['en'], assetsPath: '.' });
    expect(local.render('logged_out', 'en', {})).toContain('<link rel="stylesheet" href="./parley.css">');
  });

  it('shows an unknown locale in the default one, labelled as such', () => {
    const html = renderer.render('logged_out', 'fr', {});
    expect(html).toContain('<html lang="en" dir="ltr">');
  });

  it('refuses to start with a supported locale that has no messages', () => {
    expect(() => createRenderer({ defaultLocale: 'en', supported: ['en', 'fr'] })).toThrow(/no messages for locale fr/);
  });

  it('serves the stylesheet from ASSETS_DIR', () => {
    expect(readFileSync(path.join(ASSETS_DIR, 'parley.css'), 'utf8')).toContain(':focus-visible');
  });
});

describe('locale files', () => {
  const placeholders = (text: string) =>
    [...text.matchAll(/\{(\w+)(?:, plural,|\})/g)].map((m) => m[1]!).sort();

  it('ship en, ar and ja', () => {
    expect(Object.keys(messages).sort()).toEqual(['ar', 'en', 'ja']);
  });

  it.each(['ar', 'ja'])('%s has exactly the keys of en, with the same placeholders', (locale) => {
    const source = messages.en!;
    const target = messages[locale]!;
    expect(Object.keys(target).sort()).toEqual(Object.keys(source).sort());
    for (const [key, text] of Object.entries(source)) {
      expect(new Set(placeholders(target[key]!)), `${locale}: ${key}`).toEqual(new Set(placeholders(text)));
      expect(target[key]!.trim(), `${locale}: ${key}`).not.toBe('');
    }
  });

  it('have every key a template uses', () => {
    const dir = path.join(import.meta.dirname, '../../src/views');
    const used = readdirSync(dir, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.hbs'))
      .flatMap((f) => [...readFileSync(path.join(dir, f), 'utf8').matchAll(/\(?\bt "([^"]+)"/g)].map((m) => m[1]!));
    expect(used.length).toBeGreaterThan(30);
    for (const key of used) expect(Object.keys(messages.en!)).toContain(key);
  });

  it('have every key the routes look up', () => {
    const keys = [
      ...['openid', 'email', 'profile', 'offline_access', 'preferences'].map((s) => `scope.${s}`),
      ...['invalid_credentials', 'throttled', 'throttled_minutes', 'email_not_verified', 'invalid_email', 'password_too_short',
        'password_too_long', 'password_common', 'password_required', 'email_taken', 'token_invalid', 'token_expired', 'csrf',
        'session_expired', 'not_found', 'server', 'unavailable', 'too_large', 'oidc'].map((e) => `error.${e}`),
      ...['login', 'register', 'consent', 'logout', 'logged_out', 'verify_email', 'forgot_password', 'reset_password', 'error',
        'check_email', 'demo'].map((p) => `title.${p}`),
      'verify.ok', 'verify.failed', 'reset.done', 'demo.failed',
    ];
    for (const locale of LOCALES) {
      for (const key of keys) expect(Object.keys(messages[locale]!), `${locale}: ${key}`).toContain(key);
    }
  });
});

describe('translate', () => {
  it('interpolates variables, isolating text so it keeps its own direction', () => {
    expect(translate('en', 'error.oidc', { description: 'bad redirect_uri' })).toBe('The app sent an invalid sign-in request: \u2068bad redirect_uri\u2069');
    expect(translate('en', 'error.password_too_short', { min: 12 })).toBe('Use at least 12 characters.');
  });

  it('picks plural forms by the locale\'s rules', () => {
    expect(translate('en', 'error.throttled', { seconds: 1 })).toBe('Too many failed attempts. Try again in 1 second.');
    expect(translate('en', 'error.throttled', { seconds: 30 })).toBe('Too many failed attempts. Try again in 30 seconds.');
    expect(translate('en', 'error.throttled_minutes', { minutes: 15 })).toBe('Too many failed attempts. Try again in 15 minutes.');
    expect(translate('ar', 'error.throttled', { seconds: 2 })).toContain('بعد ثانيتين.');
    expect(translate('ar', 'error.throttled', { seconds: 5 })).toContain('بعد 5 ثوانٍ.');
    expect(translate('ar', 'error.throttled', { seconds: 11 })).toContain('بعد 11 ثانية.');
    expect(translate('ja', 'error.throttled', { seconds: 5 })).toContain('5秒後');
  });

  it('leaves a missing variable visible and never rescans inserted values', () => {
    expect(translate('en', 'error.throttled')).toContain('{seconds, plural,');
    expect(translate('en', 'error.oidc', { description: '{description}' })).toBe('The app sent an invalid sign-in request: \u2068{description}\u2069');
  });

  it('falls back to the default locale, then to the key', () => {
    expect(translate('fr', 'login.submit', {}, 'ja')).toBe('ログイン');
    expect(translate('fr', 'login.submit')).toBe('Sign in');
    expect(translate('en', 'no.such.key')).toBe('no.such.key');
    expect(renderer.t('xx', 'consent.allow')).toBe('Allow');
  });
});

describe('pickLocale', () => {
  const supported = ['en', 'ar', 'ja'];
  const pick = (uiLocales?: string, acceptLanguage?: string) => pickLocale({ uiLocales, acceptLanguage, supported, fallback: 'en' });

  it('prefers ui_locales over Accept-Language, in the order given', () => {
    expect(pick('ar', 'ja')).toBe('ar');
    expect(pick('fr ja ar', 'en')).toBe('ja');
    expect(pick('fr', 'ja')).toBe('ja');
  });

  it('honours q-values, not header order', () => {
    expect(pick(undefined, 'en;q=0.5, ja;q=0.9, ar;q=0.7')).toBe('ja');
    expect(pick(undefined, 'ja-JP,ja;q=0.9,en;q=0.5')).toBe('ja');
    expect(pick(undefined, 'fr, ar;q=0.8, en;q=0.8')).toBe('ar');
    expect(pick(undefined, 'ar;q=0, ja;q=0.1')).toBe('ja');
  });

  it('falls back from a region or script to the language', () => {
    expect(pick('ar-EG')).toBe('ar');
    expect(pick(undefined, 'JA-jp')).toBe('ja');
    expect(pickLocale({ uiLocales: 'pt', supported: ['en', 'pt-BR'], fallback: 'en' })).toBe('pt-BR');
    expect(pickLocale({ uiLocales: 'zh-Hant-TW', supported: ['zh-Hant', 'zh'], fallback: 'en' })).toBe('zh-Hant');
  });

  it('uses the fallback for unsupported, empty or malformed input', () => {
    expect(pick('fr de', 'es, *;q=0.1')).toBe('en');
    expect(pick(undefined, undefined)).toBe('en');
    expect(pick('<script>', 'ja;q=2, ar;q=abc')).toBe('en');
  });
});

describe('direction', () => {
  it('is rtl for right-to-left languages, with or without a region', () => {
    for (const locale of ['ar', 'ar-EG', 'he', 'fa', 'ur']) expect(direction(locale)).toBe('rtl');
    for (const locale of ['en', 'ja', 'en-GB', 'fr']) expect(direction(locale)).toBe('ltr');
  });
});
