import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';

// Table types, one interface a table. Timestamps are timestamptz and come back as Date.
type CreatedAt = ColumnType<Date, Date | undefined, never>;
type Json<T> = ColumnType<T, string, string>;

/**
 * The ids of accounts and outbox events: UUIDs, made by Parley. Text of any other shape (from a
 * URL, a cursor, an API body) names none of them, and is refused before it reaches a query.
 */
export const ID_FORMAT = /^[A-Za-z0-9._~-]{1,128}$/;

export interface AccountsTable {
  id: string;
  email: string;                       // lower-cased and NFKC-normalized; unique
  name: string | null;
  locale: string | null;
  password_hash: string | null;        // $argon2id$…, an imported $foreign$…, or null: no password (src/accounts/password-verifier.ts)
  email_verified_at: Date | null;
  /** The account's id in the system it was imported from, if any; unique. */
  external_id: ColumnType<string | null, string | null | undefined, string | null>;
  created_at: CreatedAt;
  updated_at: Date;
}

export type EmailTokenPurpose = 'verify_email' | 'reset_password' | 'change_email';

export interface EmailTokensTable {
  token_hash: string;                  // SHA-256 of the token: a stolen table grants nothing
  account_id: string;
  purpose: EmailTokenPurpose;
  interaction_uid: string | null;      // the sign-in that was waiting for this email, if any
  new_email: string | null;            // change_email: the address the token confirms
  expires_at: Date;
  used_at: Date | null;
  created_at: CreatedAt;
}

export interface LoginThrottleTable {
  key: string;                         // "account:<email>" or "ip:<address or IPv6 /64>"
  failures: number;
  last_failure_at: Date | null;        // null while the row holds only reservations
  blocked_until: Date | null;
  /** Password checks reserved and under way (src/accounts/throttle.ts). */
  in_flight: Generated<number>;
  reserved_at: Date | null;
}

/** Requests allowed a number of times per window (password reset mails), one row a key. */
export interface RequestLimitsTable {
  key: string;
  count: number;
  window_ends_at: Date;
}

export interface OidcPayloadsTable {
  model: string;
  id: string;
  payload: Json<Record<string, unknown>>;
  grant_id: string | null;
  account_id: string | null;           // lets grants, sessions and tokens be found per account
  user_code: string | null;
  uid: string | null;
  expires_at: Date | null;
  consumed_at: Date | null;
}

export interface SigningKeysTable {
  kid: string;
  alg: string;
  public_jwk: Json<Record<string, unknown>>;
  private_jwk_encrypted: string;       // AES-256-GCM under secrets.key_encryption
  created_at: CreatedAt;
  retired_at: Date | null;             // no longer signs; still published until publish_until
  publish_until: Date | null;
}

export type OutboxStatus = 'pending' | 'delivered' | 'dead';

export interface OutboxEventsTable {
  id: string;
  type: string;
  account_id: string | null;
  payload: Json<Record<string, unknown>>;
  status: Generated<OutboxStatus>;
  attempts: Generated<number>;
  created_at: CreatedAt;
  /** Write order: events of one account are delivered in it. */
  seq: Generated<string>;
  /** Set once the event's delivery rows exist (fanOut in src/events/deliveries.ts). */
  fanned_out_at: ColumnType<Date | null, never, Date>;
  /** The writing transaction (xid8, as text); set by the column default. */
  txid: ColumnType<string | null, never, never>;
}

/** Where a change came from: the question screen, the preference center, the management API. */
export type AnswerSource = 'screen' | 'preference_center' | 'api';
/** Rows an import brought in from another system, with their original times. */
export type ImportSource = 'import';

export interface AnswersTable {
  account_id: string;
  question_id: string;
  value: Json<unknown>;                // string | number | boolean | string[]
  purpose: string;                     // the purpose it was given under
  set_id: string;
  created_at: Date;
  updated_at: Date;
  // The purpose version the account's current consent to `purpose` grants; null: withdrawn or
  // never given. Kept equal to consent_current by triggers (migrations/2026-11-29T1500-segment-release.ts).
  consent_version: Generated<number | null>;
}

export interface AnswerHistoryTable {
  id: Generated<string>;
  account_id: string;
  question_id: string;
  value: Json<unknown> | null;         // null: deleted
  purpose: string;
  set_id: string;
  set_version: number;
  label: string;                       // the question as the user read it, in their locale
  locale: string;
  client_id: string | null;
  source: AnswerSource | 'retention' | ImportSource;
  recorded_at: Date;
}

export type PromptOutcome = 'shown' | 'answered' | 'skipped' | 'declined';

export interface PromptLogTable {
  id: Generated<string>;
  account_id: string;
  session_key: string;
  client_id: string;
  set_id: string;
  set_version: number;
  question_id: string;
  outcome: PromptOutcome;
  at: Date;
}

export interface RewardsTable {
  account_id: string;
  question_id: string;
  points: number | null;
  label: string;
  granted_at: Date;
}

export type ConsentAction = 'granted' | 'withdrawn';

export interface ConsentLedgerTable {
  id: Generated<string>;
  subject: string;                     // the account id, or a pseudonym after deletion
  purpose: string;
  purpose_version: number;
  action: ConsentAction;
  client_id: string | null;
  source: AnswerSource | ImportSource;
  locale: string;
  text_hash: string;
  at: Date;
}

/** Where a terms acceptance was given: on the registration form, or on the step of a later sign-in. */
export type TermsAcceptanceSource = 'registration' | 'sign_in';

export interface TermsAcceptancesTable {
  id: Generated<string>;
  subject: string;                     // the account id, or a pseudonym after deletion
  document_id: string;
  document_version: number;
  client_id: string | null;
  source: TermsAcceptanceSource;
  locale: string;
  text_hash: string;
  accepted_at: Date;
}

/** Where a signed-in session was seen from (the sessions list of /account/security). */
export interface SessionDevicesTable {
  session_uid: string;
  account_id: string;
  user_agent: string;
  /** The client address's /24 (IPv4) or /48 (IPv6). */
  ip_prefix: string;
  first_seen_at: Date;
  last_seen_at: Date;
}

/** The last "Sign in faster next time?" offer of a passkey after a password sign-in. */
export interface PasskeyOffersTable {
  account_id: string;
  offered_at: Date;
}

/** The latest consent_ledger row per (subject, purpose), written with each ledger row. */
export interface ConsentCurrentTable {
  subject: string;                     // as in the ledger: the account id, or a pseudonym after deletion
  purpose: string;
  action: ConsentAction;
  purpose_version: number;
  at: Date;
  ledger_id: string;                   // the consent_ledger row it reflects
}

export interface CommunicationLedgerTable {
  id: Generated<string>;
  account_id: string;
  channel: string;
  topic: string;
  enabled: boolean;
  source: AnswerSource | ImportSource;
  at: Date;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'dead' | 'disabled' | 'withheld';

/** One event for one webhook endpoint (src/events/). */
export interface DeliveriesTable {
  event_id: string;
  endpoint_id: string;
  account_id: string | null;
  seq: ColumnType<number, number | string, never>;
  type: string;
  status: DeliveryStatus;
  attempts: Generated<number>;
  next_attempt_at: Date;
  /** events.retry_for runs from here: the event's creation, or its replay. */
  retry_from: Date;
  locked_until: Date | null;
  lease_token: string | null;
  last_status: number | null;
  last_error: string | null;
  delivered_at: Date | null;
  updated_at: Date;
}

export interface WebhookEndpointsTable {
  id: string;
  url: string;
  config_hash: string;
  disabled_at: Date | null;
  disabled_reason: string | null;
  updated_at: Date;
}

export interface WebAuthnCredentialsTable {
  id: string;                          // the credential id, base64url
  account_id: string;
  public_key: Uint8Array;              // COSE-encoded
  counter: number;                     // the authenticator's signature counter (0: it keeps none)
  transports: Json<string[]>;
  backup_eligible: boolean;            // a synced ("multi-device") passkey; never changes
  backed_up: boolean;                  // its current backup state; refreshed at each use
  aaguid: string | null;               // the authenticator model, when it tells
  name: string | null;                 // given by the user
  created_at: CreatedAt;
  last_used_at: Date | null;
}

export type WebAuthnChallengePurpose = 'registration' | 'authentication';

export interface WebAuthnChallengesTable {
  challenge: string;                   // base64url, as sent in the options
  purpose: WebAuthnChallengePurpose;
  binding: string;                     // the sign-in or session it was issued to
  account_id: string | null;           // see the migration: no foreign key
  expires_at: Date;
  created_at: CreatedAt;
}

export interface TotpSecretsTable {
  account_id: string;
  secret_encrypted: string;            // AES-256-GCM under secrets.key_encryption
  confirmed_at: Date | null;           // null: enrolment waits for its first code
  last_used_step: number | null;       // RFC 6238 time-step of the last accepted code
  created_at: CreatedAt;
}

export interface RecoveryCodesTable {
  account_id: string;
  code_hash: string;                   // keyed hash: a copy of the table opens nothing
  created_at: CreatedAt;
  used_at: Date | null;
}

export type EmailCodePurpose = 'sign_in';

export interface EmailCodesTable {
  id: string;
  email: string;                       // normalized; with or without an account
  purpose: EmailCodePurpose;
  code_hash: string;                   // keyed hash of address, purpose and code
  attempts: Generated<number>;
  expires_at: Date;
  used_at: Date | null;
  created_at: CreatedAt;
  seq: Generated<number>;              // issue order: the newest code of an address is the one that counts
}

export interface SecondFactorThrottleTable {
  account_id: string;
  attempts: number;                    // second-factor attempts within the window, right ones cleared
  last_attempt_at: Date;
  blocked_until: Date | null;
}

/** An outside identity that signs in to an account: an upstream provider's (provider, subject). */
export interface IdentitiesTable {
  provider: string;
  subject: string;
  account_id: string;
  email: string | null;                // as the provider asserted it
  email_verified: Generated<boolean>;  // as the provider asserted it; trust is the provider's configuration
  linked_at: Date;
  last_used_at: Date | null;
}

/** A sign-in with an upstream provider in progress (src/federation/sign-ins.ts). */
export interface UpstreamSignInsTable {
  id: string;                          // SHA-256 (hex) of the state sent to the provider
  interaction_uid: string;
  provider: string;
  transaction: Json<Record<string, unknown>>;
  callback: ColumnType<Record<string, string> | null, string | null | undefined, string | null>;
  identity: ColumnType<Record<string, unknown> | null, string | null | undefined, string | null>;
  created_at: Date;
  expires_at: Date;
  used_at: ColumnType<Date | null, Date | null | undefined, Date | null>;
}

export interface Database {
  accounts: AccountsTable;
  email_tokens: EmailTokensTable;
  login_throttle: LoginThrottleTable;
  request_limits: RequestLimitsTable;
  oidc_payloads: OidcPayloadsTable;
  signing_keys: SigningKeysTable;
  outbox_events: OutboxEventsTable;
  answers: AnswersTable;
  answer_history: AnswerHistoryTable;
  prompt_log: PromptLogTable;
  rewards: RewardsTable;
  consent_ledger: ConsentLedgerTable;
  consent_current: ConsentCurrentTable;
  communication_ledger: CommunicationLedgerTable;
  deliveries: DeliveriesTable;
  webhook_endpoints: WebhookEndpointsTable;
  webauthn_credentials: WebAuthnCredentialsTable;
  webauthn_challenges: WebAuthnChallengesTable;
  totp_secrets: TotpSecretsTable;
  recovery_codes: RecoveryCodesTable;
  email_codes: EmailCodesTable;
  second_factor_throttle: SecondFactorThrottleTable;
  identities: IdentitiesTable;
  terms_acceptances: TermsAcceptancesTable;
  upstream_sign_ins: UpstreamSignInsTable;
  passkey_offers: PasskeyOffersTable;
  session_devices: SessionDevicesTable;
}

export type Account = Selectable<AccountsTable>;
export type NewOutboxEvent = Insertable<OutboxEventsTable>;
