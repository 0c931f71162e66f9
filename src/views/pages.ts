// The data each page template is rendered with: the contract between the HTTP routes and the
// views. Every text in here arrives already localized (or is the user's own input); templates
// take their fixed texts from the locale files. Like Kratos' UI nodes, a page is data, so the
// templates never format domain objects.

export const PAGE_NAMES = [
  'login', 'register', 'check_email', 'consent', 'logout', 'logged_out', 'verify_email',
  'forgot_password', 'reset_password', 'message', 'demo', 'profile',
  'account', 'account_edit_answer', 'account_delete', 'account_email',
  'stats', 'terms', 'terms_declined', 'too_young',
  'upstream_register', 'upstream_link', 'upstream_verify', 'account_password',
  'second_factor', 'second_factor_enrol', 'second_factor_qr', 'recovery_codes', 'account_security', 'passkey_offer', 'email_code',
] as const;

export type PageName = (typeof PAGE_NAMES)[number];

/** What the layout shows around every page: it comes from the request, not from the page. */
export interface LayoutData {
  /**
   * The language switcher: one form that posts `locale` (a button per supported language) with
   * the CSRF token and `return`, the page to come back to in the chosen language.
   */
  localeSwitch?: { action: string; csrfToken: string; returnTo: string };
}

/** One question on the profiling screen, with every text already in the page's locale. */
export interface ProfileQuestionView {
  /** The question id: the element id prefix. */
  id: string;
  /** The form field name of the answer (the route decides it; it never clashes with other fields). */
  name: string;
  type: 'single_choice' | 'multi_choice' | 'boolean' | 'date' | 'number' | 'scale' | 'text';
  label: string;
  help?: string;
  /** What answering earns, e.g. "Tell us your birthday and get a free drink on it". */
  reward?: string;
  required: boolean;
  /** Shown beside the field; the field is then marked invalid. */
  error?: string;
  /** The text in a date, number or text input: what the user typed, or the earlier answer. */
  value?: string;
  /**
   * The choices of single_choice, multi_choice (checkboxes), boolean (yes/no, labels given) and
   * scale (one radio per point, label = the number) questions, with what is selected now.
   */
  options?: { value: string; label: string; checked: boolean }[];
  /** Input attributes: date bounds as YYYY-MM-DD; number bounds and step. */
  min?: string;
  max?: string;
  step?: string;
  maxLength?: number;
  /** A pattern the whole text answer must match (the HTML pattern attribute). */
  pattern?: string;
  /** What the lowest and highest points of a scale mean. */
  minLabel?: string;
  maxLabel?: string;
  /** The question was answered before and is asked again; the earlier answer is preselected. */
  reasked: boolean;
  /** The "Don't ask me again" checkbox: name `decline`, value = the question id. Checked when resubmitted so. */
  declined: boolean;
  /** Leaves out the "Don't ask me again" checkbox (changing an earlier answer in the preference center). */
  hideDecline?: boolean;
}

/** A purpose's consent as the question screen asks for it: an unticked box with the purpose's text. */
export interface ConsentRequestView {
  purpose: string;
  /** The checkbox: name `consent`, value = the purpose id. */
  title: string;
  description: string;
  checked: boolean;
  /** Why the answer was not stored without it. */
  error?: string;
}

/** A terms document to accept: an unticked box (name `terms`, value = the id) with its title linking to it. */
export interface TermsDocumentView {
  id: string;
  title: string;
  url: string;
  checked: boolean;
}

/** One answer in the preference center. */
export interface AccountAnswerView {
  questionId: string;
  /** The question as the user was asked it. */
  label: string;
  /** The answer, formatted for reading (option labels, yes/no, a date). */
  value: string;
  purposeTitle: string;
  /** The app the answer was given in, when known. */
  appName?: string;
  /** When it was given or last changed, formatted for the page's locale. */
  answeredAt: string;
  /** The page to change it; absent when the question is no longer asked (it can still be deleted). */
  editUrl?: string;
  deleteAction: string;
}

export interface AccountConsentView {
  purpose: string;
  title: string;
  description: string;
  /** The legal basis in plain words ("Your consent", "Our contract with you"). */
  legalBasis: string;
  /** Only purposes with the consent basis can be granted and withdrawn here. */
  changeable: boolean;
  /** outdated: granted to an earlier version of the text; answers under it are not shared until renewed. */
  state: 'granted' | 'withdrawn' | 'none' | 'outdated';
  version: number;
  /** When the state was last changed, formatted. */
  changedAt?: string;
  /** POST with `action=grant` or `action=withdraw` (and `delete_answers=yes` to erase the answers under it). */
  action: string;
  /** Answers given under this purpose: the withdraw form offers to delete them. */
  answerCount: number;
}

/** A terms document in the preference center: what the person accepted of it, and when. */
export interface AccountTermsView {
  title: string;
  /** Where to read it; absent for a document no longer in the configuration. */
  url?: string;
  /** Each acceptance, newest first, the date formatted for the page's locale. */
  accepted: { version: number; date: string }[];
  /** The current version, when the person has not accepted it yet. */
  pendingVersion?: number;
}

export interface AccountAppView {
  clientId: string;
  name: string;
  /** What the app may receive, one phrase each ("Your email address", "Personalized recommendations"). */
  receives: string[];
  revokeAction: string;
}

/** One question on the statistics page; every number already formatted for the page's locale. */
export interface StatsQuestionView {
  id: string;
  label: string;
  totals: { shown: string; answered: string; skipped: string; declined: string; answerRate: string };
  /**
   * Shown and answered per day as SVG geometry (viewBox units), computed by the route: the page
   * has no styles of its own, and right-to-left locales get the days from right to left.
   */
  chart: {
    width: number;
    height: number;
    /** The y of the axis line. */
    baseline: number;
    /** The chart's accessible name. */
    description: string;
    days: { x: number; width: number; shownY: number; shownHeight: number; answeredY: number; answeredHeight: number; title: string }[];
  };
  /** Current answers: option label → accounts; absent when not aggregated (see distributionNote). */
  distribution?: { label: string; count: number; countText: string }[];
  /** The largest count, the meters' maximum. */
  distributionMax?: number;
  /** Why there is no distribution (free text and dates are never aggregated). */
  distributionNote?: string;
  days: { date: string; shown: string; answered: string; skipped: string; declined: string; answerRate: string }[];
}

/** A "Continue with …" link: starts a sign-in with an upstream provider (name in the page's language). */
export interface UpstreamButtonView {
  id: string;
  name: string;
  url: string;
}

/** The "Linked providers" section of /account. */
export interface AccountIdentitiesView {
  /** unlinkAction: none for the last way to sign in, which cannot be unlinked. */
  linked: { provider: string; name: string; email?: string; linkedOn: string; unlinkAction?: string }[];
  /** Providers not linked yet: a link each, to sign in there and link. */
  available: { provider: string; name: string; linkUrl: string }[];
  /** The account has no password: the page to set one. */
  setPasswordUrl?: string;
}

export interface PageData {
  login: {
    /** The configured upstream providers, one button each (none: no section). */
    upstream?: UpstreamButtonView[];
    csrfToken: string;
    action: string;
    email?: string;
    /** Shown above the form as an alert. */
    error?: string;
    clientName?: string;
    registerUrl: string;
    forgotUrl: string;
    /** "Email me a code": the main form's second button posts here, when email codes are on. */
    emailCodeAction?: string | undefined;
    /** "Sign in with a passkey" and passkeys in the email field's autofill, when passkeys are on. */
    passkey?: { action: string; optionsAction: string } | undefined;
  };
  register: {
    upstream?: UpstreamButtonView[];
    csrfToken: string;
    action: string;
    email?: string;
    name?: string;
    /** Field errors are shown beside their field; `form` above the form. */
    errors: { name?: string; email?: string; password?: string; birthdate?: string; terms?: string; form?: string };
    loginUrl: string;
    passwordMinLength: number;
    /** The terms documents to accept (config `terms:`); none: no boxes. */
    terms?: TermsDocumentView[];
    /** The age gate is on: the form asks for the date of birth (YYYY-MM-DD, `birthdate`). */
    askBirthdate?: boolean;
    birthdate?: string;
  };
  check_email: {
    csrfToken: string;
    /** Empty when the address is not known to this request (the text then leaves it out). */
    email: string;
    continueAction?: string;
    resendAction?: string;
    /** The user pressed continue before opening the link. */
    notYetVerified?: boolean;
  };
  consent: {
    csrfToken: string;
    action: string;
    cancelAction: string;
    clientName: string;
    /** What the app will receive, one phrase each ("Your email address"). */
    items: string[];
  };
  logout: {
    /** oidc-provider's `<form id="op.logoutForm">` with its xsrf input, inserted unescaped. */
    formHtml: string;
    clientName?: string;
  };
  logged_out: { clientName?: string };
  verify_email: { ok: boolean; message: string; continueUrl?: string };
  forgot_password: {
    csrfToken: string;
    action: string;
    email?: string;
    /** The same text whether or not an account exists for the address. */
    sent: boolean;
    error?: string;
  };
  reset_password: {
    csrfToken: string;
    action: string;
    token: string;
    errors: { password?: string; form?: string };
    done: boolean;
    loginUrl?: string;
    passwordMinLength: number;
    invalidToken: boolean;
  };
  profile: {
    csrfToken: string;
    /** Save: stores the answers (and declines the ticked questions). */
    action: string;
    /** "Not now": the same form posted here with formaction; stores nothing but the skip. */
    skipAction: string;
    /** The screen-set's title. */
    title: string;
    clientName: string;
    questions: ProfileQuestionView[];
    /** Shown above the form as an alert, e.g. when a field below needs attention. */
    error?: string;
    /** The preview of a screen-set for its authors: a banner says so; the form posts nowhere useful. */
    preview?: boolean;
    /** Purposes the answers need consent for before they can be stored (shown above the actions). */
    consents?: ConsentRequestView[];
    /**
     * A re-consent screen: no questions, only purposes whose text changed since the user agreed;
     * the intro says so ("We have updated how we use your data…").
     */
    reconsent?: boolean;
  };
  account: {
    csrfToken: string;
    email: string;
    name?: string;
    /** The outcome of the last action, shown as a status message ("Your answer was deleted."). */
    notice?: string;
    error?: string;
    answers: AccountAnswerView[];
    consents: AccountConsentView[];
    communication: {
      /** One form: every toggle is a checkbox `comm` with value `<channel>:<topic>`. */
      action: string;
      channels: { id: string; label: string }[];
      topics: { id: string; title: string; toggles: { channel: string; value: string; checked: boolean }[] }[];
    };
    apps: AccountAppView[];
    /** The terms documents accepted or to accept (none configured nor accepted: no section). */
    terms?: AccountTermsView[];
    /** Linked upstream providers (none configured: no section). */
    identities?: AccountIdentitiesView;
    /** GET: the JSON download. */
    exportUrl: string;
    /** GET: the confirmation page for deleting the account. */
    deleteUrl: string;
    /** GET: the page to change the email address. */
    emailUrl: string;
    signOutUrl: string;
  };
  account_edit_answer: {
    csrfToken: string;
    action: string;
    cancelUrl: string;
    purposeTitle: string;
    /** Rendered with the same question partial as the question screen (no decline box here). */
    question: ProfileQuestionView;
    error?: string;
  };
  account_email: {
    csrfToken: string;
    action: string;
    cancelUrl: string;
    /** The current address. */
    email: string;
    /** What the user typed, kept when it is refused. */
    newEmail?: string;
    error?: string;
    /** The link was sent (the same words whether or not the address could be used). */
    sent: boolean;
    needsRecentSignIn: boolean;
    reauthUrl: string;
  };
  account_delete: {
    csrfToken: string;
    action: string;
    cancelUrl: string;
    email: string;
    /** The last sign-in is older than allowed: the page offers to sign in again instead of the button. */
    needsRecentSignIn: boolean;
    reauthUrl: string;
    /** Shown beside the confirmation box when the form came back without it ticked. */
    error?: string;
  };
  message: { title: string; message: string; requestId?: string; backUrl?: string };
  terms: {
    csrfToken: string;
    /** Accept: the ticked boxes are posted here. */
    action: string;
    /** Decline: the same form posted here with formaction; signs the person out. */
    declineAction: string;
    clientName: string;
    /** The documents whose current version the person has not accepted yet. */
    documents: TermsDocumentView[];
    /** `terms` beside the boxes when one was left unticked; `form` above the form. */
    errors: { terms?: string; form?: string };
  };
  /** The second-factor step of a sign-in: the forms of the methods the account has. */
  second_factor: {
    csrfToken: string;
    clientName: string;
    totp?: { action: string; error?: string | undefined } | undefined;
    /** `open`: the recovery form is shown unfolded (the only way, or its code was just refused). */
    recovery?: { action: string; open: boolean; error?: string | undefined } | undefined;
    /** The passkey form (partials/passkey_form.hbs), when the account has a passkey. */
    passkey?: { action: string; optionsAction: string; error?: string | undefined } | undefined;
    abortAction: string;
  };
  /** A second factor is required and the account has none: set one up first. */
  second_factor_enrol: {
    csrfToken: string; clientName: string; totpAction?: string | undefined; abortAction: string;
    /** "Add a passkey" (partials/passkey_form.hbs): its first use proves the second factor. */
    passkey?: { action: string; optionsAction: string } | undefined;
    error?: string | undefined;
  };
  /** Setting up an authenticator app: the QR code (an SVG made on the server) and its secret, then the first code. */
  second_factor_qr: {
    csrfToken: string;
    action: string;
    restartAction: string;
    /** The QR code as a data: URL of our own SVG (no remote image). Absent after a wrong code: the secret is not kept readable. */
    qrImage?: string | undefined;
    secret?: string | undefined;
    error?: string | undefined;
  };
  /** "Ways to sign in" in the preference center. */
  account_security: {
    csrfToken: string;
    backUrl: string;
    /** The last sign-in is older than allowed: the page offers to sign in again instead of the forms. */
    needsRecentSignIn: boolean;
    reauthUrl: string;
    notice?: string;
    error?: string;
    password: { has: boolean; action: string; minLength: number; error?: string };
    /** Absent when authenticator apps are turned off and none is set up. */
    totp?: { enrolled: boolean; beginAction: string; removeAction: string } | undefined;
    recoveryCodes?: { remaining: number; action: string } | undefined;
    /** The account's signed-in sessions, this browser's marked. */
    sessions: {
      /** POST with `session` = the uid of the session to end. */
      signOutAction: string;
      /** Absent when this browser's is the only session. */
      signOutOthersAction?: string | undefined;
      items: {
        index: number; uid: string;
        /** "Chrome on Linux". */
        device: string;
        /** The address's /24 or /48. */
        place?: string | undefined;
        firstSeen?: string | undefined;
        lastSeen?: string | undefined;
        current: boolean;
      }[];
    };
    passkeys?: {
      /** The "Add a passkey" form (partials/passkey_form.hbs), when passkeys are on. */
      add?: { action: string; optionsAction: string } | undefined;
      items: {
        index: number; name: string; created: string; lastUsed: string;
        /** Synced between devices, or bound to one. */
        kind: string;
        renameAction: string;
        /** Absent for the last way to sign in. */
        removeAction?: string | undefined;
      }[];
    } | undefined;
  };
  /** "Sign in faster next time?" after a password sign-in: add a passkey, or not now. */
  passkey_offer: {
    csrfToken: string;
    clientName: string;
    passkey: { action: string; optionsAction: string };
    skipAction: string;
    error?: string | undefined;
  };
  /** "Email me a code": the address it was sent to (if it has an account) and the field for the code. */
  email_code: {
    csrfToken: string;
    action: string;
    /** Sends a new code (the same form, another button). */
    resendAction: string;
    email: string;
    loginUrl: string;
    error?: string | undefined;
  };
  /** New recovery codes, shown this once. */
  recovery_codes: { codes: string[]; continueUrl: string };
  /** The age gate turned someone away: nothing about them was kept. */
  too_young: { minimumAge: number; clientName: string };
  /** Registering with an upstream provider: what registering asks besides the account (terms, age). */
  upstream_register: {
    csrfToken: string;
    action: string;
    provider: string;
    email: string;
    name?: string;
    errors: { name?: string; birthdate?: string; terms?: string; form?: string };
    terms?: TermsDocumentView[];
    askBirthdate?: boolean;
    birthdate?: string;
    loginUrl: string;
  };
  /** An account has the provider's address: the person proves it is theirs before the link. */
  upstream_link: {
    csrfToken: string;
    provider: string;
    email: string;
    error?: string;
    /** Sign in with the account's password (absent when a password proves nothing: an address never verified). */
    passwordAction?: string;
    /** "Email me a code" to the account's address, and typing it back. */
    codeAction?: string;
    /** A code was sent: the form to type it. */
    codeSent?: boolean;
    loginUrl: string;
  };
  /** A first password for an account that has none. */
  account_password: {
    csrfToken: string;
    action: string;
    cancelUrl: string;
    email: string;
    error?: string;
    passwordMinLength: number;
    needsRecentSignIn: boolean;
    reauthUrl: string;
  };
  /** The provider proved no address: one is typed, a code sent to it and typed back. */
  upstream_verify: {
    csrfToken: string;
    provider: string;
    action: string;
    email?: string;
    error?: string;
    codeSent?: boolean;
    loginUrl: string;
  };

  terms_declined: {
    clientName: string;
    /** Back to the app, which is told the user declined (access_denied). */
    returnUrl: string;
    /** The preference center, open without accepting (data rights do not wait on the terms). */
    accountUrl: string;
  };
  stats: {
    /** The period shown, e.g. "1 May 2026 – 30 May 2026". */
    rangeLabel: string;
    /** Links to other periods (GET, no form): the last 7, 30 and 90 days. */
    ranges: { label: string; url: string; current: boolean }[];
    screensets: {
      id: string;
      title: string;
      /** No screen-set in use has this id any more; its history is still shown. */
      retired: boolean;
      questions: StatsQuestionView[];
    }[];
  };
  demo: {
    signedIn: boolean;
    loginUrl: string;
    logoutUrl?: string;
    /** Pretty-printed JSON. */
    idTokenClaims?: string;
    /** Pretty-printed JSON. */
    userinfo?: string;
    error?: string;
  };
}
