import pino, { type Logger } from 'pino';
import type { Config } from './config/schema.ts';

// JSON lines by default. Anything that could carry a secret is redacted by path as a second
// line of defence; the first is never logging bodies, query strings or headers.
export function createLogger(config: Pick<Config, 'logging'>): Logger {
  return pino({
    level: config.logging.level,
    base: { service: 'parley' },
    redact: {
      paths: ['password', '*.password', 'token', '*.token', 'headers.authorization', 'headers.cookie', 'client_secret', '*.client_secret'],
      censor: '[redacted]',
    },
    ...(config.logging.pretty ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'service' } } } : {}),
  });
}

export type { Logger };
