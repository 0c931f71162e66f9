import { createServer, type Socket } from 'node:net';

// A mail server on loopback, as much of SMTP (RFC 5321) as a client sending one message needs:
// greeting, EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT. It keeps what it receives, and can
// refuse every message with a temporary error instead, as a mail server in trouble does.

export interface ReceivedMail {
  from: string;
  to: string[];
  /** The message as sent: headers and body, dot-stuffing undone. */
  data: string;
}

export interface SmtpServer {
  port: number;
  /** For mail.smtp_url. */
  url: string;
  received: ReceivedMail[];
  /** While set, each message is refused at DATA with this reply (e.g. "451 4.3.0 try again later"). */
  refuseWith: string | undefined;
  close(): Promise<void>;
}

export async function startSmtpServer(options: { port?: number } = {}): Promise<SmtpServer> {
  const sockets = new Set<Socket>();
  const state: SmtpServer = {
    port: 0, url: '', received: [], refuseWith: undefined,
    close: () => new Promise((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }),
  };

  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.setEncoding('utf8');
    const reply = (line: string) => { if (!socket.destroyed) socket.write(`${line}\r\n`); };
    let envelope: { from: string; to: string[] } = { from: '', to: [] };
    let data: string[] | undefined;
    let buffered = '';
    reply('220 smtp.test ESMTP ready');
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let end: number;
      while ((end = buffered.indexOf('\r\n')) >= 0) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        if (data) {
          if (line !== '.') {
            data.push(line.startsWith('.') ? line.slice(1) : line);
            continue;
          }
          const message = { ...envelope, data: data.join('\r\n') };
          data = undefined;
          envelope = { from: '', to: [] };
          if (state.refuseWith) reply(state.refuseWith);
          else {
            state.received.push(message);
            reply('250 2.0.0 queued');
          }
          continue;
        }
        const [verb = '', ...rest] = line.split(' ');
        const argument = rest.join(' ');
        switch (verb.toUpperCase()) {
          case 'EHLO': reply('250-smtp.test'); reply('250 8BITMIME'); break;
          case 'HELO': reply('250 smtp.test'); break;
          case 'MAIL': envelope.from = argument.replace(/^FROM:\s*/i, '').replace(/[<>]/g, '').split(' ')[0] ?? ''; reply('250 2.1.0 ok'); break;
          case 'RCPT': envelope.to.push(argument.replace(/^TO:\s*/i, '').replace(/[<>]/g, '').split(' ')[0] ?? ''); reply('250 2.1.5 ok'); break;
          case 'DATA': data = []; reply('354 end data with <CR><LF>.<CR><LF>'); break;
          case 'RSET': envelope = { from: '', to: [] }; reply('250 2.0.0 ok'); break;
          case 'NOOP': reply('250 2.0.0 ok'); break;
          case 'QUIT': reply('221 2.0.0 bye'); socket.end(); break;
          default: reply('502 5.5.2 command not implemented');
        }
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  state.port = (server.address() as { port: number }).port;
  state.url = `smtp://127.0.0.1:${state.port}`;
  return state;
}

/** The text part of a received message, quoted-printable undone: where the links are. */
export function textOf(mail: ReceivedMail): string {
  const body = mail.data.slice(mail.data.indexOf('\r\n\r\n') + 4);
  return body.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));
}
