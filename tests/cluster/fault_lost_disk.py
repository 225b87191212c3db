#!/usr/bin/env python3
"""fault_lost_disk.py — issue 5, fault 4 (ctest cluster_fault_lost_disk).

Three nodes; four clients keep writing and reading throughout. Bulk writes
first push the Raft log well past the compaction threshold, so the log no
longer starts at entry 1 and a new node cannot catch up from it. Then a
follower loses its disk (SIGKILL, data directory deleted). Holds:
  * the node refuses to come back as its old member: sisyd on the emptied
    directory exits with an error and never serves;
  * the operator removes it (CLUSTER REMOVE NODE) and adds a fresh node
    (CLUSTER ADD NODE -> join token -> sisyd init --join), which joins under
    a new id as a learner, catches up through a snapshot (its
    snapshots_installed counter moves; the leader's log starts past 1) and
    is promoted to voter, while the clients keep writing;
  * the new node holds the same data as the others, every acknowledged
    write is readable, and the history is linearizable.
"""
import os
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import libfault as F  # noqa: E402

BULK = int(os.environ.get("SISY_FAULT_BULK", "13000"))


def bulk_write(c, leader):
    """BULK writes through the leader, pipelined (sisy-bench kv)."""
    e = dict(os.environ)
    e.update({k: v for k, v in c.env.items() if k.startswith("SISY_")})
    e["HOME"] = c.home
    r = subprocess.run([os.path.join(F.BIN, "sisy-bench"), "kv", "--hosts",
                        c.addr(leader), "--clients", "4", "--pipeline", "16",
                        "--requests", str(BULK), "--keyspace", "2000",
                        "--ratio", "0:1", "--value_size", "100"],
                       env=e, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise F.Fail("bulk writes failed: %s%s" % (r.stdout, r.stderr))
    F.log("bulk: " + r.stdout.strip())


def scenario(made):
    # Small snapshot chunks: the new node's snapshot comes in many.
    c = F.Cluster(3, flags=["--snapshot_chunk_bytes=16384"])
    made.append(c)
    c.up()
    leader = c.wait_leader()
    h = F.History(c, "lostdisk", hosts=[1, 2, 3], clients=4,
                  args=["--retry-ms", "10000"])
    h.wait_writes(50, "before the bulk writes")
    bulk_write(c, leader)
    leader = c.wait_leader()
    F.wait_for(lambda: int(c.info(leader)["log_first_index"]) > 1,
               "the leader's log to be compacted (log_first_index > 1)")
    victim = next(i for i in c.ids() if i != leader)
    c.kill(victim)
    c.lose_disk(victim)
    r = c.start(victim, check=False)
    if r.returncode == 0 or c.alive(victim):
        raise F.Fail("node %d came back on an empty disk as its old member" %
                     victim)
    said = [x for x in open(os.path.join(c.data_dir(victim), "sisyd.log"),
                            errors="replace").read().splitlines()
            if "cannot start" in x or "ERROR" in x][-1:]
    F.log("node %d refuses to start on an empty disk: %s" % (victim, said))
    h.wait_writes(50, "with node %d gone" % victim)

    leader = c.wait_leader(among=[i for i in c.ids() if i != victim])
    c.cli(leader, "-c", "CLUSTER REMOVE NODE %d" % victim)
    F.wait_for(lambda: victim not in [int(n["id"]) for n in
                                      (c.nodes(leader) or [{"id": victim}])],
               "node %d to leave the membership" % victim)
    F.log("node %d removed" % victim)
    at_join = h.counts()["ok_writes"]
    new = c.add()
    F.wait_for(lambda: int((c.info(new) or {}).get(
        "snapshots_installed", 0)) >= 1,
        "the fresh node to install a snapshot")
    F.wait_for(lambda: c.role(new) == "follower",
               "the fresh node to be promoted from learner to voter")
    during = h.counts()["ok_writes"] - at_join
    F.log("%d writes acknowledged while node %d caught up" % (during, new))
    if during <= 0:
        raise F.Fail("no write was acknowledged while the new node caught "
                     "up: the clients should keep writing")
    h.wait_writes(100, "with node %d in the cluster" % new)
    h.stop()
    F.lincheck(c, [h], "lostdisk")
    c.wait_converged(nodes=[i for i in c.ids() if i != victim])


if __name__ == "__main__":
    F.run(scenario)
    sys.exit(0)
