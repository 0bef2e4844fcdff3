import { readFileSync, readdirSync, readlinkSync } from "node:fs";

/**
 * How many ESTABLISHED TCP connections process `pid` holds to 127.0.0.1:`remotePort`, read from
 * /proc (Linux): the socket inodes of the process's fds, matched against /proc/net/tcp{,6}.
 */
export function establishedTo(pid: number, remotePort: number): number {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      /* fd closed meanwhile */
    }
  }
  const hexPort = remotePort.toString(16).toUpperCase().padStart(4, "0");
  let n = 0;
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(table, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      // f[2] = remote addr:port, f[3] = state (01 = ESTABLISHED), f[9] = inode
      if (f[3] === "01" && f[2]!.endsWith(`:${hexPort}`) && inodes.has(f[9]!)) n++;
    }
  }
  return n;
}
