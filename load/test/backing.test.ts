// How the bench counts its backing services across topologies (runner/backing.ts).

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type Background,
  type Counters,
  foldCpu,
  opsBetween,
  parseTopology,
  sumCommandStats,
  sumRedis,
  topologyTitle,
} from "../runner/backing.ts";

const pg = (statements: number, lagPolls = 0, walPositionQueries = 0) => ({
  statements,
  lagPolls,
  walPositionQueries,
  connections: 0,
});

describe("parseTopology", () => {
  it("is plain by default and refuses anything it does not know", () => {
    assert.equal(parseTopology(undefined), "plain");
    assert.equal(parseTopology(""), "plain");
    assert.equal(parseTopology("redis-cluster"), "redis-cluster");
    assert.equal(parseTopology("pgbouncer"), "pgbouncer");
    assert.throws(
      () => parseTopology("cluster"),
      /BENCH_TOPOLOGY=cluster: expected one of plain, redis-cluster, pgbouncer/,
    );
  });

  it("names the cluster's shape in the title", () => {
    assert.equal(topologyTitle("redis-cluster", 6, 3), "Redis Cluster (3 primaries + 3 replicas)");
  });
});

describe("the cluster's numbers", () => {
  it("sums CPU over every node under one name, leaving the other servers apart", () => {
    assert.deepEqual(
      foldCpu({ "redis:7001": 0.25, "redis:7002": 0.5, "redis:7003": 0.125, primary: 1, pgbouncer: 0.2 }),
      {
        redis: 0.875,
        primary: 1,
        pgbouncer: 0.2,
      },
    );
    assert.deepEqual(foldCpu({ redis: 0.3, replica: 0.1 }), { redis: 0.3, replica: 0.1 });
  });

  it("sums commandstats per command over the primaries, without INFO, CLUSTER or REPLCONF", () => {
    const sum = sumCommandStats([
      { get: 10, info: 3, "cluster|slots": 2, replconf: 7 },
      { get: 5, set: 4, "cluster|info": 1 },
    ]);
    assert.deepEqual(sum, { get: 15, info: 3, "cluster|slots": 2, replconf: 7, set: 4, "cluster|info": 1 });
    assert.equal(sumRedis(sum), 19);
  });
});

describe("opsBetween", () => {
  const bg: Background = { redisPerS: 1, primaryPerS: 2, replicaPerS: 0, cpu: { redis: 0, primary: 0, replica: 0 } };
  it("subtracts the idle rates and leaves out CLUSTER commands", () => {
    const a: Counters = {
      at: 0,
      redis: { get: 100, "cluster|slots": 5 },
      pg: { primary: pg(10, 0, 4), replica: pg(20, 6) },
    };
    const b: Counters = {
      at: 10_000,
      redis: { get: 1110, set: 200, "cluster|slots": 9, replconf: 3 },
      pg: { primary: pg(230, 0, 24), replica: pg(1026, 6) },
    };
    const ops = opsBetween(a, b, bg);
    // 1010 GET + 200 SET, minus 10 s of 1/s idle
    assert.equal(ops.redis, 1200);
    assert.deepEqual(ops.redisByCommand, { get: 1010, set: 200 });
    // 220 statements, 20 of them WAL-position queries, which the poller's 2/s explain: 200
    assert.equal(ops.primary, 200);
    assert.equal(ops.replica, 1006);
  });
});
