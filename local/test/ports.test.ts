// Port leases (local/ports.ts): ports handed to a child later are never in the kernel's
// ephemeral range, never given to two processes at once, skipped when something else listens
// there, and taken over from a process that died holding them.

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { freePortBlock, freePorts, leasePort, leaseRange, releasePorts } from "../ports.ts";

const PORTS_MODULE = join(import.meta.dirname, "..", "ports.ts");
const LEASE_DIR = join(tmpdir(), "nodescale-port-leases");

/** Ports leased by another process, which holds them until exit() is called. */
function leaseInChild(count: number): Promise<{ ports: number[]; exit: () => Promise<void> }> {
  const script = `const { freePorts } = await import(${JSON.stringify(PORTS_MODULE)});
    process.stdout.write(JSON.stringify(await freePorts(${count})) + "\\n");
    process.stdin.resume();
    process.stdin.on("end", () => process.exit(0));`;
  const child = spawn(process.execPath, ["--input-type=module", "--eval", script], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d;
      if (!out.includes("\n")) return;
      resolve({
        ports: JSON.parse(out) as number[],
        exit: () =>
          new Promise<void>((done) => {
            child.once("exit", () => done());
            child.stdin.end();
          }),
      });
    });
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`the leasing process exited ${code} before answering: ${out}`)));
  });
}

describe("port leases", () => {
  it("come from outside the kernel's ephemeral range", async () => {
    const [ephemeralLow, ephemeralHigh] = (
      existsSync("/proc/sys/net/ipv4/ip_local_port_range")
        ? spawnSync("cat", ["/proc/sys/net/ipv4/ip_local_port_range"], { encoding: "utf8" }).stdout
        : "49152 65535"
    )
      .trim()
      .split(/\s+/)
      .map(Number) as [number, number];
    const { low, high } = leaseRange();
    assert.ok(high < ephemeralLow || low > ephemeralHigh, `${low}-${high} is outside ${ephemeralLow}-${ephemeralHigh}`);
    const ports = await freePorts(20);
    for (const port of ports) assert.ok(port >= low && port <= high, `${port} in ${low}-${high}`);
    assert.equal(new Set(ports).size, 20, "distinct");
    releasePorts(ports);
  });

  it("are never held by two processes at once", async () => {
    const children = await Promise.all([leaseInChild(40), leaseInChild(40), leaseInChild(40)]);
    const mine = await freePorts(40);
    const all = [...mine, ...children.flatMap((c) => c.ports)];
    assert.equal(new Set(all).size, all.length, "no port leased twice");
    await Promise.all(children.map((c) => c.exit()));
    releasePorts(mine);
  });

  it("skip a port that something else listens on", async () => {
    const [port] = await freePortBlock(1);
    assert.ok(port);
    releasePorts([port]);
    // A program that does not lease takes the port; the next lease must pass over it.
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(port, "127.0.0.1", resolve));
    try {
      const { low } = leaseRange();
      const blocks = await Promise.all(Array.from({ length: 50 }, () => freePortBlock(3)));
      const leased = blocks.flat();
      assert.ok(!leased.includes(port), `port ${port} (listened on) was never leased`);
      for (const block of blocks) assert.deepEqual(block, [block[0], (block[0] ?? 0) + 1, (block[0] ?? 0) + 2]);
      assert.ok(leased.every((p) => p >= low));
      releasePorts(leased);
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });

  it("are taken over from a process that died holding them, and given back at exit", async () => {
    const held = await leaseInChild(5);
    for (const port of held.ports) assert.ok(existsSync(join(LEASE_DIR, String(port))), `lease file of ${port}`);
    await held.exit();
    for (const port of held.ports) assert.ok(!existsSync(join(LEASE_DIR, String(port))), `${port} given back at exit`);

    // A lease left by a process that no longer runs (killed before its exit hook).
    const [port] = await freePortBlock(1);
    assert.ok(port);
    releasePorts([port]);
    writeFileSync(join(LEASE_DIR, String(port)), "999999999 0\n");
    assert.equal(await leasePort(port), true, `the dead process's port ${port} is leased again`);
    assert.equal(await leasePort(port), false, "but only once");
    const other = await leaseInChild(1);
    assert.notEqual(other.ports[0], port);
    await other.exit();
    releasePorts([port]);
  });
});
