// The Node in-process reaper (ReaperLoop, as `npm start` runs it) alerts like the edge function:
// the same channels built from the same variables, one message per problem and channel however
// many reaps see it (sync_alerts / mark_alerts_sent), a failing channel retried without holding up
// the others or the reaps. Real SMTP over implicit TLS and a real webhook receiver on loopback.
import { setTimeout } from "node:timers/promises";
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from "node:net";
import postgres from "postgres";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.ts";
import { alertChannels } from "../src/reaper/alerts/index.ts";
import { emailChannel } from "../src/reaper/alerts/email.ts";
import { smtpSender } from "../src/reaper/alerts/smtp.ts";
import { ReaperLoop } from "../src/reaper/loop.ts";
import { deliverAlerts, type AlertChannel, type AlertMessage, type ChannelReport } from "../src/reaper/monitor.ts";
import { connect, type Taskwarden } from "../src/rpc/index.ts";
import { alertEnv, startSmtpSink, startWebhookSink, type SmtpSink, type WebhookSink } from "./support/alert-sinks.ts";
import { freshDatabase } from "./support/db.ts";
import { deferred } from "./support/wait.ts";

let smtp: SmtpSink;
let webhook: WebhookSink;
const opened: { sql: postgres.Sql; tw: Taskwarden }[] = [];
const loops: ReaperLoop[] = [];

beforeAll(async () => {
  smtp = await startSmtpSink();
  webhook = await startWebhookSink();
});
afterEach(async () => {
  await Promise.all(loops.splice(0).map((l) => l.stop()));
});
afterAll(async () => {
  for (const { sql, tw } of opened) await Promise.allSettled([tw.close(), sql.end({ timeout: 5 })]);
  await Promise.allSettled([smtp?.close(), webhook?.close()]);
});

async function database(url?: string) {
  url ??= await freshDatabase();
  const db = { url, sql: postgres(url, { max: 1, onnotice: () => {} }), tw: await connect({ DATABASE_URL: url }) };
  opened.push(db);
  return db;
}

/** A worker that stopped beating 7 minutes ago while holding a task (dead, not yet old enough to be cleaned up). */
async function deadWorker(sql: postgres.Sql, id: string): Promise<number> {
  await sql`select 1 from taskwarden.upsert_worker_heartbeat(${id}, 'mail', 'processing', current_task => 'newsletter')`;
  await sql`select taskwarden.enqueue_task('mail', '{}')`;
  const [task] = await sql`select id from taskwarden.claim_tasks(${id}, array['mail'])`;
  await sql`update taskwarden.worker_heartbeats set last_heartbeat_at = now() - interval '7 minutes' where worker_id = ${id}`;
  return Number(task.id);
}

const reaps = async (sql: postgres.Sql) => (await sql`select count(*)::int as n from taskwarden.reaper_runs where source = 'local'`)[0].n as number;

const smtpEnv = (extra: Record<string, string> = {}) => ({
  ...alertEnv(smtp, webhook),
  ...extra,
});

describe("ReaperLoop with alert channels", () => {
  it("sends one email and one webhook message for a dead worker across many reaps, then one recovery", async () => {
    const { sql, tw } = await database();
    const mailsBefore = smtp.mails.length;
    const hooksBefore = webhook.hooks.length;
    const task = await deadWorker(sql, "mailer-1#b1");
    const reports: ChannelReport[][] = [];
    const errors: unknown[] = [];
    const loop = new ReaperLoop({
      client: tw,
      intervalMs: 100,
      channels: alertChannels(loadConfig(smtpEnv())),
      onAlerts: (r) => reports.push(r),
      onError: (e) => errors.push(e),
    });
    loops.push(loop);
    loop.start();

    await expect.poll(() => smtp.mails.length - mailsBefore, { timeout: 30_000 }).toBe(1);
    await expect.poll(() => webhook.hooks.length - hooksBefore, { timeout: 30_000 }).toBe(1);
    const seen = await reaps(sql);
    await expect.poll(() => reaps(sql), { timeout: 30_000 }).toBeGreaterThanOrEqual(seen + 10);
    expect(smtp.mails.length - mailsBefore).toBe(1);
    expect(webhook.hooks.length - hooksBefore).toBe(1);

    const mail = smtp.mails[mailsBefore]!;
    expect(mail.data).toMatch(/^Subject: \[taskwarden\] Dead workers detected \(1\)$/m);
    expect(mail.text).toMatch(/mailer-1#b1 \(mail\): last seen 7 min ago, working on newsletter/);
    expect(webhook.hooks[hooksBefore]!.body.text).toMatch(/^Dead workers detected \(1\)/);
    expect((await sql`select status from taskwarden.tasks where id = ${task}`)[0].status).toBe("queued");

    await sql`select 1 from taskwarden.upsert_worker_heartbeat('mailer-1#b1', 'mail', 'idle')`;
    await expect.poll(() => smtp.mails.length - mailsBefore, { timeout: 30_000 }).toBe(2);
    await expect.poll(() => webhook.hooks.length - hooksBefore, { timeout: 30_000 }).toBe(2);
    expect(smtp.mails[mailsBefore + 1]!.data).toMatch(/^Subject: \[taskwarden\] Workers recovered \(1\)$/m);
    expect(reports.flat().every((r) => r.failed === 0)).toBe(true);
    expect(errors).toEqual([]);
  }, 120_000);

  it("an SMTP server whose certificate is not trusted fails the email only; it is retried, the webhook goes out once", async () => {
    const { sql, tw } = await database();
    const mailsBefore = smtp.mails.length;
    const hooksBefore = webhook.hooks.length;
    await deadWorker(sql, "mailer-2#b1");
    const reports: ChannelReport[][] = [];
    const loop = new ReaperLoop({
      client: tw,
      intervalMs: 100,
      // Without SMTP_TLS_CA the self-signed certificate is refused, as it should be.
      channels: alertChannels(loadConfig(smtpEnv({ SMTP_TLS_CA: "" }))),
      onAlerts: (r) => reports.push(r),
    });
    loops.push(loop);
    loop.start();
    await expect.poll(() => reports.filter((r) => r.find((c) => c.channel === "email")?.failed).length, { timeout: 30_000 })
      .toBeGreaterThanOrEqual(2);
    const email = reports.flat().find((r) => r.channel === "email" && r.failed)!;
    expect(email.error).toMatch(/certificate/i);
    expect(smtp.mails.length).toBe(mailsBefore);
    expect(webhook.hooks.length - hooksBefore).toBe(1);
    const open = await sql`select channel, open_sent_at is not null as sent from taskwarden.alerts order by channel`;
    expect(open.map((r) => [r.channel, r.sent])).toEqual([["email", false], ["webhook", true]]);
  }, 120_000);

  it("two reapers delivering at once (the edge function and npm start) send each message once", async () => {
    const first = await database();
    const second = await database(first.url);
    await deadWorker(first.sql, "mailer-4#b1");
    // A slow channel: each send waits until the other reaper has sent too, or 3 s. Two deliveries
    // of one alert would both be in flight here, not one after the other.
    const sent: AlertMessage[] = [];
    const bothSent = deferred();
    const slow: AlertChannel = {
      name: "webhook",
      async send(message) {
        sent.push(message);
        if (sent.length === 2) bothSent.resolve();
        await Promise.race([bothSent.promise, setTimeout(3_000)]);
      },
    };
    const reports = await Promise.all([first, second].map((db) => deliverAlerts(db.tw.transport, [slow])));
    expect(sent).toHaveLength(1);
    expect(reports.map((r) => r[0]!.sent).sort()).toEqual([0, 1]);
    // Delivered once and marked: neither reaper offers it again.
    expect(await deliverAlerts(second.tw.transport, [slow])).toEqual([{ channel: "webhook", sent: 0, failed: 0 }]);
    expect(sent).toHaveLength(1);
  }, 60_000);

  it("a failed delivery is offered again at once; one whose reaper died, after the delivery lease", async () => {
    const { sql, tw } = await database();
    await deadWorker(sql, "mailer-5#b1");
    const failing: AlertChannel = { name: "webhook", send: async () => { throw new Error("receiver down"); } };
    const [failed] = await deliverAlerts(tw.transport, [failing]);
    expect(failed).toMatchObject({ channel: "webhook", sent: 0, failed: 1, error: "receiver down" });
    const sent: AlertMessage[] = [];
    const ok: AlertChannel = { name: "webhook", send: async (m) => void sent.push(m) };
    expect((await deliverAlerts(tw.transport, [ok]))[0]).toMatchObject({ sent: 1, failed: 0 });

    // A reaper that took an alert to deliver and died before marking it: the alert is offered
    // again once its delivery lease has passed, not before.
    await sql`select 1 from taskwarden.upsert_worker_heartbeat('mailer-6#b1', 'mail', 'idle')`;
    await sql`update taskwarden.worker_heartbeats set last_heartbeat_at = now() - interval '7 minutes' where worker_id = 'mailer-6#b1'`;
    const taken = await tw.syncAlerts({ channels: ["webhook"] });
    expect(taken.map((a) => a.subject)).toEqual(["mailer-6#b1"]);
    expect((await deliverAlerts(tw.transport, [ok]))[0]).toMatchObject({ sent: 0 });
    await sql`update taskwarden.alerts set delivering_until = now() - interval '1 second' where subject = 'mailer-6#b1'`;
    expect((await deliverAlerts(tw.transport, [ok]))[0]).toMatchObject({ sent: 1 });
    expect(sent.map((m) => m.alerts[0]!.subject)).toEqual(["mailer-5#b1", "mailer-6#b1"]);
  }, 60_000);

  it("an SMTP server that never answers holds up no reap", async () => {
    const { sql, tw } = await database();
    await deadWorker(sql, "mailer-3#b1");
    const sockets: Socket[] = [];
    const silent: TcpServer = createTcpServer((s) => void sockets.push(s));
    await new Promise<void>((ok) => silent.listen(0, "127.0.0.1", ok));
    try {
      const port = (silent.address() as { port: number }).port;
      const sender = smtpSender({ host: "127.0.0.1", port, secure: false, timeoutSeconds: 8 });
      const reports: ChannelReport[][] = [];
      const loop = new ReaperLoop({ client: tw, intervalMs: 100, channels: [emailChannel(sender, "a@example.com", ["b@example.com"])],
                                    onAlerts: (r) => reports.push(r) });
      loops.push(loop);
      const started = Date.now();
      loop.start();
      await expect.poll(() => sockets.length, { timeout: 10_000 }).toBe(1);
      // While the one alert round waits for a greeting, reaps go on every 100 ms.
      await expect.poll(() => reaps(sql), { timeout: 7_000 }).toBeGreaterThanOrEqual(10);
      expect(sockets).toHaveLength(1); // one round at a time, not one per reap
      await expect.poll(() => reports.length, { timeout: 20_000 }).toBe(1);
      expect(reports[0]![0]).toMatchObject({ channel: "email", sent: 0, failed: 1 });
      expect(Date.now() - started).toBeGreaterThanOrEqual(8_000);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((ok) => silent.close(ok));
    }
  }, 60_000);
});
