// Alerts by email. The channel takes an EmailSender so the message format stays apart from the
// transport: smtp.ts (nodemailer, under Node and Deno alike) in production.
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
