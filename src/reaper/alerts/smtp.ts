// Alert mail through nodemailer: the same package under Node (node_modules) and in the Deno edge
// function (`npm:nodemailer` in the function's import map), so one kept SMTP client serves both.
// Not web-standard (it needs TCP and TLS sockets); both runtimes provide them through node:net / node:tls.
import nodemailer from "nodemailer";
import type { EmailSender } from "./email.ts";

export interface SmtpOptions {
  host: string;
  /** 465 by default: implicit TLS, the port Supabase Edge Functions may reach. */
  port?: number;
  /** Implicit TLS from the first byte; default: on port 465. Otherwise STARTTLS when the server offers it. */
  secure?: boolean;
  user?: string;
  password?: string;
  /** PEM certificates to trust besides the system's (a private CA or a self-signed server). */
  ca?: string;
  /** Seconds for each stage (connect, greeting, idle socket). */
  timeoutSeconds?: number;
}

/** Ports hosted Supabase Edge Functions cannot reach: outbound SMTP on 25 and 587 is blocked there. */
export const EDGE_BLOCKED_SMTP_PORTS: readonly number[] = [25, 587];

export function smtpSender(opts: SmtpOptions): EmailSender & { close(): void } {
  const port = opts.port ?? 465;
  const ms = (opts.timeoutSeconds ?? 10) * 1000;
  const transport = nodemailer.createTransport({
    host: opts.host,
    port,
    secure: opts.secure ?? port === 465,
    auth: opts.user ? { user: opts.user, pass: opts.password ?? "" } : undefined,
    tls: opts.ca ? { ca: opts.ca } : undefined,
    connectionTimeout: ms,
    greetingTimeout: ms,
    socketTimeout: ms,
  });
  return {
    async send(mail) {
      await transport.sendMail({ from: mail.from, to: mail.to, subject: mail.subject, text: mail.text });
    },
    close() {
      transport.close();
    },
  };
}
