#!/usr/bin/env python3
"""fault_partition.py — issue 5, fault 2 (ctest cluster_fault_partition).

Three nodes with sisy-faultproxy between every pair. Clients of the
majority side (any node but the leader) and clients pinned to the leader
write and read the same keys. Then the proxy cuts the leader off from both
followers (symmetric: the bytes stall in both directions, as in a real
partition), later the new leader one way (its bytes to the others stall,
theirs reach it; on heal the held, now stale, messages arrive). Holds, for
each cut:
  * the old leader steps down (it reports no leader, or another one);
  * the majority elects a leader and acknowledges writes;
  * no write is acknowledged on the minority side: no client pinned to the
    old leader gets "ok" for a write sent after the cut and answered
    before the heal;
  * a linearizable read there fails or waits: none is answered "ok"
    between the cut and the heal (and the history check proves that none,
    at any time, returned stale data);
  * after healing, the old leader rejoins and all nodes converge;
  * the merged history of both client groups is linearizable.
"""
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import libfault as F  # noqa: E402


def minority_violations(recs, t_cut, t_heal):
    bad = []
    for o in recs:
        answered = o["outcome"] == "ok" and o.get("return") is not None
        if answered and o["sent"] >= t_cut and o["return"] < t_heal:
            bad.append(o)
    return bad


def steps_down(c, old):
    def check():
        r = c.role(old)
        return r is not None and r != "leader"
    F.wait_for(check, "node %d to step down" % old)
    F.log("node %d no longer claims leadership" % old)


def one_cut(c, major, minor, how):
    old = c.wait_leader()
    others = [i for i in c.ids() if i != old]
    minor.append(F.History(c, "minority%d" % len(minor), hosts=[old],
                           pinned=True, clients=2,
                           first_client=100 * (len(minor) + 1),
                           args=["--timeout-ms", "2000", "--retry-ms",
                                 "2000"]))
    m = minor[-1]
    m.wait_writes(20, "on the leader before the cut")
    if how == "symmetric":
        c.proxy("isolate", str(old))
    else:
        for i in others:
            c.proxy("oneway", str(old), str(i))
    t_cut = F.time.monotonic_ns()
    steps_down(c, old)
    new = c.wait_leader(among=others, exclude=(old,))
    major.wait_writes(50, "on the majority (leader %d) during the cut" % new)
    # The minority clients have been trying all along; let them finish
    # at least a few more attempts (their answers, not their count, is
    # what is checked).
    done = m.counts()["done"]
    F.wait_for(lambda: m.counts()["done"] >= done + 4,
               "the minority clients to finish more operations")
    c.proxy("heal")
    t_heal = F.time.monotonic_ns()
    c.wait_leader()
    m.wait_writes(10, "on node %d after healing" % old)
    m.stop()
    bad = minority_violations(m.records(), t_cut, t_heal)
    if bad:
        raise F.Fail("the minority side (node %d) answered ok during the "
                     "%s cut:\n%s" % (old, how, "\n".join(map(str, bad[:5]))))
    F.log("%s cut of node %d: nothing acknowledged on the minority side" %
          (how, old))


def scenario(made):
    c = F.Cluster(3, proxy=True)
    made.append(c)
    c.up()
    leader = c.wait_leader()
    others = [i for i in c.ids() if i != leader]
    # The majority clients use the two followers of now; after the first
    # cut they stay on their side.
    major = F.History(c, "majority", hosts=others, clients=4, pinned=True)
    major.wait_writes(50, "before the first cut")
    minor = []
    one_cut(c, major, minor, "symmetric")
    # A second cut of whoever leads now: one-way, the leader's bytes lost.
    # The majority clients may be on that node now; they fail over with
    # the other hosts in their list only if it is not theirs alone, so
    # they are pinned: the node that stays in the majority keeps serving.
    one_cut(c, major, minor, "one-way")
    major.stop()
    F.lincheck(c, [major] + minor, "partition")
    c.wait_converged()


if __name__ == "__main__":
    F.run(scenario)
    sys.exit(0)
