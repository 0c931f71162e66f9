import { randomBytes } from 'node:crypto';
import pino from 'pino';
import type { Config } from '../../src/config/schema.ts';
import { createDeliveryWorker, type DeliveryWorker } from '../../src/events/worker.ts';
import type { Logger } from '../../src/logger.ts';
import { createMailer, readMailbox, type Mailer, type MailboxMessage } from '../../src/mail/mailer.ts';
import { createMailOutbox, type MailOutbox } from '../../src/mail/outbox.ts';
import type { DB } from '../../src/storage/database.ts';

export interface TestMail {
  /** What services queue mail with. */
  outbox: MailOutbox;
  /** The delivery worker, sending nothing but this outbox's mail. */
  worker: DeliveryWorker;
  /** Sends the mail queued so far that is due. */
  deliver(): Promise<void>;
  /** The messages in config.mail.mailbox_dir to this address, once the mail queued so far has been sent. */
  mailsTo(email: string): Promise<MailboxMessage[]>;
}

/**
 * The mail outbox and a delivery worker that sends it, for tests that build the services
 * themselves. Its own delivery target, so that tests sharing a database (PostgreSQL) send only
 * the mail they queued themselves.
 */
export function testMail(input: { db: DB; config: Config; clock: () => Date; mailer?: Mailer; logger?: Logger }): TestMail {
  const logger = input.logger ?? pino({ level: 'silent' });
  const outbox = createMailOutbox({ config: input.config, endpointId: `mail-${randomBytes(6).toString('hex')}` });
  const mailer = input.mailer ?? createMailer(input.config.mail, logger, { timeoutSeconds: input.config.events.timeout, clock: input.clock });
  const worker = createDeliveryWorker({
    db: input.db, config: input.config, logger, clock: input.clock, mail: { outbox, mailer },
    signSet: () => Promise.reject(new Error('this worker sends mail only')),
  });
  const deliver = () => worker.drainMail();
  return {
    outbox, worker, deliver,
    async mailsTo(email) {
      await deliver();
      return (await readMailbox(input.config.mail.mailbox_dir)).filter((m) => m.to === email);
    },
  };
}
