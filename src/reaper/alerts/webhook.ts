// Alerts to a webhook as Slack-compatible JSON ({ text, blocks }): Slack, Mattermost, Discord's
// /slack endpoint and most chat tools accept it.
import type { AlertChannel, AlertMessage } from "../monitor.ts";

export function webhookChannel(url: string, fetchImpl: typeof fetch = fetch): AlertChannel {
  return {
    name: "webhook",
    async send(message: AlertMessage): Promise<void> {
      const res = await fetchImpl(url, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          text: message.text,
          blocks: [
            { type: "header", text: { type: "plain_text", text: message.subject } },
            { type: "section", text: { type: "mrkdwn", text: message.text.split("\n\n").slice(1).join("\n\n") } },
          ],
        }),
        signal: AbortSignal.timeout(10_000),
      });
      await res.body?.cancel();
      if (!res.ok) throw new Error(`webhook answered ${res.status}`);
    },
  };
}
