// The alert channels the configuration asks for, built one way for the edge function and the Node
// in-process reaper, so both alert alike (de-duplicated in SQL by sync_alerts / mark_alerts_sent).
import type { Config } from "../../config.ts";
import type { AlertChannel } from "../monitor.ts";
import { emailChannel } from "./email.ts";
import { smtpSender } from "./smtp.ts";
import { webhookChannel } from "./webhook.ts";

export type AlertConfig = Pick<
  Config,
  | "ALERT_WEBHOOK_URL"
  | "HEARTBEAT_MONITOR_ALERT_EMAIL"
  | "EMAIL_FROM"
  | "SMTP_HOST"
  | "SMTP_PORT"
  | "SMTP_SECURE"
  | "SMTP_TLS_CA"
  | "SMTP_USER"
  | "SMTP_PASSWORD"
>;

/** Webhook first, then email; none when nothing is configured (the schema enforces complete settings). */
export function alertChannels(config: AlertConfig): AlertChannel[] {
  const channels: AlertChannel[] = [];
  if (config.ALERT_WEBHOOK_URL) channels.push(webhookChannel(config.ALERT_WEBHOOK_URL));
  if (config.HEARTBEAT_MONITOR_ALERT_EMAIL && config.SMTP_HOST && config.EMAIL_FROM) {
    const sender = smtpSender({
      host: config.SMTP_HOST,
      port: config.SMTP_PORT,
      secure: config.SMTP_SECURE,
      user: config.SMTP_USER,
      password: config.SMTP_PASSWORD,
      ca: config.SMTP_TLS_CA,
    });
    channels.push(emailChannel(sender, config.EMAIL_FROM, config.HEARTBEAT_MONITOR_ALERT_EMAIL));
  }
  return channels;
}
