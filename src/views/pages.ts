// The data each page template is rendered with: the contract between the HTTP routes and the
// views. Every text in here arrives already localized (or is the user's own input); templates
// take their fixed texts from the locale files. Like Kratos' UI nodes, a page is data, so the
// templates never format domain objects.

export const PAGE_NAMES = [
  'login', 'register', 'check_email', 'consent', 'logout', 'logged_out', 'verify_email',
  'forgot_password', 'reset_password', 'message', 'demo',
] as const;

export type PageName = (typeof PAGE_NAMES)[number];

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
