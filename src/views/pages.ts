// The data each page template is rendered with: the contract between the HTTP routes and the
// views. Every text in here arrives already localized (or is the user's own input); templates
// take their fixed texts from the locale files. Like Kratos' UI nodes, a page is data, so the
// templates never format domain objects.

export const PAGE_NAMES = [
  'login', 'register', 'check_email', 'consent', 'logout', 'logged_out', 'verify_email',
  'forgot_password', 'reset_password', 'message', 'demo', 'profile',
] as const;

export type PageName = (typeof PAGE_NAMES)[number];

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
}

export interface PageData {
  login: {
    csrfToken: string;
    action: string;
    email?: string;
    /** Shown above the form as an alert. */
    error?: string;
    clientName?: string;
    registerUrl: string;
    forgotUrl: string;
  };
  register: {
    csrfToken: string;
    action: string;
    email?: string;
    name?: string;
    /** Field errors are shown beside their field; `form` above the form. */
    errors: { email?: string; password?: string; form?: string };
    loginUrl: string;
    passwordMinLength: number;
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
  };
  message: { title: string; message: string; requestId?: string; backUrl?: string };
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
