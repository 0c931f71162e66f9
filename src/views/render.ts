import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Handlebars from 'handlebars';
import { bundledMessages, direction, languageName, translate, type MessageVars } from './i18n.ts';
import { PAGE_NAMES, type LayoutData, type PageData, type PageName } from './pages.ts';

const VIEWS_DIR = fileURLToPath(new URL('.', import.meta.url));

/** The stylesheet and anything else served under /assets/. */
export const ASSETS_DIR = path.join(VIEWS_DIR, 'assets');

export interface RendererOptions {
  defaultLocale: string;
  supported: readonly string[];
  /** URL path the assets are served under; no trailing slash. */
  assetsPath?: string;
}

export interface Renderer {
  render<P extends PageName>(page: P, locale: string, data: PageData[P], layout?: LayoutData): string;
  t(locale: string, key: string, vars?: MessageVars): string;
}

// knownHelpersOnly: a mustache is either the `t` helper, a built-in block helper or a plain data
// lookup, so a typo cannot silently call something else. explicitPartialContext: a partial sees
// only the parameters it is given, never the page's data, so a page's own `error` or `dir`
// cannot leak into a form field.
const COMPILE_OPTIONS: CompileOptions = {
  knownHelpers: { t: true },
  knownHelpersOnly: true,
  explicitPartialContext: true,
};

/**
 * Reads and parses every template now (a syntax error stops the start and names the file);
 * Handlebars compiles each on its first use, once. Rendering a page touches no files. A locale in
 * `supported` without a message file is a configuration mistake that would show pages labelled
 * with one language and written in another, so it stops the start.
 */
export function createRenderer({ defaultLocale, supported, assetsPath = '/assets' }: RendererOptions): Renderer {
  const messages = bundledMessages();
  const missing = [...new Set([defaultLocale, ...supported])].filter((locale) => !messages[locale]);
  if (missing.length > 0) {
    throw new Error(`no messages for locale ${missing.join(', ')}: add src/views/locales/<locale>.json or remove it from locales.supported`);
  }

  const t = (locale: string, key: string, vars?: MessageVars) => translate(locale, key, vars, defaultLocale);

  const hbs = Handlebars.create();
  hbs.registerHelper('t', (key: unknown, options: Handlebars.HelperOptions) => {
    if (typeof key !== 'string') throw new Error(`{{t}} needs a message key, got ${String(key)}`);
    const root = options.data.root as RenderContext;
    return t(root.locale, key, definedVars(options.hash as Record<string, unknown>));
  });
  hbs.registerPartial('layout', compile(hbs, path.join(VIEWS_DIR, 'layouts', 'main.hbs')));
  const partialsDir = path.join(VIEWS_DIR, 'partials');
  for (const file of readdirSync(partialsDir).filter((f) => f.endsWith('.hbs'))) {
    hbs.registerPartial(path.basename(file, '.hbs'), compile(hbs, path.join(partialsDir, file)));
  }
  const pages = new Map(PAGE_NAMES.map((name) => [name, compile(hbs, path.join(VIEWS_DIR, 'pages', `${name}.hbs`))]));
  // Each language named in itself ("עברית", "ไทย"): whoever cannot read the current page can still find theirs.
  const languages = supported.map((code) => ({ code, name: languageName(code), dir: direction(code) }));

  return {
    render(page, requestedLocale, data, layout = {}) {
      // pickLocale only returns supported locales; anything else is shown in the default one, and
      // labelled as such.
      const locale = messages[requestedLocale] ? requestedLocale : defaultLocale;
      // A message and a profiling screen (titled by its screen-set) bring their own title.
      const pageTitle = page === 'message' || page === 'profile'
        ? (data as PageData['message' | 'profile']).title
        : t(locale, `title.${page}`);
      const context: RenderContext = {
        ...data,
        page,
        locale,
        dir: direction(locale),
        assetsPath,
        pageTitle,
        // The "Error:" prefix makes a re-shown form announce its problem as soon as it loads.
        documentTitle: t(locale, hasErrors(data) ? 'page.title_error' : 'page.title', { title: pageTitle }),
        // The demo stands for someone else's app, so it does not wear Parley's name.
        showBrand: page !== 'demo',
        localeSwitch: layout.localeSwitch
          ? { ...layout.localeSwitch, locales: languages.map((l) => ({ ...l, current: l.code === locale })) }
          : undefined,
      };
      return pages.get(page)!(context);
    },
    t,
  };
}

interface RenderContext {
  page: PageName;
  locale: string;
  dir: 'rtl' | 'ltr';
  assetsPath: string;
  pageTitle: string;
  documentTitle: string;
  showBrand: boolean;
  localeSwitch: (NonNullable<LayoutData['localeSwitch']> & { locales: { code: string; name: string; dir: 'rtl' | 'ltr'; current: boolean }[] }) | undefined;
}

/** Parses now, so a syntax error stops the start and names its file; Handlebars compiles on first use, once. */
function compile(env: typeof Handlebars, file: string): Handlebars.TemplateDelegate {
  try {
    return env.compile(env.parse(readFileSync(file, 'utf8')), COMPILE_OPTIONS);
  } catch (error) {
    throw new Error(`${file}: ${(error as Error).message}`, { cause: error });
  }
}

function hasErrors(data: object): boolean {
  if ('error' in data && data.error) return true;
  return 'errors' in data && Object.values(data.errors as object).some(Boolean);
}

/** Helper arguments such as `seconds=retryAfter` may be missing; a missing one stays visible as {seconds}. */
function definedVars(hash: Record<string, unknown>): MessageVars {
  const vars: MessageVars = {};
  for (const [name, value] of Object.entries(hash)) {
    if (typeof value === 'string' || typeof value === 'number') vars[name] = value;
  }
  return vars;
}
