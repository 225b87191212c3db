#!/usr/bin/env python3
"""fault_restart_all.py — issue 5, fault 3 (ctest cluster_fault_restart_all).

Three nodes under a steady load of four clients (sisy-history). Every node
is stopped and started again, twice: first all of them with SIGTERM (a
leader hands over before it stops), then all with SIGKILL at once (no node
gets to flush anything: what was acknowledged must be in the Raft logs and
come back by replay). The clients keep retrying through the outage. Holds:
  * after each restart a leader is elected and writes are acknowledged;
  * every acknowledged write is there (final reads of every key, the
    direct fresh-key check), all nodes hold the same data;
  * the history across both outages is linearizable.
"""
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import libfault as F  # noqa: E402


def scenario(made):
    c = F.Cluster(3)
    made.append(c)
    c.up()
    h = F.History(c, "restart", hosts=[1, 2, 3], clients=4,
                  args=["--retry-ms", "15000"])
    h.wait_writes(200, "before the first restart")
    c.wait_leader()
    for i in c.ids():
        c.stop(i)
    for i in c.ids():
        c.start(i)
    c.wait_leader()
    h.wait_writes(200, "after restarting every node (SIGTERM)")
    c.kill_all()
    for i in c.ids():
        c.start(i)
    c.wait_leader()
    h.wait_writes(200, "after restarting every node (SIGKILL)")
    h.stop()
    F.lincheck(c, [h], "restart")
    c.wait_converged()


if __name__ == "__main__":
    F.run(scenario)
    sys.exit(0)
