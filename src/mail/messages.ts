// The emails Parley sends, in each language it speaks. The texts live in the same locale files
// as the pages (src/views/locales, keys mail.*), so a new language is one file. A message is
// paragraphs with the link on its own, rendered both as plain text and as HTML, so the two
// versions cannot drift apart. Locales without a translation get English.
import { bundledMessages, direction, preferredLocale, translate } from '../views/i18n.ts';

export interface RenderedMessage {
  subject: string;
  text: string;
  html: string;
}

type MailKind = 'verify_email' | 'reset_password' | 'registration_attempt' | 'change_email' | 'email_changed' | 'security_changed' | 'email_code';

const SOURCE_LOCALE = 'en';

/** The mail language for a locale such as "he-IL": its language if Parley has it, else English. */
function mailLocale(locale: string | null | undefined): string {
  return preferredLocale({ chosen: locale?.replaceAll('_', '-'), supported: Object.keys(bundledMessages()) }) ?? SOURCE_LOCALE;
}

function escapeHtml(value: string): string {
  return value
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

// A message spans paragraphs where the translator left a blank line.
const paragraphs = (text: string) => text.split(/\n{2,}/).map((p) => p.trim()).filter(Boolean);

function render(kind: MailKind, locale: string | null | undefined, link: string | undefined, values: Record<string, string>): RenderedMessage {
  const lang = mailLocale(locale);
  const t = (part: string) => translate(lang, `mail.${kind}.${part}`, values);
  const subject = t('subject');
  const before = [translate(lang, 'mail.greeting'), ...paragraphs(t('intro'))];
  const after = paragraphs(t('outro'));
  // The link stands alone on its line so that no punctuation sticks to it when it is copied.
  const text = `${[...before, ...(link === undefined ? [] : [link]), ...after].join('\n\n')}\n`;
  const paragraph = (content: string) => `<p>${escapeHtml(content)}</p>`;
  const html = [
    '<!doctype html>',
    `<html lang="${lang}" dir="${direction(lang)}">`,
    `<head><meta charset="utf-8"><title>${escapeHtml(subject)}</title></head>`,
    '<body>',
    ...before.map(paragraph),
    ...(link === undefined ? [] : [`<p><a href="${escapeHtml(link)}">${escapeHtml(t('action'))}</a></p>`]),
    ...after.map(paragraph),
    '</body>',
    '</html>',
  ].join('\n');
  return { subject, text, html };
}

/**
 * "24 hours", "٢٤ ساعة", "24 שעות", "24 ชั่วโมง": a link's lifetime in the reader's language, in
 * the largest unit that states it exactly.
 */
export function describeDuration(seconds: number, locale: string | null | undefined): string {
  const [unit, count] = seconds % 86400 === 0 ? ['day', seconds / 86400] as const
    : seconds % 3600 === 0 ? ['hour', seconds / 3600] as const
      : ['minute', Math.ceil(seconds / 60)] as const;
  return new Intl.NumberFormat(mailLocale(locale), { style: 'unit', unit, unitDisplay: 'long' }).format(count);
}

export function verifyEmailMessage(input: { locale: string | null | undefined; link: string; ttlText: string }): RenderedMessage {
  return render('verify_email', input.locale, input.link, { ttl: input.ttlText });
}

export function resetPasswordMessage(input: { locale: string | null | undefined; link: string; ttlText: string }): RenderedMessage {
  return render('reset_password', input.locale, input.link, { ttl: input.ttlText });
}

/** To the owner of an address someone tried to register again, when registration must not reveal that it is taken. */
export function registrationAttemptMessage(input: { locale: string | null | undefined; resetLink: string }): RenderedMessage {
  return render('registration_attempt', input.locale, input.resetLink, {});
}

/** To the new address: the link that makes it the account's address. */
export function changeEmailMessage(input: { locale: string | null | undefined; link: string; ttlText: string }): RenderedMessage {
  return render('change_email', input.locale, input.link, { ttl: input.ttlText });
}

/** To the old address, after a change: in case it was not the owner. */
export function emailChangedMessage(input: { locale: string | null | undefined; resetLink: string }): RenderedMessage {
  return render('email_changed', input.locale, input.resetLink, {});
}

/** To the account's address, after a way to sign in or a second factor changed: in case it was not its owner. */
export function securityChangedMessage(input: { locale: string | null | undefined; change: string; link: string }): RenderedMessage {
  return render('security_changed', input.locale, input.link, { what: translate(mailLocale(input.locale), `mail.security_changed.change.${input.change}`) });
}

/**
 * A six-digit code ("Email me a code" on the sign-in page, or proving an address before an upstream
 * identity is linked): no link, the code is typed on the page that asked for it.
 */
export function emailCodeMessage(input: { locale: string | null | undefined; code: string; ttlText: string }): RenderedMessage {
  return render('email_code', input.locale, undefined, { code: input.code, ttl: input.ttlText });
}
