// Real alert receivers on loopback for tests: an SMTP server (smtp-server) speaking implicit TLS
// with a self-signed certificate made here by openssl, as a provider's port 465 does, and a webhook
// receiver that can be told to fail.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SMTPServer } from "smtp-server";

export interface Mail {
  to: string[];
  /** The message as received (headers and encoded body). */
  data: string;
  /** The body decoded (nodemailer sends quoted-printable with soft line breaks). */
  text: string;
}

/** The body of a single-part text message, decoded from its Content-Transfer-Encoding. */
export function decodeBody(data: string): string {
  const split = data.search(/\r?\n\r?\n/);
  const headers = data.slice(0, split);
  const body = data.slice(split).replace(/^\r?\n\r?\n/, "");
  const encoding = /^content-transfer-encoding:\s*(\S+)/im.exec(headers)?.[1]?.toLowerCase();
  if (encoding === "base64") return Buffer.from(body.replace(/\s+/g, ""), "base64").toString("utf8");
  if (encoding === "quoted-printable") {
    const joined = body.replace(/=\r?\n/g, "");
    const bytes: number[] = [];
    for (let i = 0; i < joined.length; i++) {
      const hex = joined[i] === "=" ? /^[0-9A-F]{2}/i.exec(joined.slice(i + 1, i + 3)) : null;
      if (hex) {
        bytes.push(parseInt(hex[0], 16));
        i += 2;
      } else {
        bytes.push(...Buffer.from(joined[i], "utf8"));
      }
    }
    return Buffer.from(bytes).toString("utf8");
  }
  return body;
}

export interface SmtpSink {
  port: number;
  /** The server's self-signed certificate (PEM): what SMTP_TLS_CA must hold to trust it. */
  certificate: string;
  user: string;
  password: string;
  mails: Mail[];
  close(): Promise<void>;
}

/** A self-signed certificate for 127.0.0.1 and localhost, valid for a day. */
export function selfSignedCertificate(): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), "tw-tls-"));
  try {
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "1",
      "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
    ], { stdio: "pipe" });
    return { key: readFileSync(join(dir, "key.pem"), "utf8"), cert: readFileSync(join(dir, "cert.pem"), "utf8") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function startSmtpSink(opts: { user?: string; password?: string } = {}): Promise<SmtpSink> {
  const user = opts.user ?? "alerts";
  const password = opts.password ?? "smtp-password-never-logged";
  const { key, cert } = selfSignedCertificate();
  const mails: Mail[] = [];
  const server = new SMTPServer({
    secure: true, // implicit TLS from the first byte, as on port 465
    key,
    cert,
    authOptional: false,
    logger: false,
    onAuth(auth, _session, cb) {
      if (auth.username === user && auth.password === password) cb(null, { user });
      else cb(new Error("bad credentials"));
    },
    onData(stream, session, cb) {
      let data = "";
      stream.on("data", (c: Buffer) => (data += c.toString()));
      stream.on("end", () => {
        mails.push({ to: session.envelope.rcptTo.map((r) => r.address), data, text: decodeBody(data) });
        cb();
      });
    },
  });
  // smtp-server logs a failed TLS handshake (an untrusting client) as an error event.
  server.on("error", () => {});
  const raw = server.server as unknown as Server;
  await new Promise<void>((ok) => raw.listen(0, "127.0.0.1", ok));
  return {
    port: (raw.address() as { port: number }).port,
    certificate: cert,
    user,
    password,
    mails,
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}

export interface WebhookSink {
  url: string;
  hooks: { status: number; body: { text: string; blocks: unknown[] } }[];
  /** The next n requests get 500. */
  failNext(n: number): void;
  close(): Promise<void>;
}

export async function startWebhookSink(): Promise<WebhookSink> {
  const hooks: WebhookSink["hooks"] = [];
  let failing = 0;
  const server = createServer(async (req, res) => {
    let body = "";
    for await (const c of req) body += c;
    const status = failing > 0 ? (failing--, 500) : 200;
    hooks.push({ status, body: JSON.parse(body) });
    res.writeHead(status).end(status === 200 ? "ok" : "down");
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`,
    hooks,
    failNext: (n) => void (failing = n),
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}

/** The alert variables that point the reaper at these sinks (email over implicit TLS, and a webhook). */
export function alertEnv(smtp: SmtpSink, webhook: WebhookSink): Record<string, string> {
  return {
    ALERT_WEBHOOK_URL: webhook.url,
    HEARTBEAT_MONITOR_ALERT_EMAIL: "oncall@example.com",
    EMAIL_FROM: "taskwarden <alerts@example.com>",
    SMTP_HOST: "127.0.0.1",
    SMTP_PORT: String(smtp.port),
    SMTP_SECURE: "true",
    SMTP_TLS_CA: smtp.certificate,
    SMTP_USER: smtp.user,
    SMTP_PASSWORD: smtp.password,
  };
}
