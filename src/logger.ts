import pino, { type Logger } from 'pino';
import type { Config } from './config/schema.ts';

// JSON lines by default. Anything that could carry a secret is redacted by path as a second
// line of defence; the first is never logging bodies, query strings or headers.
export function createLogger(config: Pick<Config, 'logging' | 'env'>): Logger {
  const pretty = config.logging.pretty === 'auto'
    ? config.env === 'development' && process.stdout.isTTY === true
    : config.logging.pretty;
  return pino({
    level: config.logging.level,
    base: { service: 'parley' },
    redact: {
      paths: ['password', '*.password', 'token', '*.token', 'headers.authorization', 'headers.cookie', 'client_secret', '*.client_secret'],
      censor: '[redacted]',
    },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'service' } } } : {}),
  });
}

export type { Logger };
