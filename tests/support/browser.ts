// A minimal browser for protocol tests: a cookie jar, manual redirects and form posts.
// The real-browser test uses Chromium; this one lets the OIDC tests see every hop.

export interface Page { url: string; status: number; html: string; headers: Headers }

export type FormFields = Record<string, string | string[]>;

export class HttpBrowser {
  readonly cookies = new Map<string, string>();
  readonly headers: Record<string, string>;

  constructor(headers: Record<string, string> = {}) {
    this.headers = headers;
  }

  #store(response: Response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(line)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  #cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  /** One request, no redirects followed. */
  async request(url: string, init: { method?: string; form?: FormFields; headers?: Record<string, string> } = {}): Promise<Response> {
    const headers: Record<string, string> = { ...this.headers, ...init.headers, cookie: this.#cookieHeader() };
    let body: string | undefined;
    if (init.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      const params = new URLSearchParams();
      // A list is one field sent several times, as checkboxes with one name are.
      for (const [name, value] of Object.entries(init.form)) for (const v of [value].flat()) params.append(name, v);
      body = params.toString();
    }
    const response = await fetch(url, { method: init.method ?? (body ? 'POST' : 'GET'), headers, body, redirect: 'manual' });
    this.#store(response);
    return response;
  }

  /**
   * Follows redirects until a page is shown or a URL starting with `stopAt` is reached (an app's
   * callback, which is never fetched).
   */
  async navigate(url: string, init: { form?: FormFields } = {}, stopAt?: string): Promise<Page> {
    let response = await this.request(url, init);
    let current = url;
    for (let hops = 0; hops < 20 && response.status >= 300 && response.status < 400; hops++) {
      current = new URL(response.headers.get('location')!, current).href;
      if (stopAt && current.startsWith(stopAt)) return { url: current, status: response.status, html: '', headers: response.headers };
      response = await this.request(current);
    }
    return { url: current, status: response.status, html: await response.text(), headers: response.headers };
  }

  /** Fills and submits the form whose action contains `actionPart`, with its hidden fields. */
  async submit(page: Page, actionPart: string, fields: FormFields, stopAt?: string): Promise<Page> {
    const form = findForm(page.html, actionPart);
    const action = new URL(form.action.replaceAll('&amp;', '&'), page.url).href;
    return this.navigate(action, { form: { ...form.hidden, ...fields } }, stopAt);
  }
}

export function findForm(html: string, actionPart: string): { action: string; hidden: Record<string, string> } {
  for (const match of html.matchAll(/<form\b[^>]*>([\s\S]*?)<\/form>/g)) {
    const action = /action="([^"]*)"/.exec(match[0])?.[1];
    if (action === undefined || !action.includes(actionPart)) continue;
    const hidden: Record<string, string> = {};
    for (const input of match[1]!.matchAll(/<input\b[^>]*type="hidden"[^>]*>/g)) {
      const name = /name="([^"]*)"/.exec(input[0])?.[1];
      const value = /value="([^"]*)"/.exec(input[0])?.[1];
      if (name) hidden[name] = decodeEntities(value ?? '');
    }
    return { action, hidden };
  }
  throw new Error(`no form with an action containing "${actionPart}" in:\n${html.slice(0, 2000)}`);
}

function decodeEntities(text: string): string {
  return text.replaceAll('&amp;', '&').replaceAll('&quot;', '"').replaceAll('&#x27;', "'").replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&#x3D;', '=');
}
