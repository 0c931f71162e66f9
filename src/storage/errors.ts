// What can fail in storage itself rather than in what is asked of it. Neither is anyone's input
// mistake: an unreachable database is retried by the client (isDatabaseUnavailable in
// database.ts recognizes the drivers' own errors), an unreadable sealed value needs the operator.
export const STORAGE_ERROR_CODES = [
  /** The database cannot be reached, or lost the connection mid-request. */
  'database_unavailable',
  /** A value sealed at rest (sealed.ts) cannot be opened with the configured secret. */
  'sealed_value_unreadable',
] as const;

declare module '../errors.ts' {
  interface ErrorCodes { storage: (typeof STORAGE_ERROR_CODES)[number] }
}
