// A TCP fault proxy for tests: real sockets between a client and Postgres, with two ways to cut
// the link.
// - "refuse": the listening port closes and every open connection is reset: ECONNREFUSED at
//   once, the kind of outage a client notices.
// - "drop": connections stay open and new ones are accepted, but every byte either way is
//   silently discarded (a failed-over host, a black-holed route): calls hang until they time out.
// heal() passes bytes again; connections that lived through a drop are reset then, as a host
// that lost their state would, and new ones go through.
import net from "node:net";

export type ProxyMode = "pass" | "refuse" | "drop";

export interface FaultProxy {
  /** The proxy's port on 127.0.0.1. */
  readonly port: number;
  /** `url` with its host and port replaced by the proxy's. */
  url(url: string): string;
  readonly mode: ProxyMode;
  refuse(): Promise<void>;
  drop(): void;
  heal(): Promise<void>;
  close(): Promise<void>;
}

interface Link {
  client: net.Socket;
  upstream: net.Socket | undefined;
  /** Lived through a drop: its bytes were lost, so it is reset on heal. */
  poisoned: boolean;
}

export async function startProxy(target: { host: string; port: number }): Promise<FaultProxy> {
  let mode: ProxyMode = "pass";
  const links = new Set<Link>();
  let server: net.Server;

  const onConnection = (client: net.Socket) => {
    const link: Link = { client, upstream: undefined, poisoned: mode === "drop" };
    links.add(link);
    const end = () => {
      links.delete(link);
      client.destroy();
      link.upstream?.destroy();
    };
    client.on("error", end);
    client.on("close", end);
    if (mode === "pass") {
      const upstream = net.connect(target.port, target.host);
      link.upstream = upstream;
      upstream.on("error", end);
      upstream.on("close", end);
      upstream.on("data", (d) => {
        if (mode === "pass" && !link.poisoned) client.write(d);
      });
    }
    client.on("data", (d) => {
      if (mode === "pass" && !link.poisoned) link.upstream?.write(d);
    });
  };

  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server = net.createServer(onConnection);
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve((server.address() as net.AddressInfo).port));
    });
  const port = await listen(0);
  const closeServer = () => new Promise<void>((resolve) => server.close(() => resolve()));
  const resetAll = (only?: (l: Link) => boolean) => {
    for (const l of [...links]) {
      if (only && !only(l)) continue;
      links.delete(l);
      l.client.resetAndDestroy();
      l.upstream?.destroy();
    }
  };

  return {
    port,
    get mode() {
      return mode;
    },
    url(u: string) {
      const parsed = new URL(u);
      parsed.hostname = "127.0.0.1";
      parsed.port = String(port);
      return parsed.toString();
    },
    async refuse() {
      if (mode === "refuse") return;
      mode = "refuse";
      resetAll();
      await closeServer();
    },
    drop() {
      if (mode === "refuse") throw new Error("heal() a refusing proxy before dropping");
      mode = "drop";
      for (const l of links) l.poisoned = true;
    },
    async heal() {
      if (mode === "refuse") {
        mode = "pass";
        await listen(port);
        return;
      }
      mode = "pass";
      resetAll((l) => l.poisoned);
    },
    async close() {
      if (mode !== "refuse") {
        mode = "refuse";
        resetAll();
        await closeServer();
      }
    },
  };
}
