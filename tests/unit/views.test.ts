import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { AnswerErrorCode, AnswerErrorParams } from '../../src/screensets/engine.ts';
import { parse, TYPE, type MessageFormatElement } from '@formatjs/icu-messageformat-parser';
import { direction, languageName, loadMessages, negotiateLocale, parseMessage, pickLocale, translate } from '../../src/views/i18n.ts';
import type { AccountAnswerView, AccountConsentView, PageData, PageName } from '../../src/views/pages.ts';
import { ASSETS_DIR, createRenderer } from '../../src/views/render.ts';

const messages = loadMessages();
// Every locale that has a message file: a new file is tested here without editing this list.
const LOCALES = Object.keys(messages);
const renderer = createRenderer({ defaultLocale: 'en', supported: LOCALES });

// How each locale is written. A new locale fails the test below until its direction is stated here.
const DIRECTION: Record<string, 'ltr' | 'rtl'> = { en: 'ltr', ar: 'rtl', ja: 'ltr', he: 'rtl', th: 'ltr' };
const LOCALE_SWITCH = { action: '/locale', csrfToken: 'tok', returnTo: '/interaction/u1?x=1&y="2"' };

type Sample = { [P in PageName]: { page: P; data: PageData[P] } }[PageName];
const sample = <P extends PageName>(page: P, data: PageData[P]): Sample => ({ page, data }) as Sample;

const yesNo = (checked?: boolean) => [
  { value: 'true', label: 'Yes', checked: checked === true },
  { value: 'false', label: 'No', checked: checked === false },
];
const scalePoints = (checked?: number) =>
  [1, 2, 3, 4, 5].map((n) => ({ value: String(n), label: String(n), checked: n === checked }));

// One question of each type, in the shape the route builds; PROFILE_ANSWERED has every branch the
// other leaves out (values, checked options, errors, re-asked, declined).
const PROFILE_BLANK: PageData['profile'] = {
  csrfToken: 'tok', action: '/interaction/u1/profile', skipAction: '/interaction/u1/profile/skip',
  title: 'A little about you', clientName: 'Demo Shop',
  questions: [
    {
      id: 'brew_method', name: 'answer.brew_method', type: 'single_choice', label: 'How do you brew at home?', required: false,
      options: [{ value: 'espresso', label: 'Espresso', checked: false }, { value: 'filter', label: 'Filter', checked: false }],
      reasked: false, declined: false,
    },
    {
      id: 'flavours', name: 'answer.flavours', type: 'multi_choice', label: 'Which flavours do you like?', required: false,
      options: [{ value: 'nutty', label: 'Nutty', checked: false }, { value: 'fruity', label: 'Fruity', checked: false }],
      reasked: false, declined: false,
    },
    { id: 'oat_milk', name: 'answer.oat_milk', type: 'boolean', label: 'Do you drink oat milk?', required: false, options: yesNo(), reasked: false, declined: false },
    { id: 'birthday', name: 'answer.birthday', type: 'date', label: 'When is your birthday?', required: false, reasked: false, declined: false },
    { id: 'cups', name: 'answer.cups', type: 'number', label: 'Cups a day', required: false, reasked: false, declined: false },
    {
      id: 'recommend', name: 'answer.recommend', type: 'scale', label: 'Would you recommend us?', required: false, options: scalePoints(),
      reasked: false, declined: false,
    },
    { id: 'nickname', name: 'answer.nickname', type: 'text', label: 'What should we call you?', required: false, reasked: false, declined: false },
  ],
};

const PROFILE_ANSWERED: PageData['profile'] = {
  ...PROFILE_BLANK,
  error: 'Some answers need your attention. Nothing has been saved yet.',
  questions: [
    {
      id: 'brew_method', name: 'answer.brew_method', type: 'single_choice', label: 'How do you brew at home?', required: true,
      help: 'Pick the one you use most.', reward: 'Earn 50 points',
      options: [{ value: 'espresso', label: 'Espresso', checked: false }, { value: 'filter', label: 'Filter', checked: true }],
      reasked: true, declined: false,
    },
    {
      id: 'flavours', name: 'answer.flavours', type: 'multi_choice', label: 'Which flavours do you like?', required: false,
      error: 'Choose at most 1 option.',
      options: [{ value: 'nutty', label: 'Nutty', checked: true }, { value: 'fruity', label: 'Fruity', checked: true }],
      reasked: false, declined: false,
    },
    { id: 'oat_milk', name: 'answer.oat_milk', type: 'boolean', label: 'Do you drink oat milk?', required: true, options: yesNo(false), reasked: false, declined: false },
    {
      id: 'birthday', name: 'answer.birthday', type: 'date', label: 'When is your birthday?', required: false,
      reward: 'A free drink on your birthday', value: '1990-02-30', min: '1900-01-01', max: '2008-05-01', error: 'Enter a real date.',
      reasked: false, declined: false,
    },
    {
      id: 'cups', name: 'answer.cups', type: 'number', label: 'Cups a day', required: true, help: 'A rough guess is fine.',
      value: '2.5', min: '0', max: '20', step: '0.5', reasked: true, declined: false,
    },
    {
      id: 'recommend', name: 'answer.recommend', type: 'scale', label: 'Would you recommend us?', required: false, options: scalePoints(4),
      minLabel: 'Not at all likely', maxLabel: 'Extremely likely', error: 'Choose a point from 1 to 5.', reasked: false, declined: false,
    },
    {
      id: 'nickname', name: 'answer.nickname', type: 'text', label: 'What should we call you?', required: false, value: 'Ana',
      maxLength: 40, pattern: '[\\p{L} ]+', reasked: false, declined: true,
    },
  ],
};

// A purpose's consent asked for on the question screen, as the route builds it.
const PROFILE_CONSENTS: PageData['profile'] = {
  ...PROFILE_BLANK,
  consents: [
    { purpose: 'recommendations', title: 'Personal recommendations', description: 'We suggest coffees that suit your taste.', checked: false },
    { purpose: 'newsletter', title: 'Newsletter', description: 'We tailor the newsletter to you.', checked: true },
  ],
};

const PROFILE_CONSENT_ERROR: PageData['profile'] = {
  ...PROFILE_BLANK,
  error: 'Some answers need your attention. Nothing has been saved yet.',
  consents: [
    {
      purpose: 'recommendations', title: 'Personal recommendations', description: 'We suggest coffees that suit your taste.', checked: false,
      error: 'To save these answers, tick the box — or leave the questions blank.',
    },
  ],
};

// A re-consent screen: no questions, only the purposes whose text changed.
const PROFILE_RECONSENT: PageData['profile'] = {
  ...PROFILE_BLANK, title: 'We have updated how we use your answers', reconsent: true, questions: [],
  consents: [{ purpose: 'offers', title: 'Offers for you', description: 'We now also use your birthday for offers in the app.', checked: false }],
};

const ACCOUNT_ANSWER: AccountAnswerView = {
  questionId: 'brew_method', label: 'How do you brew at home?', value: 'Filter', purposeTitle: 'Personal recommendations',
  appName: 'Demo Shop', answeredAt: '3 May 2026', editUrl: '/account/answers/brew_method', deleteAction: '/account/answers/brew_method/delete',
};

const consentView = (purpose: string, state: AccountConsentView['state'], more: Partial<AccountConsentView> = {}): AccountConsentView => ({
  purpose, title: `Purpose ${purpose}`, description: `What ${purpose} is for.`, legalBasis: 'Your consent', changeable: true, state, version: 2,
  action: `/account/consents/${purpose}`, answerCount: 0, ...more,
});

// Every consent state, changeable or not, with and without a date and answers under it.
const ACCOUNT_CONSENTS: AccountConsentView[] = [
  consentView('recommendations', 'granted', { changedAt: '1 May 2026', answerCount: 3 }),
  consentView('newsletter', 'granted', { answerCount: 0 }),
  consentView('surveys', 'withdrawn', { changedAt: '2 April 2026', answerCount: 1 }),
  consentView('partners', 'withdrawn'),
  consentView('research', 'none'),
  consentView('offers', 'outdated', { changedAt: '1 January 2026', version: 3, answerCount: 2 }),
  consentView('billing', 'granted', { legalBasis: 'Needed for our contract with you', changeable: false, changedAt: '1 January 2026', answerCount: 4 }),
  consentView('fraud', 'none', { legalBasis: 'Our legitimate interest', changeable: false }),
];

const ACCOUNT_FULL: PageData['account'] = {
  csrfToken: 'tok', email: 'ana@example.com', name: 'Ana', notice: 'Your answer was deleted.',
  answers: [
    ACCOUNT_ANSWER,
    {
      questionId: 'birthday', label: 'When is your birthday?', value: '14 February 1990', purposeTitle: 'Birthday treats',
      answeredAt: '1 April 2026', deleteAction: '/account/answers/birthday/delete',
    },
  ],
  consents: ACCOUNT_CONSENTS,
  communication: {
    action: '/account/communication',
    channels: [{ id: 'email', label: 'Email' }, { id: 'sms', label: 'Text message' }, { id: 'push', label: 'Push notification' }],
    topics: [
      {
        id: 'offers', title: 'Offers and discounts', toggles: [
          { channel: 'email', value: 'email:offers', checked: true }, { channel: 'sms', value: 'sms:offers', checked: false },
          { channel: 'push', value: 'push:offers', checked: true },
        ],
      },
      {
        id: 'news', title: 'News', toggles: [
          { channel: 'email', value: 'email:news', checked: false }, { channel: 'sms', value: 'sms:news', checked: false },
          { channel: 'push', value: 'push:news', checked: false },
        ],
      },
    ],
  },
  apps: [
    { clientId: 'demo-shop', name: 'Demo Shop', receives: ['Your email address', 'Personalized recommendations'], revokeAction: '/account/apps/demo-shop/revoke' },
    { clientId: 'https://app.example/client', name: 'Web App', receives: ['Your account identifier'], revokeAction: '/account/apps/2/revoke' },
  ],
  exportUrl: '/account/export', deleteUrl: '/account/delete', emailUrl: '/account/email', signOutUrl: '/account/sign-out',
};

const ACCOUNT_TERMS: PageData['account']['terms'] = [
  { title: 'Terms of service', url: 'https://example.com/terms', accepted: [{ version: 2, date: '2 Jun 2026' }, { version: 1, date: '1 May 2026' }] },
  { title: 'Privacy policy', url: 'https://example.com/privacy', accepted: [], pendingVersion: 3 },
  { title: 'cookies', accepted: [{ version: 1, date: '1 May 2026' }] },
];

const ACCOUNT_EMPTY: PageData['account'] = {
  csrfToken: 'tok', email: 'ana@example.com', error: 'This form expired or was sent from another site. Please try again.',
  answers: [], consents: [], communication: { action: '/account/communication', channels: [{ id: 'email', label: 'Email' }], topics: [] }, apps: [],
  exportUrl: '/account/export', deleteUrl: '/account/delete', emailUrl: '/account/email', signOutUrl: '/account/sign-out',
};

const EDIT_ANSWER: PageData['account_edit_answer'] = {
  csrfToken: 'tok', action: '/account/answers/brew_method', cancelUrl: '/account#answers', purposeTitle: 'Personal recommendations',
  question: {
    id: 'brew_method', name: 'answer.brew_method', type: 'single_choice', label: 'How do you brew at home?', required: false,
    options: [{ value: 'espresso', label: 'Espresso', checked: false }, { value: 'filter', label: 'Filter', checked: true }],
    reasked: false, declined: false,
  },
};

const ACCOUNT_DELETE: PageData['account_delete'] = {
  csrfToken: 'tok', action: '/account/delete', cancelUrl: '/account', email: 'ana@example.com', needsRecentSignIn: false, reauthUrl: '/account/reauth',
};

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
  sample('register', {
    csrfToken: 'tok', action: '/interaction/u1/register', errors: { terms: 'Tick each box to accept the documents.' }, loginUrl: '/interaction/u1', passwordMinLength: 12,
    terms: [
      { id: 'tos', title: 'Terms of service', url: 'https://example.com/terms', checked: true },
      { id: 'privacy', title: 'Privacy policy', url: 'https://example.com/privacy', checked: false },
    ],
  }),
  sample('register', {
    csrfToken: 'tok', action: '/interaction/u1/register', errors: { birthdate: 'Enter your date of birth.' }, loginUrl: '/interaction/u1', passwordMinLength: 12,
    askBirthdate: true, birthdate: '2031-02-30',
  }),
  sample('login', {
    csrfToken: 'tok', action: '/interaction/u1/login', registerUrl: '/interaction/u1/register', forgotUrl: '/forgot-password',
    upstream: [{ id: 'google', name: 'Google', url: '/interaction/u1/upstream/google' }, { id: 'demo-id', name: 'Demo ID', url: '/interaction/u1/upstream/demo-id' }],
  }),
  sample('upstream_register', {
    csrfToken: 'tok', action: '/interaction/u1/upstream/register', provider: 'Demo ID', email: 'ada@demo-id.test', name: 'Ada Lovelace',
    errors: { terms: 'Tick each box to accept the documents.' }, loginUrl: '/interaction/u1', askBirthdate: true,
    terms: [{ id: 'tos', title: 'Terms of service', url: 'https://example.com/terms', checked: false }],
  }),
  sample('upstream_link', {
    csrfToken: 'tok', provider: 'Google', email: 'ana@example.com', error: 'The email or password is incorrect.',
    passwordAction: '/interaction/u1/upstream/link', codeAction: '/interaction/u1/upstream/code', loginUrl: '/interaction/u1',
  }),
  sample('upstream_link', { csrfToken: 'tok', provider: 'Google', email: 'ana@example.com', codeAction: '/interaction/u1/upstream/code', codeSent: true, loginUrl: '/interaction/u1' }),
  sample('upstream_verify', { csrfToken: 'tok', provider: 'Microsoft', action: '/interaction/u1/upstream/code', email: 'ana@example.com', loginUrl: '/interaction/u1' }),
  sample('upstream_verify', {
    csrfToken: 'tok', provider: 'Microsoft', action: '/interaction/u1/upstream/code', email: 'ana@example.com', codeSent: true, error: 'That code is not right.', loginUrl: '/interaction/u1',
  }),
  sample('account_password', {
    csrfToken: 'tok', action: '/account/identities/password', cancelUrl: '/account#identities', email: 'ana@example.com',
    passwordMinLength: 12, needsRecentSignIn: false, reauthUrl: '/account/login?reauth=1', error: 'Use at least 12 characters.',
  }),
  sample('account_password', {
    csrfToken: 'tok', action: '/account/identities/password', cancelUrl: '/account#identities', email: 'ana@example.com',
    passwordMinLength: 12, needsRecentSignIn: true, reauthUrl: '/account/login?reauth=1',
  }),
  sample('too_young', { minimumAge: 16, clientName: 'Web App' }),
  sample('terms', {
    csrfToken: 'tok', action: '/interaction/u1/terms', declineAction: '/interaction/u1/terms/decline', clientName: 'Web App', errors: {},
    documents: [{ id: 'tos', title: 'Terms of service', url: 'https://example.com/terms', checked: false }],
  }),
  sample('terms', {
    csrfToken: 'tok', action: '/interaction/u1/terms', declineAction: '/interaction/u1/terms/decline', clientName: 'Web App',
    errors: { terms: 'Tick each box to accept the documents.' },
    documents: [
      { id: 'tos', title: 'Terms of service', url: 'https://example.com/terms', checked: true },
      { id: 'privacy', title: 'Privacy policy', url: 'https://example.com/privacy', checked: false },
    ],
  }),
  sample('terms_declined', { clientName: 'Web App', returnUrl: '/auth/u1', accountUrl: '/account' }),
  sample('second_factor', {
    csrfToken: 'tok', clientName: 'Web App', abortAction: '/interaction/u1/abort',
    totp: { action: '/interaction/u1/mfa/totp' }, recovery: { action: '/interaction/u1/mfa/recovery', open: false },
    passkey: { action: '/interaction/u1/passkey', optionsAction: '/interaction/u1/passkey/options' },
  }),
  sample('second_factor', {
    csrfToken: 'tok', clientName: 'Web App', abortAction: '/interaction/u1/abort',
    recovery: { action: '/interaction/u1/mfa/recovery', open: true, error: 'That code is not right.' },
  }),
  sample('second_factor', {
    csrfToken: 'tok', clientName: 'Web App', abortAction: '/interaction/u1/abort',
    passkey: { action: '/interaction/u1/passkey', optionsAction: '/interaction/u1/passkey/options', error: 'That passkey did not work.' },
  }),
  sample('login', {
    csrfToken: 'tok', action: '/interaction/u1/login', registerUrl: '/interaction/u1/register', forgotUrl: '/forgot-password',
    passkey: { action: '/interaction/u1/passkey', optionsAction: '/interaction/u1/passkey/options' },
  }),
  sample('second_factor_enrol', { csrfToken: 'tok', clientName: 'Web App', totpAction: '/interaction/u1/mfa/enrol', abortAction: '/interaction/u1/abort' }),
  sample('second_factor_enrol', {
    csrfToken: 'tok', clientName: 'Web App', abortAction: '/interaction/u1/abort', error: 'This passkey could not be verified.',
    passkey: { action: '/interaction/u1/passkey/register', optionsAction: '/interaction/u1/passkey/register/options' },
  }),
  sample('second_factor_qr', {
    csrfToken: 'tok', action: '/interaction/u1/mfa/enrol/confirm', restartAction: '/interaction/u1/mfa/enrol',
    qrImage: 'data:image/svg+xml;base64,PHN2Zy8+', secret: 'JBSWY3DPEHPK3PXP',
  }),
  sample('second_factor_qr', { csrfToken: 'tok', action: '/interaction/u1/mfa/enrol/confirm', restartAction: '/interaction/u1/mfa/enrol', error: 'That code is not right.' }),
  sample('account_security', {
    csrfToken: 'tok', backUrl: '/account', needsRecentSignIn: false, reauthUrl: '/account/login?reauth=1', notice: 'Your password was saved.',
    password: { has: true, action: '/account/security/password', minLength: 12 },
    totp: { enrolled: true, beginAction: '/account/security/totp', removeAction: '/account/security/totp/remove' },
    recoveryCodes: { remaining: 3, action: '/account/security/recovery-codes' },
    sessions: {
      signOutAction: '/account/security/sessions/sign-out', signOutOthersAction: '/account/security/sessions/sign-out-others',
      items: [
        { index: 0, uid: 'u-1', device: 'Chrome on Linux', place: '203.0.113.0/24', firstSeen: '1 May 2026', lastSeen: '2 May 2026', current: true },
        { index: 1, uid: 'u-2', device: 'Safari on iOS', place: '2001:db8:1::/48', firstSeen: '1 May 2026', lastSeen: '1 May 2026', current: false },
      ],
    },
    passkeys: {
      add: { action: '/account/security/passkeys', optionsAction: '/account/security/passkeys/options' },
      items: [
        { index: 0, name: 'Phone', created: '1 May 2026', lastUsed: 'Not yet', kind: 'Synced', renameAction: '/a/rename', removeAction: '/a/remove' },
        { index: 1, name: 'Key', created: '2 May 2026', lastUsed: '3 May 2026', kind: 'Device', renameAction: '/b/rename' },
      ],
    },
  }),
  sample('account_security', {
    csrfToken: 'tok', backUrl: '/account', needsRecentSignIn: true, reauthUrl: '/account/login?reauth=1', error: 'Sign in again.',
    password: { has: false, action: '/account/security/password', minLength: 12, error: 'Too short.' },
    totp: { enrolled: false, beginAction: '/account/security/totp', removeAction: '/account/security/totp/remove' },
    sessions: { signOutAction: '/account/security/sessions/sign-out', items: [{ index: 0, uid: 'u-1', device: 'Unknown device', current: true }] },
    passkeys: { items: [] },
  }),
  sample('passkey_offer', {
    csrfToken: 'tok', clientName: 'Web App', skipAction: '/interaction/u1/passkey/offer/skip',
    passkey: { action: '/interaction/u1/passkey/register', optionsAction: '/interaction/u1/passkey/register/options' },
  }),
  sample('email_code', {
    csrfToken: 'tok', action: '/interaction/u1/email-code/verify', resendAction: '/interaction/u1/email-code', email: 'ana@example.com', loginUrl: '/interaction/u1',
  }),
  sample('email_code', {
    csrfToken: 'tok', action: '/interaction/u1/email-code/verify', resendAction: '/interaction/u1/email-code', email: 'ana@example.com', loginUrl: '/interaction/u1',
    error: 'That code is not right.',
  }),
  sample('recovery_codes', { codes: ['abcde-12345', 'fghjk-67890'], continueUrl: '/auth/u1' }),
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
  sample('profile', PROFILE_BLANK),
  sample('profile', PROFILE_ANSWERED),
  sample('profile', { ...PROFILE_BLANK, preview: true }),
  sample('profile', PROFILE_CONSENTS),
  sample('profile', PROFILE_CONSENT_ERROR),
  sample('profile', { ...PROFILE_RECONSENT, consents: PROFILE_CONSENTS.consents! }),
  sample('account', ACCOUNT_FULL),
  sample('account', ACCOUNT_EMPTY),
  sample('account', { ...ACCOUNT_FULL, terms: ACCOUNT_TERMS }),
  sample('account_edit_answer', EDIT_ANSWER),
  sample('account_edit_answer', {
    ...EDIT_ANSWER, error: 'Some answers need your attention. Nothing has been saved yet.',
    question: {
      id: 'cups', name: 'answer.cups', type: 'number', label: 'Cups a day', required: true, value: 'many', error: 'Enter a number.',
      reasked: false, declined: false,
    },
  }),
  sample('account_delete', ACCOUNT_DELETE),
  sample('account_delete', { ...ACCOUNT_DELETE, error: 'Tick the box to confirm.' }),
  sample('account_delete', { ...ACCOUNT_DELETE, needsRecentSignIn: true }),
  sample('stats', {
    rangeLabel: '1 May 2026 – 30 May 2026',
    ranges: [{ label: 'Last 7 days', url: '/stats?days=7', current: false }, { label: 'Last 30 days', url: '/stats?days=30', current: true }],
    screensets: [{
      id: 'coffee', title: 'Your coffee', retired: false,
      questions: [{
        id: 'brew_method', label: 'How do you make coffee at home?',
        totals: { shown: '120', answered: '90', skipped: '20', declined: '10', answerRate: '75%' },
        chart: {
          width: 300, height: 100, baseline: 90, description: 'Shown and answered per day',
          days: [{ x: 0, width: 8, shownY: 10, shownHeight: 80, answeredY: 30, answeredHeight: 60, title: '1 May: 12 shown, 9 answered' }],
        },
        distribution: [{ label: 'Espresso machine', count: 50, countText: '50' }, { label: 'Moka pot', count: 40, countText: '40' }],
        distributionMax: 50,
        days: [{ date: '1 May', shown: '12', answered: '9', skipped: '2', declined: '1', answerRate: '75%' }],
      }, {
        id: 'nickname', label: 'What should we call you?',
        totals: { shown: '0', answered: '0', skipped: '0', declined: '0', answerRate: '–' },
        chart: { width: 300, height: 100, baseline: 90, description: 'Shown and answered per day', days: [] },
        distributionNote: 'Free-text answers are not aggregated.',
        days: [],
      }],
    }, { id: 'old-set', title: 'old-set', retired: true, questions: [] }],
  }),
  sample('account_email', { csrfToken: 'tok', action: '/account/email', cancelUrl: '/account', email: 'ana@example.com', sent: false, needsRecentSignIn: false, reauthUrl: '/account/login?reauth=1' }),
  sample('account_email', {
    csrfToken: 'tok', action: '/account/email', cancelUrl: '/account', email: 'ana@example.com', newEmail: 'ana@', error: 'Enter an email address like name@example.com.',
    sent: false, needsRecentSignIn: false, reauthUrl: '/account/login?reauth=1',
  }),
  sample('account_email', { csrfToken: 'tok', action: '/account/email', cancelUrl: '/account', email: 'ana@example.com', sent: false, needsRecentSignIn: true, reauthUrl: '/account/login?reauth=1' }),
  sample('account_email', { csrfToken: 'tok', action: '/account/email', cancelUrl: '/account', email: 'ana@example.com', sent: true, needsRecentSignIn: false, reauthUrl: '/account/login?reauth=1' }),
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
  return renderer.render(s.page, locale, s.data as never, { localeSwitch: LOCALE_SWITCH });
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
        expect(html).toContain(`<html lang="${locale}" dir="${DIRECTION[locale]}">`);
        expect(html).toContain('<meta charset="utf-8">');
        expect(html).toContain('<meta name="viewport" content="width=device-width, initial-scale=1">');
        expect(html).toContain('<link rel="stylesheet" href="/assets/parley.css">');
        expect(html).toMatch(/<title>[^<]+<\/title>/);
        expect(html.match(/<main\b/g)).toHaveLength(1);
        expect(html.match(/<h1>[^<]+<\/h1>/g)).toHaveLength(1);

        // A strict CSP allows neither inline styles nor inline scripts: a script is one of our own files.
        expect(html).not.toMatch(/\sstyle\s*=/i);
        for (const [tag] of html.matchAll(/<script\b[^>]*>[^<]*<\/script>/gi)) expect(tag).toMatch(/^<script src="\/assets\/(webauthn|passkeys)\.js" defer><\/script>$/);
        expect(html.match(/<script/gi)?.length ?? 0).toBe(html.match(/<script src="\/assets\//g)?.length ?? 0);

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

  it('knows the direction of every locale', () => {
    for (const locale of LOCALES) {
      expect(DIRECTION[locale], `${locale}: add it to DIRECTION`).toBeDefined();
      expect(direction(locale), locale).toBe(DIRECTION[locale]);
    }
  });

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

  it('escapes an answer, whatever the person typed', () => {
    const html = renderer.render('account', 'en', {
      ...ACCOUNT_FULL, answers: [{ ...ACCOUNT_ANSWER, value: '<script>alert(1)</script>' }],
    });
    expect(html).not.toContain('<script');
    expect(html).toContain('<p class="answer__value" dir="auto">&lt;script&gt;alert(1)&lt;/script&gt;</p>');
  });

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
      renderer.render('profile', locale, {
        csrfToken: 't', action: '/p', skipAction: '/s', title: evil, clientName: evil, error: evil,
        questions: [
          {
            id: 'q1', name: evil, type: 'single_choice', label: evil, help: evil, reward: evil, required: false, error: evil,
            options: [{ value: evil, label: evil, checked: true }], reasked: true, declined: false,
          },
          {
            id: 'q2', name: 'a', type: 'scale', label: 'l', required: false, minLabel: evil, maxLabel: evil,
            options: [{ value: '1', label: '1', checked: false }, { value: '2', label: '2', checked: false }], reasked: false, declined: false,
          },
          { id: 'q3', name: 'b', type: 'text', label: 'l', required: false, value: evil, pattern: evil, reasked: false, declined: false },
          { id: 'q4', name: 'c', type: 'number', label: 'l', required: false, value: evil, min: evil, max: evil, step: evil, reasked: false, declined: false },
        ],
        consents: [{ purpose: 'p', title: evil, description: evil, checked: false, error: evil }],
      }),
      renderer.render('account', locale, {
        csrfToken: evil, email: evil, name: evil, notice: evil, error: evil,
        answers: [{ questionId: 'q', label: evil, value: evil, purposeTitle: evil, appName: evil, answeredAt: evil, editUrl: evil, deleteAction: evil }],
        consents: [
          { purpose: 'p', title: evil, description: evil, legalBasis: evil, changeable: true, state: 'granted', version: 1, changedAt: evil, action: evil, answerCount: 2 },
          { purpose: 'r', title: evil, description: evil, legalBasis: evil, changeable: true, state: 'withdrawn', version: 1, changedAt: evil, action: evil, answerCount: 0 },
        ],
        communication: {
          action: evil, channels: [{ id: 'email', label: evil }],
          topics: [{ id: 't', title: evil, toggles: [{ channel: 'email', value: evil, checked: true }] }],
        },
        apps: [{ clientId: evil, name: evil, receives: [evil], revokeAction: evil }],
        exportUrl: evil, deleteUrl: evil, emailUrl: evil, signOutUrl: evil,
      }),
      renderer.render('account_edit_answer', locale, {
        csrfToken: evil, action: evil, cancelUrl: evil, purposeTitle: evil, error: evil,
        question: { id: 'q', name: evil, type: 'text', label: evil, required: false, value: evil, reasked: false, declined: false },
      }),
      renderer.render('account_delete', locale, { csrfToken: evil, action: evil, cancelUrl: evil, email: evil, needsRecentSignIn: false, reauthUrl: evil, error: evil }),
      renderer.render('account_delete', locale, { csrfToken: 't', action: '/d', cancelUrl: evil, email: evil, needsRecentSignIn: true, reauthUrl: evil }),
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

describe('profile page', () => {
  const html = renderer.render('profile', 'en', PROFILE_ANSWERED);
  const input = (id: string) => {
    const tag = new RegExp(`<input\\b[^>]*\\sid="${id}"[^>]*>`).exec(html)?.[0];
    expect(tag, id).toBeDefined();
    return tag!;
  };
  const fieldset = (id: string) => {
    const match = new RegExp(`<fieldset\\b[^>]*>(?:(?!</fieldset>)[\\s\\S])*?\\sid="q-${id}--decline"[\\s\\S]*?</fieldset>`).exec(html)?.[0];
    expect(match, id).toBeDefined();
    return match!;
  };

  it('is titled by the screen-set, and says an error in the document title', () => {
    expect(html).toContain('<h1>A little about you</h1>');
    expect(html).toContain('<title>Error: \u2068A little about you\u2069 · Parley</title>');
    expect(renderer.render('profile', 'en', PROFILE_BLANK)).toContain('<title>\u2068A little about you\u2069 · Parley</title>');
    expect(html).toContain('\u2068Demo Shop\u2069 would like to get to know you a little better.');
    expect(/role="alert"[^>]*>([^<]*)</.exec(html)?.[1]).toBe('Some answers need your attention. Nothing has been saved yet.');
  });

  it('renders radios for single choice, boolean and scale, and checkboxes for multi choice', () => {
    for (const [id, value] of [['brew_method', 'espresso'], ['brew_method', 'filter'], ['oat_milk', 'true'], ['oat_milk', 'false'], ['recommend', '3']] as const) {
      const tag = input(`q-${id}-${value}`);
      expect(attribute(tag, 'type')).toBe('radio');
      expect(attribute(tag, 'name')).toBe(`answer.${id}`);
      expect(attribute(tag, 'value')).toBe(value);
    }
    for (const value of ['nutty', 'fruity']) {
      expect(attribute(input(`q-flavours-${value}`), 'type')).toBe('checkbox');
      expect(attribute(input(`q-flavours-${value}`), 'name')).toBe('answer.flavours');
    }
    expect(html.match(/<input\b[^>]*name="answer\.recommend"/g)).toHaveLength(5);
  });

  it('checks exactly the options the data selects', () => {
    const checked = [...html.matchAll(/<input\b[^>]*\sid="([^"]+)"[^>]*\schecked\b/g)].map((m) => m[1]);
    expect(checked.sort()).toEqual(['q-brew_method-filter', 'q-flavours-fruity', 'q-flavours-nutty', 'q-nickname--decline', 'q-oat_milk-false', 'q-recommend-4']);
    const blank = renderer.render('profile', 'en', PROFILE_BLANK);
    expect(blank).not.toMatch(/\schecked\b/);
  });

  it('gives date, number and text inputs their attributes', () => {
    expect(input('q-birthday')).toBe('<input type="date" id="q-birthday" name="answer.birthday" value="1990-02-30" min="1900-01-01" max="2008-05-01" aria-invalid="true" aria-describedby="q-birthday--error q-birthday--notes">');
    expect(input('q-cups')).toBe('<input type="number" inputmode="decimal" id="q-cups" name="answer.cups" value="2.5" min="0" max="20" step="0.5" aria-required="true" aria-describedby="q-cups--notes">');
    expect(input('q-nickname')).toBe('<input type="text" dir="auto" id="q-nickname" name="answer.nickname" value="Ana" maxlength="40" pattern="[\\p{L} ]+">');
    const blank = renderer.render('profile', 'en', PROFILE_BLANK);
    expect(blank).toContain('<input type="number" inputmode="decimal" id="q-cups" name="answer.cups" step="any">');
    expect(blank).toContain('<input type="date" id="q-birthday" name="answer.birthday">');
  });

  // Required is announced, not enforced by the browser: ticking "Don't ask me again" on a required
  // question must still submit; the server checks what is required.
  it('marks required questions for people and screen readers, and leaves enforcing to the server', () => {
    expect(fieldset('brew_method')).toContain('<legend class="question__label">How do you brew at home? <span class="question__required">(required)</span></legend>');
    expect(attribute(input('q-brew_method-espresso'), 'id')).toBe('q-brew_method-espresso');
    expect(input('q-brew_method-espresso')).toContain('aria-required="true"');
    expect(input('q-oat_milk-true')).toContain('aria-required="true"');
    expect(fieldset('brew_method')).not.toMatch(/\srequired\b/);
    expect(fieldset('flavours')).not.toContain('(required)');
    expect(fieldset('flavours')).not.toContain('aria-required');
    expect(fieldset('cups')).toContain('<label class="question__label" id="q-cups--label" for="q-cups">Cups a day <span class="question__required">(required)</span></label>');
  });

  it('ties each error to its question, with an "Error:" prefix', () => {
    const flavours = fieldset('flavours');
    expect(flavours).toMatch(/^<fieldset class="question question--multi_choice question--invalid" aria-describedby="q-flavours--error">/);
    expect(flavours).toContain('<p class="field__error" id="q-flavours--error"><span class="field__error-prefix">Error:</span> Choose at most 1 option.</p>');
    expect(input('q-flavours-nutty')).toContain('aria-invalid="true"');
    expect(fieldset('recommend')).toMatch(/^<fieldset[^>]* aria-describedby="q-recommend--error">/);
    expect(fieldset('brew_method')).toMatch(/^<fieldset class="question question--single_choice" aria-describedby="q-brew_method--notes">/);
    expect(fieldset('brew_method')).not.toContain('aria-invalid');
    expect(fieldset('nickname')).not.toContain('aria-describedby');
  });

  it('shows help, reward and the re-ask note as the question\'s description', () => {
    const brew = fieldset('brew_method');
    expect(brew).toContain('<p class="question__help">Pick the one you use most.</p>');
    expect(brew).toContain('<p class="question__reward">Earn 50 points</p>');
    expect(brew).toContain('<p class="question__reasked">You told us this before. Is it still right?</p>');
    expect(fieldset('cups')).toContain('question__reasked');
    expect(fieldset('birthday')).not.toContain('question__reasked');
  });

  it('names the ends of a scale and describes the first and last point by them', () => {
    expect(html).toContain('<span class="scale__end scale__end--min" id="q-recommend--min">Not at all likely</span>');
    expect(html).toContain('<span class="scale__end scale__end--max" id="q-recommend--max">Extremely likely</span>');
    expect(attribute(input('q-recommend-1'), 'aria-describedby')).toBe('q-recommend--min');
    expect(attribute(input('q-recommend-5'), 'aria-describedby')).toBe('q-recommend--max');
    expect(attribute(input('q-recommend-3'), 'aria-describedby')).toBeUndefined();
  });

  it('offers "Don\'t ask me again" inside each question, ticked when declined', () => {
    for (const q of PROFILE_ANSWERED.questions) {
      const tag = input(`q-${q.id}--decline`);
      expect(fieldset(q.id)).toContain(tag);
      expect(attribute(tag, 'type')).toBe('checkbox');
      expect(attribute(tag, 'name')).toBe('decline');
      expect(attribute(tag, 'value')).toBe(q.id);
      expect(/\schecked\b/.test(tag), q.id).toBe(q.declined);
    }
    expect(html).toContain('<label for="q-nickname--decline">Don&#x27;t ask me again</label>');
  });

  it('saves on Enter: Save is the first submit button, and Not now skips the browser\'s checks', () => {
    const buttons = [...html.matchAll(/<button\b[^>]*>[^<]*<\/button>/g)].map((m) => m[0]);
    expect(buttons).toEqual([
      '<button type="submit" class="button">Save</button>',
      '<button type="submit" class="button button--secondary" formaction="/interaction/u1/profile/skip" formnovalidate>Not now</button>',
    ]);
    expect(html).toContain('<form method="post" action="/interaction/u1/profile" class="questions">');
  });

  it('says when it is a preview, and still shows the form', () => {
    expect(html).not.toContain('preview-banner');
    const preview = renderer.render('profile', 'en', { ...PROFILE_BLANK, preview: true });
    expect(preview).toContain('<p class="preview-banner">Preview: this is how people will see this screen.');
    expect(preview).toContain('<form method="post"');
  });

  it('is right to left in Arabic, with the texts translated', () => {
    const ar = renderer.render('profile', 'ar', PROFILE_ANSWERED);
    expect(ar).toContain('<html lang="ar" dir="rtl">');
    expect(ar).toContain('<span class="question__required">(مطلوب)</span>');
    expect(ar).toContain('>حفظ</button>');
    expect(ar).toContain('>لا تسألني عن هذا مرة أخرى</label>');
    // The user's own text keeps its own direction.
    expect(ar).toContain('<input type="text" dir="auto" id="q-nickname"');
  });
});

// The forms of a page: their opening tag and their body.
const formsOf = (html: string) => [...html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/g)].map((m) => ({ tag: m[1]!, body: m[2]! }));
const formTo = (html: string, action: string) => {
  const found = formsOf(html).filter((f) => attribute(f.tag, 'action') === action);
  expect(found, action).toHaveLength(1);
  expect(attribute(found[0]!.tag, 'method')).toBe('post');
  expect(found[0]!.body).toContain('<input type="hidden" name="csrf" value="tok">');
  return found[0]!.body;
};
const inputTag = (html: string, id: string) => {
  const tag = new RegExp(`<input\\b[^>]*\\sid="${id.replace(/[.:]/g, '\\$&')}"[^>]*>`).exec(html)?.[0];
  expect(tag, id).toBeDefined();
  return tag!;
};
const isChecked = (tag: string) => /\schecked\b/.test(tag);
const submitButtons = (body: string) => [...body.matchAll(/<button\b[^>]*>[^<]*<\/button>/g)].map((m) => m[0]);

describe('profile page with consents', () => {
  const html = renderer.render('profile', 'en', PROFILE_CONSENTS);
  const form = formTo(html, '/interaction/u1/profile');

  it('asks for each purpose in its own fieldset, inside the form and before the buttons', () => {
    expect(form.indexOf('consent-request')).toBeGreaterThan(form.indexOf('q-nickname'));
    expect(form.indexOf('consent-request')).toBeLessThan(form.indexOf('<div class="actions">'));
    expect(html.match(/<fieldset class="consent-request">/g)).toHaveLength(2);
    expect(html).toContain('<legend class="consent-request__title"><strong>Personal recommendations</strong></legend>');
    expect(html).toContain('<p class="consent-request__description" id="consent-recommendations--description">We suggest coffees that suit your taste.</p>');
    expect(html).toContain('<label for="consent-recommendations">I agree that my answers are used for: \u2068Personal recommendations\u2069</label>');
  });

  it('has one unticked box per purpose unless the data ticks it', () => {
    const recs = inputTag(html, 'consent-recommendations');
    expect(recs).toBe('<input type="checkbox" id="consent-recommendations" name="consent" value="recommendations" aria-describedby="consent-recommendations--description">');
    const news = inputTag(html, 'consent-newsletter');
    expect(attribute(news, 'name')).toBe('consent');
    expect(attribute(news, 'value')).toBe('newsletter');
    expect(isChecked(news)).toBe(true);
    expect(renderer.render('profile', 'en', PROFILE_BLANK)).not.toContain('consent-request');
    expect(renderer.render('profile', 'en', { ...PROFILE_BLANK, consents: [] })).not.toContain('consent-request');
  });

  it('ties its error to the box, with an "Error:" prefix', () => {
    const invalid = renderer.render('profile', 'en', PROFILE_CONSENT_ERROR);
    expect(invalid).toContain('<fieldset class="consent-request consent-request--invalid">');
    expect(invalid).toContain('<p class="field__error" id="consent-recommendations--error"><span class="field__error-prefix">Error:</span> To save these answers, tick the box — or leave the questions blank.</p>');
    const box = inputTag(invalid, 'consent-recommendations');
    expect(attribute(box, 'aria-invalid')).toBe('true');
    expect(attribute(box, 'aria-describedby')).toBe('consent-recommendations--error consent-recommendations--description');
    expect(isChecked(box)).toBe(false);
    expect(html).not.toContain('aria-invalid');
  });
});

describe('re-consent screen', () => {
  it('says why it asks again, and has only the consent boxes', () => {
    const html = renderer.render('profile', 'en', PROFILE_RECONSENT);
    expect(html).toContain('We have changed how we describe what your answers are used for. To keep sharing them with \u2068Demo Shop\u2069');
    expect(html).not.toContain('would like to get to know you');
    expect(html).not.toContain('<fieldset class="question');
    const body = formTo(html, '/interaction/u1/profile');
    expect(inputTag(body, 'consent-offers')).toContain('name="consent" value="offers"');
    expect(renderer.render('profile', 'en', PROFILE_CONSENTS)).not.toContain('We have changed how we describe');
  });
});

describe('account page', () => {
  const html = renderer.render('account', 'en', ACCOUNT_FULL);
  const empty = renderer.render('account', 'en', ACCOUNT_EMPTY);

  it('is titled, says who is signed in, and shows the notice as a status and an error as an alert', () => {
    expect(html).toContain('<h1>Your data and privacy</h1>');
    expect(html).toContain('<title>\u2068Your data and privacy\u2069 · Parley</title>');
    expect(html).toContain('Signed in as \u2068ana@example.com\u2069');
    expect(html).toContain('>Ana</p>');
    expect(html).toContain('<a href="/account/sign-out">Sign out</a>');
    expect(/role="status"[^>]*>([^<]*)</.exec(html)?.[1]).toBe('Your answer was deleted.');
    expect(html).not.toContain('role="alert"');
    expect(/role="alert"[^>]*>([^<]*)</.exec(empty)?.[1]).toBe('This form expired or was sent from another site. Please try again.');
    expect(empty).not.toContain('role="status"');
    expect(empty).toContain('<title>Error: \u2068Your data and privacy\u2069 · Parley</title>');
  });

  it('has a heading and an anchor for each section, linked from the top', () => {
    for (const [id, heading] of [['answers', 'What you told us'], ['consents', 'Consents'], ['communication', 'Communication'], ['apps', 'Connected apps'], ['data', 'Your data']]) {
      expect(html).toContain(`<h2 id="${id}">${heading}</h2>`);
      expect(html).toContain(`<a href="#${id}">${heading}</a>`);
    }
  });

  it('lists each answer with its purpose, app and date, a change link when there is one, and its own delete form', () => {
    expect(html).toContain('<p class="answer__question" id="answer-brew_method">How do you brew at home?</p>');
    expect(html).toContain('<p class="answer__value" dir="auto">Filter</p>');
    expect(html).toContain('<dd>Personal recommendations</dd>');
    expect(html).toContain('<dd>Demo Shop</dd>');
    expect(html).toContain('<dd>3 May 2026</dd>');
    expect(html).toContain('<a class="button button--small button--secondary" href="/account/answers/brew_method" aria-describedby="answer-brew_method">Change</a>');
    // No edit link for a question no longer asked, and no app line without an app.
    expect(html).not.toContain('href="/account/answers/birthday"');
    expect(html.match(/<dt>Given in<\/dt>/g)).toHaveLength(1);
    for (const id of ['brew_method', 'birthday']) {
      const body = formTo(html, `/account/answers/${id}/delete`);
      expect(submitButtons(body)).toEqual([`<button type="submit" class="button button--small button--danger-quiet" aria-describedby="answer-${id}">Delete</button>`]);
    }
    expect(empty).toContain('You have not answered any questions yet.');
    expect(empty).not.toContain('class="answers"');
  });

  it('says each consent\'s state and legal basis in words', () => {
    expect(html).toContain('Given since \u20681 May 2026\u2069');
    expect(html).toContain('<p class="consent__state consent__state--granted">Given</p>');
    expect(html).toContain('Withdrawn on \u20682 April 2026\u2069');
    expect(html).toContain('<p class="consent__state">Withdrawn</p>');
    expect(html).toContain('<p class="consent__state">Not given</p>');
    expect(html).toContain('Given to an earlier version — renew to keep sharing');
    expect(html).toContain('<dd>Needed for our contract with you</dd>');
    expect(html).toContain('<h3 id="consent-recommendations">Purpose recommendations</h3>');
    expect(html).toContain('<p class="consent__description">What recommendations is for.</p>');
    expect(html).toContain('<dd>3</dd>');
    expect(empty).toContain('There are no uses of your data to show here.');
  });

  it('offers grant, renew or withdraw as fits the state, each in a form with the token', () => {
    const button = (purpose: string) => submitButtons(formTo(html, `/account/consents/${purpose}`));
    const withdraw = (p: string) => `<button type="submit" class="button button--small button--secondary" name="action" value="withdraw" aria-describedby="consent-${p}">Withdraw consent</button>`;
    const grant = (p: string, label: string) => `<button type="submit" class="button button--small" name="action" value="grant" aria-describedby="consent-${p}">${label}</button>`;
    expect(button('recommendations')).toEqual([withdraw('recommendations')]);
    expect(button('newsletter')).toEqual([withdraw('newsletter')]);
    expect(button('surveys')).toEqual([grant('surveys', 'Give consent')]);
    expect(button('partners')).toEqual([grant('partners', 'Give consent')]);
    expect(button('research')).toEqual([grant('research', 'Give consent')]);
    expect(button('offers')).toEqual([grant('offers', 'Renew consent')]);
  });

  it('offers to delete the answers under a purpose only when there are some', () => {
    const box = inputTag(html, 'consent-recommendations--delete-answers');
    expect(box).toBe('<input type="checkbox" id="consent-recommendations--delete-answers" name="delete_answers" value="yes">');
    expect(formTo(html, '/account/consents/recommendations')).toContain(box);
    expect(html).toContain('<label for="consent-recommendations--delete-answers">Also delete the 3 answers I gave for this purpose</label>');
    expect(formTo(html, '/account/consents/newsletter')).not.toContain('delete_answers');
    // Only granted consents can be withdrawn, so only they offer it.
    expect(html.match(/name="delete_answers"/g)).toHaveLength(1);
    expect(translate('en', 'account.consent.delete_answers', { count: 1 })).toBe('Also delete the answer I gave for this purpose');
    expect(translate('ar', 'account.consent.delete_answers', { count: 2 })).toBe('احذف أيضًا الإجابتين اللتين قدّمتهما لهذا الغرض');
    expect(translate('ja', 'account.consent.delete_answers', { count: 4 })).toContain('4件');
  });

  it('has no form for purposes that do not rest on consent', () => {
    expect(formsOf(html).filter((f) => attribute(f.tag, 'action') === '/account/consents/billing')).toHaveLength(0);
    expect(formsOf(html).filter((f) => attribute(f.tag, 'action') === '/account/consents/fraud')).toHaveLength(0);
    expect(html.match(/cannot be switched off here/g)).toHaveLength(2);
  });

  it('sets communication in one form: a table of labelled checkboxes, topics by channels', () => {
    const body = formTo(html, '/account/communication');
    expect(body).toContain('<caption>Messages we may send you</caption>');
    expect(body).toContain('<th scope="col">Email</th><th scope="col">Text message</th><th scope="col">Push notification</th>');
    expect(body).toContain('<th scope="row">Offers and discounts</th>');
    const boxes = [...body.matchAll(/<input type="checkbox"[^>]*>/g)].map((m) => m[0]);
    expect(boxes).toHaveLength(6);
    for (const topic of ACCOUNT_FULL.communication.topics) {
      for (const toggle of topic.toggles) {
        const tag = inputTag(body, `comm-${toggle.value}`);
        expect(attribute(tag, 'name')).toBe('comm');
        expect(attribute(tag, 'value')).toBe(toggle.value);
        expect(isChecked(tag), toggle.value).toBe(toggle.checked);
      }
    }
    expect(body).toContain('<label for="comm-sms:offers"><span class="visually-hidden">\u2068Offers and discounts\u2069 by \u2068Text message\u2069</span></label>');
    expect(body).toContain('<label for="comm-push:news"><span class="visually-hidden">\u2068News\u2069 by \u2068Push notification\u2069</span></label>');
    expect(submitButtons(body)).toEqual(['<button type="submit" class="button button--inline">Save communication preferences</button>']);
    expect(empty).not.toContain('<table');
    expect(empty).toContain('There are no messages to choose from.');
  });

  it('lists connected apps, what each receives, and a form to remove each one\'s access', () => {
    expect(html).toContain('<h3 id="app-0">Demo Shop</h3>');
    expect(html).toContain('<li>Personalized recommendations</li>');
    expect(submitButtons(formTo(html, '/account/apps/demo-shop/revoke'))).toEqual([
      '<button type="submit" class="button button--small button--secondary" aria-describedby="app-0">Remove access</button>',
    ]);
    expect(submitButtons(formTo(html, '/account/apps/2/revoke'))).toHaveLength(1);
    expect(empty).toContain('No apps have access to your account.');
    expect(empty).not.toContain('Remove access');
  });

  it('links to the download and to deleting the account', () => {
    expect(html).toContain('<a href="/account/export" download>Download my data (JSON)</a>');
    expect(html).toContain('<a class="link--danger" href="/account/delete">Delete my account</a>');
  });

  it('puts the token in every one of its forms, and only POSTs', () => {
    const forms = formsOf(html);
    // 2 answers, 6 changeable consents, communication, 2 apps.
    expect(forms).toHaveLength(11);
    for (const form of forms) {
      expect(attribute(form.tag, 'method')).toBe('post');
      expect(form.body).toContain('<input type="hidden" name="csrf" value="tok">');
    }
  });

  it('is right to left in Arabic, with the texts translated', () => {
    const ar = renderer.render('account', 'ar', ACCOUNT_FULL);
    expect(ar).toContain('<html lang="ar" dir="rtl">');
    expect(ar).toContain('<h1>بياناتك وخصوصيتك</h1>');
    expect(ar).toContain('>سحب الموافقة</button>');
    expect(ar).toContain('احذف أيضًا 3 إجابات قدّمتها لهذا الغرض');
    expect(ar).toContain('<p class="answer__value" dir="auto">Filter</p>');
    const ja = renderer.render('account', 'ja', ACCOUNT_FULL);
    expect(ja).toContain('<h1>データとプライバシー</h1>');
  });
});

describe('changing an answer', () => {
  const html = renderer.render('account_edit_answer', 'en', EDIT_ANSWER);

  it('shows the question with the question partial, without "Don\'t ask me again"', () => {
    expect(html).toContain('<h1>Change your answer</h1>');
    expect(html).toContain('This answer is used for: \u2068Personal recommendations\u2069');
    const body = formTo(html, '/account/answers/brew_method');
    expect(body).toContain('<legend class="question__label">How do you brew at home?</legend>');
    expect(isChecked(inputTag(body, 'q-brew_method-filter'))).toBe(true);
    expect(attribute(inputTag(body, 'q-brew_method-espresso'), 'name')).toBe('answer.brew_method');
    expect(html).not.toContain('decline');
    expect(html).not.toContain("Don't ask me again");
    expect(submitButtons(body)).toEqual(['<button type="submit" class="button">Save</button>']);
    expect(body).toContain('<a class="button button--secondary" href="/account#answers">Cancel</a>');
    // The question screen still offers it.
    expect(renderer.render('profile', 'en', PROFILE_BLANK)).toContain('name="decline"');
  });

  it('leaves out "Don\'t ask me again" when the data says so, on any page', () => {
    const fromData = renderer.render('profile', 'en', { ...PROFILE_BLANK, questions: PROFILE_BLANK.questions.map((q) => ({ ...q, hideDecline: true })) });
    expect(fromData).not.toContain('decline');
    const both = renderer.render('account_edit_answer', 'en', { ...EDIT_ANSWER, question: { ...EDIT_ANSWER.question, hideDecline: true } });
    expect(both).not.toContain('decline');
    expect(both).toContain('<legend class="question__label">How do you brew at home?</legend>');
  });

  it('shows the error above the form and beside the field', () => {
    const invalid = renderer.render('account_edit_answer', 'en', {
      ...EDIT_ANSWER, error: 'Some answers need your attention. Nothing has been saved yet.',
      question: { id: 'cups', name: 'answer.cups', type: 'number', label: 'Cups a day', required: true, value: 'many', error: 'Enter a number.', reasked: false, declined: false },
    });
    expect(/role="alert"[^>]*>([^<]*)</.exec(invalid)?.[1]).toBe('Some answers need your attention. Nothing has been saved yet.');
    expect(invalid).toContain('<title>Error: \u2068Change your answer\u2069 · Parley</title>');
    expect(inputTag(invalid, 'q-cups')).toContain('aria-invalid="true" aria-describedby="q-cups--error"');
    expect(invalid).not.toContain('decline');
  });
});

describe('deleting the account', () => {
  const html = renderer.render('account_delete', 'en', ACCOUNT_DELETE);
  const reauth = renderer.render('account_delete', 'en', { ...ACCOUNT_DELETE, needsRecentSignIn: true });

  it('says what is deleted, what is kept, and that it cannot be undone', () => {
    expect(html).toContain('<h1>Delete your account</h1>');
    expect(html).toContain('This deletes the account \u2068ana@example.com\u2069');
    for (const text of ['The answers you gave, and their history', 'Your communication preferences', 'Your sign-ins on every device', 'The access you gave to apps']) {
      expect(html).toContain(`<li>${text}</li>`);
    }
    expect(html).toContain('We keep the record of the consents you gave and withdrew');
    expect(html).toContain('This cannot be undone.');
    expect(reauth).toContain('This cannot be undone.');
  });

  it('asks for a ticked box and posts to the action', () => {
    const body = formTo(html, '/account/delete');
    expect(inputTag(body, 'confirm')).toBe('<input type="checkbox" id="confirm" name="confirm" value="yes" required>');
    expect(body).toContain('<label for="confirm">I understand my account and data will be deleted</label>');
    expect(submitButtons(body)).toEqual(['<button type="submit" class="button button--danger">Delete my account</button>']);
    expect(body).toContain('<a class="button button--secondary" href="/account">Cancel</a>');
    expect(html).not.toContain('/account/reauth');
  });

  it('ties a missing confirmation to the box', () => {
    const invalid = renderer.render('account_delete', 'en', { ...ACCOUNT_DELETE, error: 'Tick the box to confirm.' });
    expect(invalid).toContain('<p class="field__error" id="confirm-error"><span class="field__error-prefix">Error:</span> Tick the box to confirm.</p>');
    expect(inputTag(invalid, 'confirm')).toBe('<input type="checkbox" id="confirm" name="confirm" value="yes" required aria-invalid="true" aria-describedby="confirm-error">');
    expect(invalid).toContain('<title>Error: \u2068Delete your account\u2069 · Parley</title>');
  });

  it('sends someone who signed in long ago to sign in again first, without the form', () => {
    expect(reauth).not.toContain('<form');
    expect(reauth).not.toContain('name="confirm"');
    expect(reauth).toContain('For your security, please sign in again before you delete your account.');
    expect(reauth).toContain('<a class="button" href="/account/reauth">Sign in again</a>');
    expect(reauth).toContain('<a class="button button--secondary" href="/account">Cancel</a>');
  });

  it('is right to left in Arabic', () => {
    const ar = renderer.render('account_delete', 'ar', ACCOUNT_DELETE);
    expect(ar).toContain('<html lang="ar" dir="rtl">');
    expect(ar).toContain('>حذف حسابي</button>');
  });
});

describe('locale files', () => {
  /** Every argument a message uses, with how it is used ("count:plural", "email:argument"), nested ones included. */
  const argumentsOf = (elements: MessageFormatElement[]): string[] => elements.flatMap((element) => {
    if (element.type === TYPE.literal || element.type === TYPE.pound || element.type === TYPE.tag) return [];
    const kind = TYPE[element.type];
    const nested = element.type === TYPE.plural || element.type === TYPE.select
      ? Object.values(element.options).flatMap((option) => argumentsOf(option.value)) : [];
    return [`${element.value}:${kind === 'plural' || kind === 'number' ? 'number' : kind}`, ...nested];
  });
  const argumentNames = (text: string) => new Set(argumentsOf(parseMessage(text)).map((a) => a.split(':')[0]));
  // A plural argument and a plain one both take a number: a translation may spell a count either way.
  const argumentKinds = (text: string) => new Set(argumentsOf(parseMessage(text)).map((a) => a.replace(/:(argument|number)$/, ':value')));
  const pluralsOf = (elements: MessageFormatElement[]): { options: string[] }[] => elements.flatMap((element) => {
    if (element.type !== TYPE.plural && element.type !== TYPE.select) return [];
    const nested = Object.values(element.options).flatMap((option) => pluralsOf(option.value));
    return element.type === TYPE.plural && element.pluralType !== 'ordinal' ? [{ options: Object.keys(element.options) }, ...nested] : nested;
  });

  it('include the source locale, and every locale in the shipped configuration', () => {
    const shipped = readFileSync(path.join(import.meta.dirname, '../../config/default.yaml'), 'utf8');
    const supported = /^\s+supported: \[([^\]]*)\]/m.exec(shipped)![1]!.split(',').map((l) => l.trim());
    expect(supported).toContain('en');
    for (const locale of supported) expect(LOCALES).toContain(locale);
    expect(LOCALES).toEqual(expect.arrayContaining(['en', 'ar', 'ja', 'he', 'th']));
  });

  it.each(LOCALES)('%s: every message parses as ICU MessageFormat, with an `other` branch in every plural', (locale) => {
    for (const [key, text] of Object.entries(messages[locale]!)) {
      expect(() => parse(text, { ignoreTag: true, requiresOtherClause: true }), `${locale}: ${key}`).not.toThrow();
    }
  });

  it.each(LOCALES.filter((l) => l !== 'en'))('%s has exactly the keys of en, with the same arguments', (locale) => {
    const source = messages.en!;
    const target = messages[locale]!;
    expect(Object.keys(target).sort()).toEqual(Object.keys(source).sort());
    for (const [key, text] of Object.entries(source)) {
      expect(argumentNames(target[key]!), `${locale}: ${key}`).toEqual(argumentNames(text));
      expect(argumentKinds(target[key]!), `${locale}: ${key}`).toEqual(argumentKinds(text));
      expect(target[key]!.trim(), `${locale}: ${key}`).not.toBe('');
    }
  });

  it.each(LOCALES)('%s: every plural has a branch for each of the language\'s CLDR plural categories, and no other', (locale) => {
    const categories = new Intl.PluralRules(locale).resolvedOptions().pluralCategories as string[];
    for (const [key, text] of Object.entries(messages[locale]!)) {
      for (const plural of pluralsOf(parseMessage(text))) {
        const named = plural.options.filter((o) => !o.startsWith('='));
        // Hebrew: one, two, other (CLDR dropped "many" for Hebrew in version 42); Arabic all six; Thai and Japanese only other.
        expect(new Set(named), `${locale}: ${key}`).toEqual(new Set(categories));
      }
    }
  });

  it('keeps the files in the same key order as en, so merges and reviews line up', () => {
    for (const locale of LOCALES) expect(Object.keys(messages[locale]!), locale).toEqual(Object.keys(messages.en!));
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
      // The messages of error codes are checked from the codes themselves (error-table.test.ts).
      'error.https_required',
      ...['login', 'register', 'consent', 'logout', 'logged_out', 'verify_email', 'forgot_password', 'reset_password', 'error',
        'check_email', 'demo'].map((p) => `title.${p}`),
      'verify.ok', 'verify.failed', 'reset.done', 'demo.failed',
      'profile.yes', 'profile.no', 'profile.form_error', 'profile.consent_required',
      ...['account', 'account_edit_answer', 'account_delete'].map((p) => `title.${p}`),
      ...['answer_saved', 'answer_deleted', 'consent_granted', 'consent_withdrawn', 'communication_saved', 'app_revoked'].map((n) => `account.notice.${n}`),
      'account.error.confirm_required', 'account.deleted', 'profile.reconsent_title',
      ...['consent', 'contract', 'legitimate_interest', 'legal_obligation', 'public_interest', 'vital_interest'].map((b) => `legal_basis.${b}`),
      ...['email', 'sms', 'push'].map((c) => `channel.${c}`),
    ];
    for (const locale of LOCALES) {
      for (const key of keys) expect(Object.keys(messages[locale]!), `${locale}: ${key}`).toContain(key);
    }
  });
});

// Typed by the engine's own union, so a new error code fails to compile here until it has a message.
// Counts of 3 and more, because Arabic spells out one and two ("خيارين") instead of showing the number.
const ANSWER_ERROR_SAMPLES: { [Code in AnswerErrorCode]: AnswerErrorParams[Code] } = {
  required: {}, single_value_expected: {}, not_an_option: {},
  too_few_selections: { min: 3 }, too_many_selections: { max: 4 },
  not_a_boolean: {}, not_a_date: {}, date_too_early: { min: '1900-01-01' }, date_too_late: { max: '2008-05-01' },
  not_a_number: {}, number_too_small: { min: 0 }, number_too_large: { max: 20 }, number_off_step: { step: 0.5, base: 1 },
  not_on_scale: { min: 1, max: 5 }, text_too_long: { max_length: 40 }, pattern_mismatch: {}, control_characters: {},
};

describe('answer error messages', () => {
  it.each(LOCALES)('use exactly the parameters the engine gives (%s)', (locale) => {
    for (const [code, params] of Object.entries(ANSWER_ERROR_SAMPLES)) {
      const key = `answer.error.${code}`;
      expect(messages[locale]![key], `${locale}: ${key}`).toBeDefined();
      const text = translate(locale, key, params);
      expect(text, `${locale}: ${key}`).not.toMatch(/[{}]/);
      for (const value of Object.values(params)) expect(text, `${locale}: ${key}`).toContain(String(value));
    }
  });

  it('count selections and characters in the locale\'s plural forms', () => {
    expect(translate('en', 'answer.error.too_few_selections', { min: 1 })).toBe('Choose at least 1 option.');
    expect(translate('en', 'answer.error.too_many_selections', { max: 3 })).toBe('Choose at most 3 options.');
    expect(translate('en', 'answer.error.text_too_long', { max_length: 40 })).toBe('Use at most 40 characters.');
    expect(translate('ar', 'answer.error.too_few_selections', { min: 2 })).toBe('اختر خيارين على الأقل.');
    expect(translate('ar', 'answer.error.too_few_selections', { min: 5 })).toBe('اختر 5 خيارات على الأقل.');
    expect(translate('ar', 'answer.error.too_few_selections', { min: 11 })).toBe('اختر 11 خيارًا على الأقل.');
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
  const shipped = ['en', 'ar', 'ja', 'he', 'th'];

  it('takes the person\'s choice first, then ui_locales, the account\'s locale, Accept-Language, the default', () => {
    const all = { chosen: 'th', uiLocales: 'ja', accountLocale: 'ar', acceptLanguage: 'he', supported: shipped, fallback: 'en' };
    expect(pickLocale(all)).toBe('th');
    expect(pickLocale({ ...all, chosen: undefined })).toBe('ja');
    expect(pickLocale({ ...all, chosen: undefined, uiLocales: undefined })).toBe('ar');
    expect(pickLocale({ ...all, chosen: undefined, uiLocales: undefined, accountLocale: null })).toBe('he');
    expect(pickLocale({ supported: shipped, fallback: 'en' })).toBe('en');
    // Each source that names nothing supported is passed over, not taken as the answer.
    expect(pickLocale({ ...all, chosen: 'fr', uiLocales: 'de', accountLocale: 'pt-BR' })).toBe('he');
  });

  it('falls back from he-IL to he, passes over pt-BR without Portuguese, and reads the old code iw as he', () => {
    expect(pickLocale({ acceptLanguage: 'he-IL,he;q=0.9,en-US;q=0.8', supported: shipped, fallback: 'en' })).toBe('he');
    expect(pickLocale({ acceptLanguage: 'pt-BR, th;q=0.5', supported: shipped, fallback: 'en' })).toBe('th');
    expect(pickLocale({ acceptLanguage: 'pt-BR, pt;q=0.9', supported: shipped, fallback: 'en' })).toBe('en');
    expect(pickLocale({ uiLocales: 'iw-IL', supported: shipped, fallback: 'en' })).toBe('he');
    expect(pickLocale({ acceptLanguage: 'th-TH', supported: shipped, fallback: 'ja' })).toBe('th');
  });

  it('reads the account only when the choice and ui_locales leave it open', async () => {
    let reads = 0;
    const accountLocale = async () => { reads++; return 'he'; };
    const base = { supported: shipped, fallback: 'en', acceptLanguage: 'ja', accountLocale };
    expect(await negotiateLocale({ ...base, chosen: 'th' })).toBe('th');
    expect(await negotiateLocale({ ...base, uiLocales: 'ar' })).toBe('ar');
    expect(reads).toBe(0);
    expect(await negotiateLocale(base)).toBe('he');
    expect(reads).toBe(1);
    expect(await negotiateLocale({ ...base, accountLocale: async () => null })).toBe('ja');
  });

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

describe('the language switcher', () => {
  const html = renderer.render('login', 'he', {
    csrfToken: 'tok', action: '/interaction/u1/login', registerUrl: '/r', forgotUrl: '/f',
  }, { localeSwitch: LOCALE_SWITCH });
  const nav = /<nav class="locale-switch"[\s\S]*?<\/nav>/.exec(html)?.[0] ?? '';

  it('is one form posting to /locale with the CSRF token and the page to return to, outside the page\'s own form', () => {
    expect(html.indexOf('</main>')).toBeLessThan(html.indexOf('<nav class="locale-switch"'));
    expect(nav).toContain('<form method="post" action="/locale">');
    expect(nav).toContain('<input type="hidden" name="csrf" value="tok">');
    expect(nav).toContain('<input type="hidden" name="return" value="/interaction/u1?x&#x3D;1&amp;y&#x3D;&quot;2&quot;">');
    expect(nav).toContain('aria-labelledby="locale-switch-label"');
    expect(nav).toContain('<h2 id="locale-switch-label" class="locale-switch__label">שפה</h2>');
  });

  it('names each language in itself, with its own lang and dir; the current one is marked, not a button', () => {
    expect(nav).toContain('<span class="locale-switch__current" lang="he" dir="rtl" aria-current="true">עברית</span>');
    for (const [code, name, dir] of [['en', 'English', 'ltr'], ['ar', 'العربية', 'rtl'], ['ja', '日本語', 'ltr'], ['th', 'ไทย', 'ltr']]) {
      expect(nav).toContain(`<button type="submit" class="locale-switch__option" name="locale" value="${code}" lang="${code}" dir="${dir}">${name}</button>`);
    }
    expect(nav.match(/<button\b/g)).toHaveLength(LOCALES.length - 1);
    expect(languageName('th')).toBe('ไทย');
  });

  it('is left out when the request gives none (an email, a test of the page alone)', () => {
    expect(renderer.render('logged_out', 'th', {})).not.toContain('locale-switch');
  });
});

describe('Hebrew and Thai', () => {
  it('count in Hebrew with one, two and other', () => {
    expect(translate('he', 'error.throttled', { seconds: 1 })).toContain('בעוד שנייה אחת.');
    expect(translate('he', 'error.throttled', { seconds: 2 })).toContain('בעוד שתי שניות.');
    expect(translate('he', 'error.throttled', { seconds: 30 })).toContain('בעוד 30 שניות.');
    expect(translate('he', 'stats.accounts', { count: 2 })).toBe('שני חשבונות');
    expect(translate('he', 'stats.accounts', { count: 1234 })).toBe('1,234 חשבונות');
  });

  it('count in Thai without plural forms, exact one aside', () => {
    expect(translate('th', 'account.consent.delete_answers', { count: 1 })).toBe('ลบคำตอบที่ฉันให้ไว้สำหรับวัตถุประสงค์นี้ด้วย');
    expect(translate('th', 'account.consent.delete_answers', { count: 3 })).toBe('ลบคำตอบ 3 ข้อที่ฉันให้ไว้สำหรับวัตถุประสงค์นี้ด้วย');
    expect(translate('th', 'error.throttled', { seconds: 90 })).toBe('พยายามไม่สำเร็จหลายครั้งเกินไป กรุณาลองใหม่ในอีก 90 วินาที');
  });

  it('isolate inserted text in a right-to-left sentence', () => {
    expect(translate('he', 'account.signed_in_as', { email: 'dana@example.com' })).toBe('החשבון המחובר: \u2068dana@example.com\u2069');
  });

  it('render their pages with lang and dir', () => {
    expect(renderer.render('logged_out', 'he', {})).toContain('<html lang="he" dir="rtl">');
    expect(renderer.render('logged_out', 'th', {})).toContain('<html lang="th" dir="ltr">');
    expect(renderer.render('logged_out', 'th', {})).toContain('คุณปิดหน้าต่างนี้ได้แล้ว');
  });
});

describe('translate with intl-messageformat', () => {
  it('formats a plain number argument in the locale\'s digits and grouping, as ICU does', () => {
    expect(translate('en', 'stats.bar', { date: 'May 1', shown: 1234, answered: 5 })).toBe('\u2068May 1\u2069: 1,234 shown, 5 answered');
    expect(translate('ar', 'answer.error.number_too_small', { min: 1234.5 })).toContain(new Intl.NumberFormat('ar').format(1234.5));
  });

  it('never lets a value act as markup or as a placeholder', () => {
    expect(translate('en', 'error.oidc', { description: '<b>{x}</b> it\'s' })).toBe('The app sent an invalid sign-in request: \u2068<b>{x}</b> it\'s\u2069');
  });
});

describe('direction', () => {
  it('is rtl for right-to-left languages, with or without a region', () => {
    for (const locale of ['ar', 'ar-EG', 'he', 'fa', 'ur']) expect(direction(locale)).toBe('rtl');
    for (const locale of ['en', 'ja', 'en-GB', 'fr']) expect(direction(locale)).toBe('ltr');
  });
});
