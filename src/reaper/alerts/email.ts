// Alerts by email. Sending needs a TCP connection, which is not web-standard: the channel takes
// an EmailSender (the edge function's Deno SMTP client, or nodemailer under Node).
import type { AlertChannel, AlertMessage } from "../monitor.ts";

export interface EmailSender {
  send(mail: { from: string; to: string[]; subject: string; text: string }): Promise<void>;
}

export function emailChannel(sender: EmailSender, from: string, to: string[]): AlertChannel {
  return {
    name: "email",
    async send(message: AlertMessage): Promise<void> {
      await sender.send({ from, to, subject: `[taskwarden] ${message.subject}`, text: message.text });
    },
  };
}
