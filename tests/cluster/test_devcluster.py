#!/usr/bin/env python3
"""test_devcluster.py — tests/cluster/devcluster's process bookkeeping
(ctest cluster_devcluster).

devcluster must signal only the processes it started, and must not lose
track of them:
  * a recorded PID that is now a zombie (exited, not reaped) or another
    program (the PID was reused) is not "running": `start` starts the
    node, and `down` never signals that other program;
  * a PID that a test recorded in DIR/env by hand (a node it restarted
    itself) is stopped by `down`;
  * a failed `up` stops every process it had started before it exits;
  * `up` killed outright (SIGKILL: no clean-up of its own) leaves pid
    files from which `down` stops the nodes, even without DIR/env.
Every wait polls a condition against a deadline.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SRC = os.environ.get("SRC_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("BUILD_BIN") or os.path.join(SRC, "build", "bin")
DC = os.path.join(SRC, "tests", "cluster", "devcluster")
TMP = tempfile.mkdtemp(prefix="sisy-test-devcluster.")
MINE = []  # Popen objects of this test, ended whatever happens


def fail(msg):
    raise AssertionError(msg)


def env(**extra):
    e = dict(os.environ)
    e["SISYD"] = os.path.join(BIN, "sisyd")
    e["SISY_CLI"] = os.path.join(BIN, "sisy-cli")
    e["HOME"] = os.path.join(TMP, "home")
    e.update(extra)
    return e


def dc(*args, check=True, **extra):
    r = subprocess.run([DC, *args], env=env(**extra), capture_output=True,
                       text=True, timeout=180)
    if check and r.returncode != 0:
        fail("devcluster %s exited %d:\n%s%s" %
             (" ".join(args), r.returncode, r.stdout, r.stderr))
    return r


def wait_for(cond, what, timeout=60):
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            fail("timed out waiting for " + what)
        time.sleep(0.05)


def state(pid):
    """The process state letter, None once it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def pids_with(word):
    """PIDs of live processes with `word` among their arguments."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or state(int(d)) in (None, "Z"):
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if word.encode() in args:
            out.append(int(d))
    return out


def read_env(d):
    e = {}
    for line in open(os.path.join(d, "env")):
        if "=" in line and not line.startswith("#"):
            k, v = line.rstrip("\n").split("=", 1)
            e[k] = v
    return e


def record_pid(d, i, pid):
    with open(os.path.join(d, "node%d" % i, "devcluster.pid"), "w") as f:
        f.write("%d\n" % pid)


def set_env_pid(d, i, pid):
    path = os.path.join(d, "env")
    key = "NODE%d_PID=" % i
    lines = open(path).read().split("\n")
    with open(path, "w") as f:
        f.write("\n".join(key + str(pid) if x.startswith(key) else x
                          for x in lines))


def zombie_and_reused_pids():
    c = os.path.join(TMP, "c")
    dc("up", "1", c)
    node1 = os.path.join(c, "node1")
    pid = int(read_env(c)["NODE1_PID"])
    if pids_with(node1) != [pid]:
        fail("node 1 is not the recorded pid %d: %s" % (pid, pids_with(node1)))
    dc("stop", c, "1")
    if pids_with(node1):
        fail("stop left node 1 running")
    # A zombie under node 1's pid file: an exited child nobody reaped.
    z = subprocess.Popen(["true"])
    MINE.append(z)
    wait_for(lambda: state(z.pid) == "Z", "a zombie")
    record_pid(c, 1, z.pid)
    dc("start", c, "1")  # refused as "running already" before
    pid = int(read_env(c)["NODE1_PID"])
    if pids_with(node1) != [pid]:
        fail("start did not run node 1 over a zombie's pid")
    dc("stop", c, "1")
    # Another program under node 1's pid (a reused PID): not running, and
    # `down` leaves it alone.
    other = subprocess.Popen(["sleep", "300"])
    MINE.append(other)
    record_pid(c, 1, other.pid)
    set_env_pid(c, 1, other.pid)  # as if node 1 had died by itself
    dc("down", c)
    if other.poll() is not None:
        fail("devcluster down signalled a program it did not start")
    # A node restarted by hand, recorded only in env, is stopped by down.
    if os.path.exists(os.path.join(c, "env")):
        fail("env still there after down")
    os.rename(os.path.join(c, "env.down"), os.path.join(c, "env"))
    log = open(os.path.join(node1, "sisyd.log"), "ab")
    by_hand = subprocess.Popen(
        [os.path.join(BIN, "sisyd"), "-D", node1, "--listen=127.0.0.1:" +
         open(os.path.join(node1, "devcluster.port")).read().strip()],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    MINE.append(by_hand)
    set_env_pid(c, 1, by_hand.pid)
    dc("down", c)
    wait_for(lambda: by_hand.poll() is not None, "down to stop the node "
             "recorded in env only", 20)
    print("ok: zombie and reused pids, a pid recorded in env")


def failed_up_cleans_up():
    d = os.path.join(TMP, "d")
    # Node 1 starts, then every shell call fails: the cluster never
    # becomes healthy and `up` gives up after 1 s.
    r = dc("up", "3", d, "--wait-s", "1", check=False, SISY_CLI="/bin/false")
    if r.returncode == 0:
        fail("up succeeded without a working shell")
    if not os.path.exists(os.path.join(d, "node1", "sisyd.log")):
        fail("node 1 never started: %s" % r.stderr)
    left = pids_with(os.path.join(d, "node1"))
    if left:
        fail("a failed up left node 1 running: %s\n%s" % (left, r.stderr))
    print("ok: a failed up stops what it started")


def killed_up_then_down():
    e = os.path.join(TMP, "e")
    node1 = os.path.join(e, "node1")
    # As `up` dies with SIGKILL (a CI timeout), no trap of its own runs.
    up = subprocess.Popen([DC, "up", "3", e], env=env(),
                          stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    MINE.append(up)
    wait_for(lambda: pids_with(node1) and os.path.exists(
        os.path.join(node1, "devcluster.pid")), "node 1 of an up in progress")
    up.kill()
    up.wait()
    if os.path.exists(os.path.join(e, "env")):
        os.unlink(os.path.join(e, "env"))
    dc("down", e)
    wait_for(lambda: not pids_with(node1) and
             not pids_with(os.path.join(e, "node2")),
             "down to stop the nodes of a killed up", 20)
    print("ok: down after a killed up, without an env file")


def main():
    ok = False
    try:
        zombie_and_reused_pids()
        failed_up_cleans_up()
        killed_up_then_down()
        ok = True
    except AssertionError as err:
        print("FAIL: %s" % err, flush=True)
    finally:
        for p in MINE:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
            p.wait()
        for sub in ("c", "d", "e"):
            if os.path.isdir(os.path.join(TMP, sub)):
                dc("down", os.path.join(TMP, sub), check=False)
        shutil.rmtree(TMP, ignore_errors=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
