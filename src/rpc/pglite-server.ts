// Serves an in-process PGlite to other processes over the Postgres wire protocol: the process
// that owns an embedded data directory (./embedded.ts) shares it this way, so workers (the demo's
// are real child processes, killable with SIGKILL), `taskwarden` commands and dashboards in other
// terminals all reach the one database through their own node-postgres connections.
//
// Why not @electric-sql/pglite-socket (0.2.17, evaluated against the checks of
// test/start-embedded-db.test.ts): it has no authentication, so any local user could reach the
// database through the loopback port; a NOTIFY reaches only the connection whose statement sent
// it, so workers in other processes would never be woken by an enqueue; and it pins its peer
// dependency to one exact PGlite release (0.5.14; we run 0.5.16), so npm refuses to install it
// beside ours. Its single-statement interleaving and transaction stickiness passed.
//
// PGlite is one session. Clients are multiplexed onto it one protocol cycle at a time (up to
// Sync / a simple Query); a client inside a transaction keeps the session until it leaves it,
// so no statement of another client ever runs inside someone else's transaction. Named
// prepared statements do not collide: the direct transport names them per connection.
import { createServer, type Server, type Socket } from "node:net";
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { PGlite } from "@electric-sql/pglite";

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;
const PROTOCOL_3 = 196608;

export interface PGliteServerOptions {
  db: PGlite;
  host?: string;
  /** 0 = any free port. */
  port?: number;
  /** Clients must send this password (cleartext auth: the server listens on loopback only). */
  password?: string;
  /** Called with a short reason when a client is refused or breaks the protocol. */
  onClientError?: (message: string) => void;
}

export interface PGliteServer {
  readonly host: string;
  readonly port: number;
  readonly password: string;
  /** postgres://… for DATABASE_URL. */
  readonly url: string;
  close(): Promise<void>;
}

/** Holds PGlite's transaction and query locks (in PGlite's own order) until `release` is called. */
function lockSession(db: PGlite): Promise<() => void> {
  return new Promise((acquired) => {
    void db._runExclusiveTransaction(() =>
      db.runExclusive(() => new Promise<void>((release) => acquired(release))),
    );
  });
}

function message(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, "latin1");
  head.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([head, body]);
}

function cstr(s: string): Buffer {
  return Buffer.concat([Buffer.from(s, "utf8"), Buffer.from([0])]);
}

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

function errorResponse(code: string, text: string): Buffer {
  return message("E", Buffer.concat([
    Buffer.from("S"), cstr("FATAL"), Buffer.from("V"), cstr("FATAL"),
    Buffer.from("C"), cstr(code), Buffer.from("M"), cstr(text), Buffer.from([0]),
  ]));
}

/** Splits a backend byte stream into messages; returns them with their type byte. */
function* backendMessages(data: Uint8Array): Generator<{ type: string; bytes: Uint8Array }> {
  let at = 0;
  while (at + 5 <= data.length) {
    const len = ((data[at + 1]! << 24) | (data[at + 2]! << 16) | (data[at + 3]! << 8) | data[at + 4]!) >>> 0;
    const end = at + 1 + len;
    yield { type: String.fromCharCode(data[at]!), bytes: data.subarray(at, end) };
    at = end;
  }
}

export async function servePGlite(opts: PGliteServerOptions): Promise<PGliteServer> {
  const { db } = opts;
  const host = opts.host ?? "127.0.0.1";
  const password = opts.password ?? randomBytes(18).toString("base64url");
  const expected = Buffer.from(password);
  const clients = new Set<Connection>();
  const serverVersion = String((await db.query<{ v: string }>("show server_version")).rows[0]?.v ?? "17");
  let nextPid = 1;

  class Connection {
    #buf = Buffer.alloc(0);
    #state: "startup" | "password" | "ready" | "closed" = "startup";
    #release: (() => void) | undefined;
    #queue: Promise<void> = Promise.resolve();
    readonly pid = nextPid++;

    constructor(readonly socket: Socket) {
      socket.setNoDelay(true);
      socket.on("data", (chunk: Buffer) => {
        this.#buf = Buffer.concat([this.#buf, chunk]);
        this.#queue = this.#queue.then(() => this.#drain()).catch((err) => this.#fail(err));
      });
      socket.on("close", () => void this.#close());
      socket.on("error", () => void this.#close());
    }

    async #drain(): Promise<void> {
      while (this.#state !== "closed") {
        if (this.#state === "startup") {
          if (this.#buf.length < 8) return;
          const len = this.#buf.readInt32BE(0);
          if (this.#buf.length < len) return;
          const code = this.#buf.readInt32BE(4);
          this.#buf = this.#buf.subarray(len);
          if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
            this.socket.write("N");
            continue;
          }
          if (code === CANCEL_REQUEST) {
            this.socket.destroy();
            return;
          }
          if (code !== PROTOCOL_3) {
            this.socket.end(errorResponse("0A000", `unsupported frontend protocol ${code}`));
            return this.#close();
          }
          // The user / database parameters are ignored: there is one database and one role here.
          this.socket.write(message("R", int32(3))); // AuthenticationCleartextPassword
          this.#state = "password";
          continue;
        }
        const batch = this.#takeCycle();
        if (!batch) return;
        if (this.#state === "password") {
          const given = batch.subarray(5, batch.length - 1);
          if (batch[0] !== 0x70 || given.length !== expected.length || !timingSafeEqual(given, expected)) {
            opts.onClientError?.("a client sent a wrong password");
            this.socket.end(errorResponse("28P01", "password authentication failed"));
            return this.#close();
          }
          const params: [string, string][] = [
            ["server_version", serverVersion], ["server_encoding", "UTF8"], ["client_encoding", "UTF8"],
            ["DateStyle", "ISO, MDY"], ["integer_datetimes", "on"], ["TimeZone", "UTC"],
            ["standard_conforming_strings", "on"], ["application_name", ""],
          ];
          this.socket.write(Buffer.concat([
            message("R", int32(0)),
            ...params.map(([k, v]) => message("S", Buffer.concat([cstr(k), cstr(v)]))),
            message("K", Buffer.concat([int32(this.pid), int32(0)])),
            message("Z", Buffer.from("I")),
          ]));
          this.#state = "ready";
          continue;
        }
        if (batch[0] === 0x58) return this.#close(); // Terminate
        await this.#execute(batch);
      }
    }

    /** The next whole protocol cycle: messages up to and including Sync, Flush, Query or Terminate. */
    #takeCycle(): Buffer | undefined {
      let at = 0;
      while (at + 5 <= this.#buf.length) {
        const type = this.#buf[at]!;
        const end = at + 1 + this.#buf.readInt32BE(at + 1);
        if (end > this.#buf.length) return undefined;
        at = end;
        // S Sync, H Flush, Q Query, X Terminate, p password
        if (type === 0x53 || type === 0x48 || type === 0x51 || type === 0x58 || type === 0x70) {
          const cycle = this.#buf.subarray(0, at);
          this.#buf = this.#buf.subarray(at);
          return Buffer.from(cycle);
        }
      }
      return undefined;
    }

    async #execute(batch: Buffer): Promise<void> {
      this.#release ??= await lockSession(db);
      let out: Uint8Array;
      try {
        out = await db.execProtocolRaw(new Uint8Array(batch));
      } catch (err) {
        this.#unlock();
        throw err;
      }
      let status: string | undefined;
      const own: Uint8Array[] = [];
      for (const m of backendMessages(out)) {
        if (m.type === "A") {
          // A NOTIFY reaches every listening session of a real server; here all clients get it
          // (clients ignore channels they do not listen on).
          for (const c of clients) if (c.#state === "ready") c.socket.write(m.bytes);
          continue;
        }
        if (m.type === "Z") status = String.fromCharCode(m.bytes[5]!);
        own.push(m.bytes);
      }
      if (!this.socket.destroyed) this.socket.write(Buffer.concat(own));
      // Outside a transaction the session is free for the next client.
      if (status === "I") this.#unlock();
    }

    #unlock(): void {
      const release = this.#release;
      this.#release = undefined;
      release?.();
    }

    #fail(err: unknown): void {
      opts.onClientError?.(err instanceof Error ? err.message : String(err));
      this.socket.destroy();
      void this.#close();
    }

    async #close(): Promise<void> {
      if (this.#state === "closed") return;
      this.#state = "closed";
      clients.delete(this);
      if (this.#release) {
        // The client vanished mid-transaction (e.g. SIGKILL): roll it back before anyone else runs.
        await db.execProtocolRaw(new Uint8Array(message("Q", cstr("rollback")))).catch(() => {});
        this.#unlock();
      }
    }
  }

  const server: Server = createServer((socket) => {
    clients.add(new Connection(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    host,
    port,
    password,
    url: `postgres://postgres:${encodeURIComponent(password)}@${host}:${port}/postgres`,
    async close() {
      for (const c of clients) c.socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
