// What Parley knows about the big providers, so that an operator names one (`preset: google`)
// instead of copying endpoints and learning each one's quirks the hard way. Plain data: the
// configuration schema reads it to validate entries, the upstream client to behave.

export const PRESET_NAMES = ['google', 'apple', 'microsoft', 'github'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

export const PROVIDER_TYPES = ['oidc', 'oauth2'] as const;
export type ProviderType = (typeof PROVIDER_TYPES)[number];

/**
 * Which claim (ID token or userinfo) or field (an OAuth 2.0 userinfo document) fills each part of
 * the identity. A list is tried in order, the first one present wins.
 */
export interface ClaimMapping {
  subject: string[];
  email: string[];
  email_verified: string[];
  name: string[];
  locale: string[];
}

export const STANDARD_CLAIMS: ClaimMapping = {
  subject: ['sub'],
  email: ['email'],
  email_verified: ['email_verified'],
  name: ['name'],
  locale: ['locale'],
};

export interface OAuth2Endpoints {
  authorization_endpoint: string;
  token_endpoint: string;
  userinfo_endpoint: string;
  /** GitHub: the user's addresses with their verified flags; the userinfo `email` is only the public one. */
  emails_endpoint?: string;
}

export interface Preset {
  type: ProviderType;
  name: string;
  /** oidc: the issuer identifier, from which the rest is discovered. */
  issuer?: string;
  /** oauth2: there is nothing to discover. */
  endpoints?: OAuth2Endpoints;
  scopes: string[];
  claims: ClaimMapping;
  /** Whether this provider's `email_verified` (or verified flag) proves the person controls the address. */
  trustEmailVerified: boolean;
  /** Whether an operator may set `trust_email_verified: true` for it anyway. */
  trustEmailVerifiedAllowed: boolean;
  responseMode?: 'form_post';
  /** The authorization parameter that pre-fills the account to sign in with, if the provider has one. */
  loginHintParameter?: string;
}

export const PRESETS: Record<PresetName, Preset> = {
  // Google. https://developers.google.com/identity/openid-connect/openid-connect and
  // https://developers.google.com/identity/openid-connect/reference
  // - The issuer is https://accounts.google.com. Google's reference notes that "accounts.google.com"
  //   (no scheme) also appears for legacy implementations; the authorization code flow with
  //   discovery gets the https form, and openid-client requires the exact discovered issuer.
  // - `sub` is "unique among all Google accounts and never reused"; `email` may change and is
  //   not a key. `email_verified` is Google's statement that the address was proven (a Gmail
  //   address, a Workspace address under the `hd` domain, or a consumer address confirmed by a
  //   link when the Google account was made with it), so it is believed.
  google: {
    type: 'oidc',
    name: 'Google',
    issuer: 'https://accounts.google.com',
    scopes: ['openid', 'email', 'profile'],
    claims: STANDARD_CLAIMS,
    trustEmailVerified: true,
    trustEmailVerifiedAllowed: true,
    loginHintParameter: 'login_hint',
  },
  // Sign in with Apple. https://developer.apple.com/documentation/signinwithapple
  // - Issuer https://appleid.apple.com; there is no userinfo endpoint: everything is in the ID token.
  // - Asking for `name` or `email` requires response_mode=form_post: Apple POSTs code and state
  //   (a cross-site POST, so SameSite=Lax cookies do not come with it) to the redirect URI.
  // - The name arrives only on the first authorization, as the posted `user` field, JSON such as
  //   {"name":{"firstName":"…","lastName":"…"},"email":"…"}. It is not signed: it is used for the
  //   display name and nothing else, and never again after the first time.
  // - The client secret is not a fixed string but an ES256 JWT signed with the team's .p8 key:
  //   iss = team ID, sub = client ID (the Services ID), aud = https://appleid.apple.com, kid = key
  //   ID, exp at most 15777000 s (6 months) after iat. Parley signs and renews it (apple-secret.ts).
  // - `email_verified` and `is_private_email` have been sent as the strings "true"/"false". Apple
  //   verifies every address it hands out, including private relay ones
  //   (…@privaterelay.appleid.com), which forward only mail from domains the team registered with
  //   the private email relay service: register Parley's sending domain, or its mail is lost.
  apple: {
    type: 'oidc',
    name: 'Apple',
    issuer: 'https://appleid.apple.com',
    scopes: ['openid', 'email', 'name'],
    claims: { ...STANDARD_CLAIMS, name: [], locale: [] },
    trustEmailVerified: true,
    trustEmailVerifiedAllowed: true,
    responseMode: 'form_post',
  },
  // Microsoft identity platform (Entra ID work and school accounts, and personal Microsoft accounts).
  // https://learn.microsoft.com/entra/identity-platform/id-token-claims-reference
  // - The issuer depends on `tenant`: https://login.microsoftonline.com/{tenant}/v2.0. For the
  //   multi-tenant endpoints (common, organizations) discovery answers with the template issuer
  //   https://login.microsoftonline.com/{tenantid}/v2.0; each ID token's `iss` must be that
  //   template with the token's own `tid` (openid-client does this for login.microsoftonline.com,
  //   and upstream.ts checks it again). `allowed_tenants` restricts which `tid`s may sign in.
  // - `email` "isn't guaranteed to be correct and is mutable over time. Never use it for
  //   authorization": any tenant administrator can put any address on a user. It is a suggestion
  //   only, never trusted as verified, and an operator cannot turn that on.
  // - `sub` is pairwise (unique to the user and this app) and immutable: the key.
  microsoft: {
    type: 'oidc',
    name: 'Microsoft',
    scopes: ['openid', 'email', 'profile'],
    claims: STANDARD_CLAIMS,
    trustEmailVerified: false,
    trustEmailVerifiedAllowed: false,
    loginHintParameter: 'login_hint',
  },
  // GitHub: OAuth 2.0, not OpenID Connect (no ID token, no discovery).
  // https://docs.github.com/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps
  // https://docs.github.com/rest/users/users#get-the-authenticated-user
  // https://docs.github.com/rest/users/emails#list-email-addresses-for-the-authenticated-user
  // - The user is GET https://api.github.com/user; its numeric `id` is the key (`login` can be
  //   renamed), `name` may be empty (then `login`), and `email` is only the public address, if any.
  // - Addresses come from GET /user/emails (scope user:email): Parley takes the one with
  //   primary=true AND verified=true; GitHub sets verified after the user followed its link.
  // - PKCE with S256 is supported since July 2025. The token endpoint answers errors such as
  //   bad_verification_code with status 200, and wants Accept: application/json.
  // - Endpoints can be overridden for GitHub Enterprise Server (https://HOST/login/oauth/…, https://HOST/api/v3/…).
  github: {
    type: 'oauth2',
    name: 'GitHub',
    endpoints: {
      authorization_endpoint: 'https://github.com/login/oauth/authorize',
      token_endpoint: 'https://github.com/login/oauth/access_token',
      userinfo_endpoint: 'https://api.github.com/user',
      emails_endpoint: 'https://api.github.com/user/emails',
    },
    scopes: ['read:user', 'user:email'],
    claims: { subject: ['id'], email: [], email_verified: [], name: ['name', 'login'], locale: [] },
    trustEmailVerified: true,
    trustEmailVerifiedAllowed: true,
  },
};

/** https://login.microsoftonline.com/{tenant}/v2.0, the Microsoft issuer to discover from. */
export function microsoftIssuer(tenant: string): string {
  return `https://login.microsoftonline.com/${tenant}/v2.0`;
}

/** The placeholder of Microsoft's multi-tenant issuer, replaced by each token's `tid`. */
export const TENANT_PLACEHOLDER = '{tenantid}';

/** The tenant of personal Microsoft accounts (outlook.com, xbox …), as `tid` says it. */
export const MICROSOFT_CONSUMER_TENANT = '9188040d-6c67-4c5b-b112-36a304b66dad';

/**
 * Parley talks to upstream providers over https only, except to this machine, where a development
 * provider (Demo ID) runs on plain http. The schema checks configured URLs with it; the client
 * checks every request it sends, including to endpoints a discovery document names.
 */
export function isSecureOrLoopback(url: URL): boolean {
  if (url.protocol === 'https:') return true;
  return url.protocol === 'http:' && ['localhost', '127.0.0.1', '::1'].includes(url.hostname.replace(/^\[(.*)\]$/, '$1'));
}

/** Authorization parameters Parley sets itself; configuration may not override them. */
export const RESERVED_AUTHORIZATION_PARAMETERS = [
  'client_id', 'redirect_uri', 'response_type', 'response_mode', 'scope', 'state', 'nonce',
  'code_challenge', 'code_challenge_method', 'request', 'request_uri',
];
