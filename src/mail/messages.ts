// The emails Parley sends, in each language it speaks. A message is written once as data —
// paragraphs, with the link on its own — and rendered both as plain text and as HTML, so the
// two versions cannot drift apart. Locales without a translation get English.

export interface RenderedMessage {
  subject: string;
  text: string;
  html: string;
}

type MailLocale = 'en' | 'ar' | 'ja';

interface MessageText {
  subject: string;
  before: string[];
  /** The label of the link in the HTML version; the text version shows the link itself. */
  action: string;
  after: string[];
}

const RTL_LOCALES: ReadonlySet<MailLocale> = new Set(['ar']);

const VERIFY_EMAIL: Record<MailLocale, MessageText> = {
  en: {
    subject: 'Confirm your email address',
    before: ['Hello,', 'Please confirm your email address by opening this link:'],
    action: 'Confirm my email address',
    after: ['The link expires in {ttl}. If you did not create an account, you can ignore this email.'],
  },
  ar: {
    subject: 'تأكيد عنوان بريدك الإلكتروني',
    before: ['مرحبًا،', 'يُرجى تأكيد عنوان بريدك الإلكتروني بفتح هذا الرابط:'],
    action: 'تأكيد عنوان بريدي الإلكتروني',
    after: ['تنتهي صلاحية الرابط خلال {ttl}. إذا لم تُنشئ حسابًا، يمكنك تجاهل هذه الرسالة.'],
  },
  ja: {
    subject: 'メールアドレスの確認',
    before: ['こんにちは。', '次のリンクを開いて、メールアドレスを確認してください。'],
    action: 'メールアドレスを確認する',
    after: ['このリンクの有効期限は{ttl}です。アカウントを作成した覚えがない場合は、このメールを無視してください。'],
  },
};

const RESET_PASSWORD: Record<MailLocale, MessageText> = {
  en: {
    subject: 'Reset your password',
    before: ['Hello,', 'Someone, hopefully you, asked to reset the password of the account with this email address. To choose a new password, open this link:'],
    action: 'Choose a new password',
    after: ['The link expires in {ttl} and works once. If you did not ask for this, ignore this email: your password stays as it is.'],
  },
  ar: {
    subject: 'إعادة تعيين كلمة المرور',
    before: ['مرحبًا،', 'طلب أحدهم، ونأمل أن تكون أنت، إعادة تعيين كلمة مرور الحساب المرتبط بعنوان البريد الإلكتروني هذا. لاختيار كلمة مرور جديدة، افتح هذا الرابط:'],
    action: 'اختيار كلمة مرور جديدة',
    after: ['تنتهي صلاحية الرابط خلال {ttl} ويمكن استخدامه مرة واحدة. إذا لم تطلب ذلك، فتجاهل هذه الرسالة وستبقى كلمة مرورك كما هي.'],
  },
  ja: {
    subject: 'パスワードの再設定',
    before: ['こんにちは。', 'このメールアドレスのアカウントについて、パスワードの再設定が依頼されました。新しいパスワードを設定するには、次のリンクを開いてください。'],
    action: '新しいパスワードを設定する',
    after: ['このリンクの有効期限は{ttl}で、一度だけ使用できます。心当たりがない場合は、このメールを無視してください。パスワードは変更されません。'],
  },
};

const REGISTRATION_ATTEMPT: Record<MailLocale, MessageText> = {
  en: {
    subject: 'Someone tried to create an account with your email address',
    before: [
      'Hello,',
      'Someone tried to create a new account with this email address, which already has an account.',
      'If it was you, sign in with your password, or reset your password here:',
    ],
    action: 'Reset my password',
    after: ['If it was not you, you can ignore this email: nothing has changed.'],
  },
  ar: {
    subject: 'محاولة لإنشاء حساب بعنوان بريدك الإلكتروني',
    before: [
      'مرحبًا،',
      'حاول أحدهم إنشاء حساب جديد بعنوان البريد الإلكتروني هذا، وهو مرتبط بحساب موجود بالفعل.',
      'إذا كنت أنت، فسجّل الدخول بكلمة مرورك، أو أعد تعيين كلمة المرور من هنا:',
    ],
    action: 'إعادة تعيين كلمة المرور',
    after: ['إذا لم تكن أنت، يمكنك تجاهل هذه الرسالة، فلم يتغيّر شيء.'],
  },
  ja: {
    subject: 'お使いのメールアドレスでアカウントの作成が試みられました',
    before: [
      'こんにちは。',
      'このメールアドレスで新しいアカウントを作成しようとする操作がありましたが、このアドレスにはすでにアカウントがあります。',
      'ご自身による操作の場合は、パスワードでサインインするか、こちらからパスワードを再設定してください。',
    ],
    action: 'パスワードを再設定する',
    after: ['心当たりがない場合は、このメールを無視してください。何も変更されていません。'],
  },
};

const CHANGE_EMAIL: Record<MailLocale, MessageText> = {
  en: {
    subject: 'Confirm your new email address',
    before: ['Hello,', 'You asked to use this address for your account from now on. To confirm it, open this link:'],
    action: 'Use this email address',
    after: ['The link expires in {ttl}. If you did not ask for this, ignore this email: nothing changes.'],
  },
  ar: {
    subject: 'تأكيد عنوان بريدك الإلكتروني الجديد',
    before: ['مرحبًا،', 'طلبتَ استخدام هذا العنوان لحسابك من الآن فصاعدًا. لتأكيده، افتح هذا الرابط:'],
    action: 'استخدام عنوان البريد هذا',
    after: ['تنتهي صلاحية الرابط خلال {ttl}. إذا لم تطلب ذلك، فتجاهل هذه الرسالة ولن يتغيّر شيء.'],
  },
  ja: {
    subject: '新しいメールアドレスの確認',
    before: ['こんにちは。', '今後このアドレスをアカウントで使うよう依頼がありました。確認するには、次のリンクを開いてください。'],
    action: 'このメールアドレスを使う',
    after: ['このリンクの有効期限は{ttl}です。心当たりがない場合は、このメールを無視してください。何も変更されません。'],
  },
};

const EMAIL_CHANGED: Record<MailLocale, MessageText> = {
  en: {
    subject: 'Your email address was changed',
    before: ['Hello,', 'The email address of your account was just changed, and this address is no longer used for it.', 'If you did not do this, reset your password at once here:'],
    action: 'Reset my password',
    after: ['If it was you, there is nothing more to do.'],
  },
  ar: {
    subject: 'تم تغيير عنوان بريدك الإلكتروني',
    before: ['مرحبًا،', 'تم للتو تغيير عنوان البريد الإلكتروني لحسابك، ولم يعد هذا العنوان مستخدمًا له.', 'إذا لم تقم بذلك، فأعد تعيين كلمة مرورك فورًا من هنا:'],
    action: 'إعادة تعيين كلمة المرور',
    after: ['إذا كنت أنت، فلا حاجة لفعل أي شيء آخر.'],
  },
  ja: {
    subject: 'メールアドレスが変更されました',
    before: ['こんにちは。', 'アカウントのメールアドレスが変更され、このアドレスは使われなくなりました。', '心当たりがない場合は、すぐにこちらからパスワードを再設定してください。'],
    action: 'パスワードを再設定する',
    after: ['ご自身による変更であれば、これ以上の操作は不要です。'],
  },
};

/** The mail language for a locale such as "ar-EG": its language if Parley has it, else English. */
function mailLocale(locale: string | null | undefined): MailLocale {
  const language = (locale ?? '').toLowerCase().split(/[-_]/)[0];
  return language === 'ar' || language === 'ja' ? language : 'en';
}

function escapeHtml(value: string): string {
  return value
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

function render(messages: Record<MailLocale, MessageText>, locale: string | null | undefined, link: string, values: Record<string, string>): RenderedMessage {
  const lang = mailLocale(locale);
  const message = messages[lang];
  const fill = (paragraph: string) => paragraph.replaceAll(/\{(\w+)\}/g, (placeholder, name: string) => values[name] ?? placeholder);
  const before = message.before.map(fill);
  const after = message.after.map(fill);
  // The link stands alone on its line so that no punctuation sticks to it when it is copied.
  const text = `${[...before, link, ...after].join('\n\n')}\n`;
  const paragraph = (content: string) => `<p>${escapeHtml(content)}</p>`;
  const html = [
    '<!doctype html>',
    `<html lang="${lang}" dir="${RTL_LOCALES.has(lang) ? 'rtl' : 'ltr'}">`,
    `<head><meta charset="utf-8"><title>${escapeHtml(message.subject)}</title></head>`,
    '<body>',
    ...before.map(paragraph),
    `<p><a href="${escapeHtml(link)}">${escapeHtml(message.action)}</a></p>`,
    ...after.map(paragraph),
    '</body>',
    '</html>',
  ].join('\n');
  return { subject: message.subject, text, html };
}

/**
 * "24 hours", "٢٤ ساعة", "24時間": a link's lifetime in the reader's language, in the largest
 * unit that states it exactly.
 */
export function describeDuration(seconds: number, locale: string | null | undefined): string {
  const [unit, count] = seconds % 86400 === 0 ? ['day', seconds / 86400] as const
    : seconds % 3600 === 0 ? ['hour', seconds / 3600] as const
      : ['minute', Math.ceil(seconds / 60)] as const;
  return new Intl.NumberFormat(mailLocale(locale), { style: 'unit', unit, unitDisplay: 'long' }).format(count);
}

export function verifyEmailMessage(input: { locale: string | null | undefined; link: string; ttlText: string }): RenderedMessage {
  return render(VERIFY_EMAIL, input.locale, input.link, { ttl: input.ttlText });
}

export function resetPasswordMessage(input: { locale: string | null | undefined; link: string; ttlText: string }): RenderedMessage {
  return render(RESET_PASSWORD, input.locale, input.link, { ttl: input.ttlText });
}

/** To the owner of an address someone tried to register again, when registration must not reveal that it is taken. */
export function registrationAttemptMessage(input: { locale: string | null | undefined; resetLink: string }): RenderedMessage {
  return render(REGISTRATION_ATTEMPT, input.locale, input.resetLink, {});
}

/** To the new address: the link that makes it the account's address. */
export function changeEmailMessage(input: { locale: string | null | undefined; link: string; ttlText: string }): RenderedMessage {
  return render(CHANGE_EMAIL, input.locale, input.link, { ttl: input.ttlText });
}

/** To the old address, after a change: in case it was not the owner. */
export function emailChangedMessage(input: { locale: string | null | undefined; resetLink: string }): RenderedMessage {
  return render(EMAIL_CHANGED, input.locale, input.resetLink, {});
}
