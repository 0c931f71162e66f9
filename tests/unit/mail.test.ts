import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { loadConfig } from '../../src/config/load.ts';
import { createMailer, describeMailError, readMailbox } from '../../src/mail/mailer.ts';
import { createMailOutbox } from '../../src/mail/outbox.ts';
import { describeDuration, emailChangedMessage, registrationAttemptMessage, resetPasswordMessage, verifyEmailMessage } from '../../src/mail/messages.ts';

const LINK = 'https://id.example.test/verify-email?token=abc_DEF-123';

describe('mail messages', () => {
  it('puts the link on a line of its own in the text version', () => {
    const message = verifyEmailMessage({ locale: 'en', link: LINK, ttlText: '1 day' });
    expect(message.subject).toBe('Confirm your email address');
    expect(message.text.split('\n')).toContain(LINK);
    // Inserted values are isolated (FSI … PDI), as on the pages: right-to-left mail needs it.
    expect(message.text).toContain('The link expires in \u20681 day\u2069.');
  });

  it('speaks Arabic right to left, Japanese, and English for anything else', () => {
    const arabic = resetPasswordMessage({ locale: 'ar-EG', link: LINK, ttlText: 'ساعة' });
    expect(arabic.subject).toBe('إعادة تعيين كلمة المرور');
    expect(arabic.html).toContain('<html lang="ar" dir="rtl">');
    expect(resetPasswordMessage({ locale: 'ja', link: LINK, ttlText: '1時間' }).subject).toBe('パスワードの再設定');
    const fallback = registrationAttemptMessage({ locale: 'fr', resetLink: LINK });
    expect(fallback.subject).toBe('Someone tried to create an account with your email address');
    expect(fallback.html).toContain('<html lang="en" dir="ltr">');
    expect(registrationAttemptMessage({ locale: null, resetLink: LINK }).subject).toBe(fallback.subject);
  });

  it('speaks Hebrew right to left and Thai, from the same locale files as the pages', () => {
    const hebrew = verifyEmailMessage({ locale: 'he-IL', link: LINK, ttlText: describeDuration(86400, 'he-IL') });
    expect(hebrew.subject).toBe('אישור כתובת האימייל שלך');
    expect(hebrew.html).toContain('<html lang="he" dir="rtl">');
    expect(hebrew.text).toContain('תוקף הקישור יפוג בעוד \u20681 יום\u2069.');
    expect(hebrew.text.split('\n')).toContain(LINK);
    const thai = emailChangedMessage({ locale: 'th', resetLink: LINK });
    expect(thai.subject).toBe('อีเมลของคุณถูกเปลี่ยนแล้ว');
    expect(thai.html).toContain('<html lang="th" dir="ltr">');
    // Two paragraphs in one message (a blank line between them) become two paragraphs of the mail.
    expect(thai.html.match(/<p>/g)).toHaveLength(5);
    expect(describeDuration(7200, 'th')).toBe('2 ชั่วโมง');
    expect(describeDuration(7200, 'he')).toBe('שעתיים');
  });

  it('escapes every interpolated value in the HTML version', () => {
    const hostile = 'https://id.example.test/reset?token=x&next="><script>alert(1)</script>';
    const message = resetPasswordMessage({ locale: 'en', link: hostile, ttlText: '<b>1 hour</b>' });
    expect(message.html).not.toContain('<script>');
    expect(message.html).not.toContain('<b>');
    expect(message.html).toContain('href="https://id.example.test/reset?token=x&amp;next=&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"');
    expect(message.html).toContain('&lt;b&gt;1 hour&lt;/b&gt;');
  });

  it('states a link lifetime in the largest exact unit, in the reader’s language', () => {
    expect(describeDuration(86400, 'en')).toBe('1 day');
    expect(describeDuration(3600, 'en')).toBe('1 hour');
    expect(describeDuration(5400, 'en')).toBe('90 minutes');
    expect(describeDuration(7200, 'ja')).toMatch(/^2\s?時間$/);
    expect(describeDuration(7200, 'de')).toBe('2 hours');
  });
});

describe('development mailbox', () => {
  it('writes one file a message, read back oldest first, and logs neither body nor link', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'parley-mailbox-'));
    onTestFinished(() => rmSync(root, { recursive: true, force: true }));
    const dir = path.join(root, 'not', 'yet', 'there');
    const lines: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => { lines.push(line); } });
    const sentAt = new Date('2026-05-04T03:02:01.000Z');
    const mailer = createMailer({ from: 'Parley <no-reply@example.test>', smtp_url: '', mailbox_dir: dir }, logger, { timeoutSeconds: 10, clock: () => sentAt });
    for (let i = 1; i <= 3; i++) {
      await mailer.send({ to: `ann+${i}@example.com`, subject: `Message ${i}`, text: `Open ${LINK}`, html: `<a href="${LINK}">open</a>` });
    }
    await mailer.close();

    const mails = await readMailbox(dir);
    expect(mails.map((m) => m.subject)).toEqual(['Message 1', 'Message 2', 'Message 3']);
    expect(mails[0]).toMatchObject({ to: 'ann+1@example.com', from: 'Parley <no-reply@example.test>', text: `Open ${LINK}`, html: `<a href="${LINK}">open</a>` });
    expect(mails[0]!.sent_at).toBe(sentAt.toISOString());
    expect(path.dirname(mails[0]!.file)).toBe(dir);

    expect(lines).toHaveLength(3);
    const logged = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(logged).toMatchObject({ to_domain: 'example.com', subject: 'Message 1', file: mails[0]!.file });
    expect(lines.join('\n')).not.toContain('token=');
    expect(lines.join('\n')).not.toContain('ann+1');
  });

  it('reads a mailbox that does not exist as empty', async () => {
    expect(await readMailbox(path.join(os.tmpdir(), `parley-no-mailbox-${process.pid}-${Date.now()}`))).toEqual([]);
  });
});

describe('mail from the outbox', () => {
  const outbox = createMailOutbox({ config: loadConfig({ env: {}, overrides: { issuer: 'https://id.example.test/' } }) });
  const TOKEN = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ';

  it('is composed when it is sent, with the link from the issuer and the token', () => {
    const message = outbox.compose({ kind: 'reset_password', to: 'ann@example.com', locale: 'ja', token: TOKEN });
    expect(message).toMatchObject({ to: 'ann@example.com', subject: 'パスワードの再設定' });
    expect(message!.text.split('\n')).toContain(`https://id.example.test/reset-password?token=${TOKEN}`);
    expect(outbox.compose({ kind: 'email_changed', to: 'old@example.com', locale: null })!.text).toContain('https://id.example.test/forgot-password');
  });

  it('cannot be composed again once its address and token are erased, nor from what is not a mail', () => {
    expect(outbox.compose({ kind: 'verify_email', locale: 'en' })).toBeUndefined();
    expect(outbox.compose({ kind: 'verify_email', to: 'ann@example.com', locale: 'en' })).toBeUndefined();
    expect(outbox.compose({ kind: 'answer.recorded', to: 'ann@example.com', locale: 'en', token: TOKEN })).toBeUndefined();
  });

  it('reports why it did not go out without the address it was for', () => {
    const refused = Object.assign(new Error("Can't send mail - all recipients were rejected: 550 5.1.1 <ann.lee@example.com>: Recipient address rejected"), {
      code: 'EENVELOPE', responseCode: 550,
    });
    const described = describeMailError(refused);
    expect(described).toEqual({ status: 550, error: expect.stringMatching(/^EENVELOPE 550 Can't send mail/) });
    expect(described.error).toContain('<…@example.com>');
    expect(described.error).not.toContain('ann.lee');
    expect(describeMailError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:2525'), { code: 'ESOCKET' })))
      .toEqual({ status: null, error: 'ESOCKET connect ECONNREFUSED 127.0.0.1:2525' });
  });
});
