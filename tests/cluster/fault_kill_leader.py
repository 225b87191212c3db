#!/usr/bin/env python3
"""fault_kill_leader.py — issue 5, fault 1 (ctest cluster_fault_kill_leader).

Three nodes; six clients write and read through every node (sisy-history,
registers + fresh keys + cas). SIGKILL the leader twice (the second time the
new leader, with the first victim restarted and caught up). Holds:
  * a new leader is elected among the survivors and serves writes (clients
    get acknowledged writes after the kill);
  * every acknowledged write is readable afterwards (sisy-history's final
    reads of every key, and its direct check of fresh keys), the killed
    nodes come back and converge to the same data;
  * the whole history is linearizable (sisy-lincheck; timeouts and
    "outcome unknown" count as may-have-happened).
Prints the unavailability window of each kill: from the SIGKILL to the
first acknowledged write among those sent after it.
"""
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import libfault as F  # noqa: E402


def scenario(made):
    c = F.Cluster(3)
    made.append(c)
    c.up()
    h = F.History(c, "kill", hosts=[1, 2, 3], clients=6)
    # A probe for the window: one writer of fresh keys that retries every
    # 5 ms with short timeouts, so its first success after a kill is not
    # hidden behind a client's backoff.
    probe = F.History(c, "probe", hosts=[2, 3, 1], clients=1,
                      first_client=50,
                      args=["--put", "100", "--cas", "0", "--unique", "100",
                            "--timeout-ms", "500", "--retry-ms", "500",
                            "--backoff-ms", "5"])
    h.wait_writes(100, "before the first kill")
    windows = []
    for round_ in (1, 2):
        leader = c.wait_leader()
        t_kill = c.kill(leader)
        survivors = [i for i in c.ids() if i != leader]
        new = c.wait_leader(among=survivors, exclude=(leader,))
        h.wait_writes(100, "after killing node %d" % leader)
        windows.append((leader, new, t_kill))
        c.start(leader)
        c.wait_leader()
        h.wait_writes(50, "with node %d back" % leader)
    h.stop()
    probe.stop()
    recs = h.records() + probe.records()
    for leader, new, t_kill in windows:
        t = F.first_ok_write_after(recs, t_kill)
        if t is None:
            raise F.Fail("no write acknowledged after killing node %d" %
                         leader)
        print("unavailability after SIGKILL of leader %d (new leader %d): "
              "%.0f ms" % (leader, new, (t - t_kill) / 1e6), flush=True)
    if int(h.summary["unique_ok"]) < 50:
        raise F.Fail("too few acknowledged fresh-key writes to mean "
                     "anything: %s" % h.summary["unique_ok"])
    F.lincheck(c, [h, probe], "kill")
    c.wait_converged()


if __name__ == "__main__":
    F.run(scenario)
    sys.exit(0)
