#!/usr/bin/env python3
"""fault_partition.py [3|5] — issue 5, fault 2 (ctest cluster_fault_partition
with 3 nodes, cluster_fault_partition5 with 5).

sisy-faultproxy between every pair of nodes. Clients of the majority side
(the followers) and clients pinned to the minority-to-be write and read the
same keys. Three nodes: the proxy cuts the leader off from both followers
(symmetric: the bytes stall in both directions, as in a real partition),
heals, then cuts the new leader one way (its bytes to the others stall,
theirs reach it; on heal the held, now stale, messages arrive). Five
nodes: the leader and one follower are split from the other three.
Holds, for each cut:
  * the old leader steps down (it reports no leader, or another one);
  * the majority elects a leader and acknowledges writes;
  * no write is acknowledged on the minority side: no client pinned to a
    minority node gets "ok" for a write sent after the cut and answered
    before the heal;
  * a linearizable read there fails or waits: none is answered "ok"
    between the cut and the heal (and the history check proves that none,
    at any time, returned stale data);
  * after healing, the minority nodes serve again and all nodes converge;
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
    """Cuts the leader off (with one follower too for "split"), checks the
    minority side, heals."""
    old = c.wait_leader()
    others = [i for i in c.ids() if i != old]
    side = [old] + (others[:1] if how == "split" else [])
    rest = [i for i in c.ids() if i not in side]
    k = len(minor) // 2  # the cut's number (two histories per cut)
    minor.append(F.History(c, "minority%d" % k, hosts=side,
                           pinned=True, clients=2 * len(side),
                           first_client=100 * (k + 1),
                           args=["--timeout-ms", "2000", "--retry-ms",
                                 "2000"]))
    m = minor[-1]
    # A probe on the old leader: one writer of fresh keys retrying every
    # 5 ms with short timeouts, so the moment it serves again after the
    # heal is not hidden behind a client's backoff.
    minor.append(F.History(c, "probe%d" % k, hosts=[old],
                           pinned=True, clients=1,
                           first_client=100 * (k + 1) + 90,
                           args=["--put", "100", "--cas", "0", "--unique",
                                 "100", "--timeout-ms", "500", "--retry-ms",
                                 "500", "--backoff-ms", "5"]))
    probe = minor[-1]
    m.wait_writes(20, "on the minority-to-be before the cut")
    if how == "symmetric":
        c.proxy("isolate", str(old))
    elif how == "split":
        c.proxy("partition", ",".join(map(str, side)),
                ",".join(map(str, rest)))
    else:
        for i in others:
            c.proxy("oneway", str(old), str(i))
    t_cut = F.time.monotonic_ns()
    steps_down(c, old)
    new = c.wait_leader(among=rest, exclude=side)
    major.wait_writes(50, "on the majority (leader %d) during the cut" % new)
    # The minority clients have been trying all along; let them finish
    # at least a few more attempts (their answers, not their count, is
    # what is checked).
    done = m.counts()["done"]
    F.wait_for(lambda: m.counts()["done"] >= done + 4,
               "the minority clients to finish more operations")
    term = (c.info(new) or {}).get("term")
    # The heal starts when the first proxy hears of it (one command per
    # proxy, one after the other: 20 of them with five nodes), so its
    # time is taken before, or a minority write committed through an
    # early-healed link would count as answered during the cut.
    t_heal = F.time.monotonic_ns()
    c.proxy("heal")
    after = c.wait_leader()
    m.wait_writes(10, "on nodes %s after healing" % side)
    probe.wait_writes(1, "on node %d after healing" % old)
    m.stop()
    probe.stop()
    served = min((o["return"] for o in probe.records()
                  if o["op"] != "get" and o["outcome"] == "ok" and
                  o["return"] >= t_heal), default=None)
    if served is None:
        raise F.Fail("the probe on node %d recorded no write acknowledged "
                     "after the heal" % old)
    # Printed, not asserted (a sanitized build on a busy machine is slow):
    # how long the old leader took to serve again, and whether the heal
    # cost an election (pre-vote and check-quorum should prevent one).
    term_now = (c.info(after) or {}).get("term")
    print("time to serve on node %d after the %s heal: %.0f ms (leader "
          "%d term %s before the heal, %d term %s after)" %
          (old, how, (served - t_heal) / 1e6, new, term, after, term_now),
          flush=True)
    bad = minority_violations(m.records() + probe.records(), t_cut, t_heal)
    if bad:
        raise F.Fail("the minority side %s answered ok during the %s cut:"
                     "\n%s" % (side, how, "\n".join(map(str, bad[:5]))))
    F.log("%s cut of %s: nothing acknowledged on the minority side" %
          (how, side))


def scenario(made, n):
    c = F.Cluster(n, proxy=True)
    made.append(c)
    c.up()
    leader = c.wait_leader()
    others = [i for i in c.ids() if i != leader]
    # Majority clients, pinned to the followers of now (pinned: a client
    # whose node ends up on the minority side of a later cut stays there
    # and is checked by lincheck like everyone; the others keep the
    # majority busy).
    major = F.History(c, "majority", hosts=others, clients=4, pinned=True)
    major.wait_writes(50, "before the first cut")
    minor = []
    if n == 3:
        one_cut(c, major, minor, "symmetric")
        # Then whoever leads now, one way: its bytes to the others stall
        # (and arrive, stale, on heal); theirs reach it.
        one_cut(c, major, minor, "one-way")
    else:
        # Five nodes: the leader and one follower against the other three.
        one_cut(c, major, minor, "split")
    major.stop()
    F.lincheck(c, [major] + minor, "partition")
    c.wait_converged()


if __name__ == "__main__":
    nodes = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    if nodes not in (3, 5):
        sys.exit("usage: fault_partition.py [3|5]")
    F.run(lambda made: scenario(made, nodes))
    sys.exit(0)
