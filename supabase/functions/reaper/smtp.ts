// A minimal SMTP client over Deno's TCP: EHLO, STARTTLS when offered (or implicit TLS on 465),
// AUTH PLAIN, MAIL FROM, RCPT TO, DATA. Enough for alert mail; no attachments, no pipelining.
import type { EmailSender } from "../../../src/reaper/alerts/email.ts";

export interface SmtpOptions {
  host: string;
  port: number;
  user?: string;
  password?: string;
  /** Seconds for the whole conversation. */
  timeoutSeconds?: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

class Conversation {
  #buffer = "";
  constructor(public conn: Deno.Conn) {}

  async reply(): Promise<{ code: number; lines: string[] }> {
    const lines: string[] = [];
    const chunk = new Uint8Array(4096);
    for (;;) {
      const end = this.#buffer.indexOf("\r\n");
      if (end >= 0) {
        const line = this.#buffer.slice(0, end);
        this.#buffer = this.#buffer.slice(end + 2);
        lines.push(line);
        if (line[3] !== "-") return { code: Number(line.slice(0, 3)), lines };
        continue;
      }
      const n = await this.conn.read(chunk);
      if (n === null) throw new Error("SMTP server closed the connection");
      this.#buffer += decoder.decode(chunk.subarray(0, n));
    }
  }

  async command(text: string, expect: number[]): Promise<string[]> {
    await this.conn.write(encoder.encode(`${text}\r\n`));
    const { code, lines } = await this.reply();
    if (!expect.includes(code)) {
      const shown = text.startsWith("AUTH") ? "AUTH" : text.split(" ")[0];
      throw new Error(`SMTP ${shown} failed: ${lines.join(" ")}`);
    }
    return lines;
  }
}

function dotStuff(text: string): string {
  return text.replace(/\r?\n/g, "\r\n").replace(/^\./gm, "..");
}

export function smtpSender(opts: SmtpOptions): EmailSender {
  return {
    async send(mail) {
      const implicitTls = opts.port === 465;
      let conn: Deno.Conn = implicitTls
        ? await Deno.connectTls({ hostname: opts.host, port: opts.port })
        : await Deno.connect({ hostname: opts.host, port: opts.port });
      const timer = setTimeout(() => conn.close(), (opts.timeoutSeconds ?? 20) * 1000);
      try {
        let c = new Conversation(conn);
        const greeting = await c.reply();
        if (greeting.code !== 220) throw new Error(`SMTP greeting: ${greeting.lines.join(" ")}`);
        let ehlo = await c.command("EHLO taskwarden", [250]);
        if (!implicitTls && ehlo.some((l) => /STARTTLS/i.test(l))) {
          await c.command("STARTTLS", [220]);
          conn = await Deno.startTls(conn as Deno.TcpConn, { hostname: opts.host });
          c = new Conversation(conn);
          ehlo = await c.command("EHLO taskwarden", [250]);
        }
        if (opts.user) {
          const token = btoa(`\u0000${opts.user}\u0000${opts.password ?? ""}`);
          await c.command(`AUTH PLAIN ${token}`, [235]);
        }
        await c.command(`MAIL FROM:<${mail.from.replace(/^.*<|>$/g, "")}>`, [250]);
        for (const to of mail.to) await c.command(`RCPT TO:<${to}>`, [250, 251]);
        await c.command("DATA", [354]);
        const headers = [
          `From: ${mail.from}`,
          `To: ${mail.to.join(", ")}`,
          `Subject: ${mail.subject}`,
          `Date: ${new Date().toUTCString()}`,
          "MIME-Version: 1.0",
          "Content-Type: text/plain; charset=utf-8",
          "Content-Transfer-Encoding: 8bit",
        ];
        await c.command(`${headers.join("\r\n")}\r\n\r\n${dotStuff(mail.text)}\r\n.`, [250]);
        await c.command("QUIT", [221]).catch(() => {});
      } finally {
        clearTimeout(timer);
        try {
          conn.close();
        } catch {
          // already closed by the server or the timeout
        }
      }
    },
  };
}
