"""libfault.py — what the cluster fault scenarios (tests/cluster/fault_*.py)
share: a real cluster through devcluster (optionally with sisy-faultproxy
between every pair of nodes), the shell for CLUSTER commands, sisy-history
runs in the background, and the checks on their histories.

Every wait polls a condition against a deadline (wait_for); nothing sleeps
and hopes. Deadlines are generous because the check build runs under
ASan+UBSan on a shared 2-core machine; a scenario still fails loudly (with
what it waited for) when one passes. Times are CLOCK_MONOTONIC ns
(time.monotonic_ns()), the clock sisy-history records with.
"""
import csv
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SRC = os.environ.get("SRC_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("BUILD_BIN") or os.path.join(SRC, "build", "bin")
DEVCLUSTER = os.environ.get("SISY_DEVCLUSTER") or os.path.join(
    SRC, "tests", "cluster", "devcluster")

# Raft timing for the tests: longer than the defaults, so a sanitized build
# on a loaded machine does not hold spurious elections (those would not
# break anything, only slow the scenario down). Ticks stay at the default.
TEST_FLAGS = ["--election_ticks=40", "--heartbeat_ticks=4"]
WAIT = float(os.environ.get("SISY_FAULT_WAIT", "60"))  # seconds per wait


class Fail(Exception):
    pass


def log(msg):
    print("[%7.2f] %s" % (time.monotonic() - T0, msg), flush=True)


T0 = time.monotonic()
RUNNING = []  # History processes, ended by run() whatever happens


def wait_for(cond, what, timeout=None):
    """Polls cond() every 50 ms until it returns something true, which is
    returned; raises Fail naming `what` after timeout seconds."""
    end = time.monotonic() + (timeout or WAIT)
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            raise Fail("timed out after %.0f s waiting for %s" %
                       (timeout or WAIT, what))
        time.sleep(0.05)


def load_env(path):
    env = {}
    for line in open(path):
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            if len(v) >= 2 and v[0] == v[-1] == '"':
                v = v[1:-1]
            env[k] = v
    return env


class Cluster:
    """N nodes through devcluster, in a temporary folder (kept on failure
    for the logs when SISY_KEEP=1)."""

    def __init__(self, n, proxy=False, flags=()):
        self.n = n
        self.proxy_on = proxy
        self.tmp = tempfile.mkdtemp(prefix="sisy-fault.")
        self.dir = os.path.join(self.tmp, "c")
        self.home = os.path.join(self.tmp, "home")
        os.makedirs(self.home)
        self.flags = list(TEST_FLAGS) + list(flags)
        self.env = {}

    # -- processes -------------------------------------------------------
    def _run(self, args, timeout=120, check=True, env=None):
        e = dict(os.environ)
        e["HOME"] = self.home
        e["SISYD"] = os.path.join(BIN, "sisyd")
        e["PATH"] = BIN + os.pathsep + e.get("PATH", "")
        e.update(env or {})
        r = subprocess.run(args, env=e, capture_output=True, text=True,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise Fail("%s exited %d:\n%s%s" % (" ".join(args), r.returncode,
                                                r.stdout, r.stderr))
        return r

    def devcluster(self, *args, check=True, timeout=180):
        r = self._run([DEVCLUSTER, *args], check=check, timeout=timeout)
        if os.path.exists(os.path.join(self.dir, "env")):
            self.env = load_env(os.path.join(self.dir, "env"))
        return r

    def up(self):
        args = ["up", str(self.n), self.dir, "--log-level",
                os.environ.get("SISY_FAULT_LOG_LEVEL", "info")]
        if self.proxy_on:
            # One sisy-faultproxy per ordered pair (devcluster runs
            # "CMD PORT TARGET i j"); each writes proxies/i_j.ctl.
            args += ["--proxy-cmd", "%s pair %s" % (
                os.path.join(BIN, "sisy-faultproxy"),
                os.path.join(self.dir, "proxies"))]
        self.devcluster(*args, "--", *self.flags)
        log("cluster of %d up: %s" % (self.n, self.env.get("SISY_HOST")))
        return self

    def down(self):
        # Also without an env file: an `up` killed half-way (a timeout)
        # leaves only its pid files.
        if os.path.isdir(self.dir):
            self.devcluster("down", self.dir, check=False)
        if os.environ.get("SISY_KEEP") != "1":
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            log("kept %s" % self.tmp)

    def ids(self):
        """Every node devcluster knows of (running or not)."""
        return [int(x) for x in self.env.get("NODE_IDS", "").split()] or \
            list(range(1, self.n + 1))

    def pid(self, i):
        return int(self.env.get("NODE%d_PID" % i) or 0)

    def addr(self, i):
        return "%s:%s" % (self.env["NODE%d_HOST" % i],
                          self.env["NODE%d_PORT" % i])

    def data_dir(self, i):
        return self.env.get("NODE%d_DIR" % i) or os.path.join(
            self.dir, "node%d" % i)

    def alive(self, i):
        """Node i's recorded process runs: not a zombie (a zombie still
        answers kill(0)) and still sisyd on node i's data directory (not
        a reused PID)."""
        pid = self.pid(i)
        if not pid:
            return False
        try:
            with open("/proc/%d/stat" % pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] in "ZXx":
                    return False
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                args = f.read().split(b"\0")
        except (OSError, IndexError):
            return False
        return self.data_dir(i).encode() in args

    def kill(self, i):
        """SIGKILL node i; returns the monotonic ns right after."""
        if not self.alive(i):
            raise Fail("node %d is not running (pid %d)" % (i, self.pid(i)))
        os.kill(self.pid(i), signal.SIGKILL)
        t = time.monotonic_ns()
        wait_for(lambda: not self.alive(i), "node %d to die" % i, 10)
        self.devcluster("kill", self.dir, str(i))  # its bookkeeping
        log("SIGKILL node %d" % i)
        return t

    def kill_all(self):
        """SIGKILL every running node at the same moment (a power cut of
        the whole cluster, as far as processes go)."""
        ids = [i for i in self.ids() if self.alive(i)]
        for i in ids:
            os.kill(self.pid(i), signal.SIGKILL)
        for i in ids:
            self.devcluster("kill", self.dir, str(i))  # its bookkeeping
        log("SIGKILL nodes %s at once" % ids)

    def lose_disk(self, i):
        """Node i's disk is gone: everything sisyd keeps in its data
        directory is deleted (devcluster's own files and the log stay, so
        `devcluster start` can try to run it again)."""
        d = self.data_dir(i)
        for name in os.listdir(d):
            if name.startswith("devcluster.") or name == "sisyd.log":
                continue
            p = os.path.join(d, name)
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
            else:
                os.unlink(p)
        log("node %d lost its disk" % i)

    def add(self):
        """devcluster add: a fresh node joins (CLUSTER ADD NODE, sisyd init
        --join) and starts; returns its id."""
        r = self.devcluster("add", self.dir)
        nid = int(r.stdout.strip().splitlines()[-1])
        log("node %d joined at %s" % (nid, self.addr(nid)))
        return nid

    def stop(self, i):
        self.devcluster("stop", self.dir, str(i))
        log("stopped node %d" % i)

    def start(self, i, check=True):
        r = self.devcluster("start", self.dir, str(i), check=check)
        if r.returncode == 0:
            log("started node %d" % i)
        return r

    # -- the shell -------------------------------------------------------
    def cli(self, i, *args, check=True, timeout=30):
        return self.cli_at(self.addr(i), *args, check=check,
                           timeout=timeout)

    def cli_at(self, addr, *args, check=True, timeout=30):
        host, port = addr.rsplit(":", 1)
        e = {k: v for k, v in self.env.items() if k.startswith("SISY_")}
        e.pop("SISY_HOST", None)
        return self._run([os.path.join(BIN, "sisy-cli"), "-h", host, "-p",
                          port, *args], env=e, check=check, timeout=timeout)

    def info(self, i):
        return self.info_at(self.addr(i))

    def info_at(self, addr):
        """CLUSTER INFO as the node at addr sees itself (its own Raft status): a dict
        name -> value ("role", "term", "leader_id", "applied_index",
        "log_first_index", "snapshots_installed", ...), or None when it
        does not answer."""
        try:
            r = self.cli_at(addr, "--csv", "-c", "CLUSTER INFO",
                            check=False, timeout=10)
        except subprocess.TimeoutExpired:
            return None
        if r.returncode != 0 or not r.stdout.strip():
            return None
        rows = list(csv.reader(io.StringIO(r.stdout)))
        head = [h.strip().lower() for h in rows[0]]
        if "name" not in head or "value" not in head:
            raise Fail("CLUSTER INFO --csv has no name/value columns: %r" %
                       r.stdout[:200])
        ni, vi = head.index("name"), head.index("value")
        return {row[ni].strip(): row[vi].strip() for row in rows[1:]
                if len(row) > max(ni, vi)}

    def nodes(self, via):
        """CLUSTER NODES as node `via` reports it: a list of dicts (lower-
        case column names), or None when it does not answer. Other
        members' rows come from their periodic reports (may be stale)."""
        try:
            r = self.cli(via, "--csv", "-c", "CLUSTER NODES", check=False,
                         timeout=10)
        except subprocess.TimeoutExpired:
            return None
        if r.returncode != 0 or not r.stdout.strip():
            return None
        rows = list(csv.reader(io.StringIO(r.stdout)))
        head = [h.strip().lower() for h in rows[0]]
        return [dict(zip(head, (x.strip() for x in row))) for row in rows[1:]
                if row]

    def leader(self, via):
        """The leader node `via` knows of (its own Raft view; 0: none,
        None: no answer)."""
        inf = self.info(via)
        if inf is None:
            return None
        return int(inf.get("leader_id") or 0)

    def role(self, i):
        inf = self.info(i)
        return inf.get("role") if inf else None

    def wait_leader(self, among=None, exclude=(), timeout=None):
        """Waits until every live node of `among` (default: all) names the
        same leader, not in `exclude`, and that leader says it leads.
        Returns its id."""
        among = [i for i in (among or self.ids()) if self.alive(i)]

        def agreed():
            seen = set()
            for i in among:
                l = self.leader(i)
                if not l or l in exclude:
                    return None
                seen.add(l)
            if len(seen) != 1:
                return None
            l = seen.pop()
            return l if self.role(l) == "leader" else None
        l = wait_for(agreed, "one leader agreed by nodes %s (not %s)" %
                     (among, list(exclude)), timeout)
        log("leader: node %d" % l)
        return l

    def proxy(self, *words):
        """A command to the fault proxies between the nodes (one process
        per ordered pair: every one gets the command and applies it to its
        own connections). Returns the answers."""
        d = os.path.join(self.dir, "proxies")
        files = sorted(f for f in os.listdir(d) if f.endswith(".ctl"))
        if not files:
            raise Fail("no fault proxies in %s" % d)
        answers = []
        for f in files:
            port = int(open(os.path.join(d, f)).read().split()[1])
            with socket.create_connection(("127.0.0.1", port),
                                          timeout=10) as s:
                s.sendall((" ".join(words) + "\n").encode())
                ans = s.makefile("r").readline().strip()
            if not ans.startswith("OK"):
                raise Fail("proxy %s (%s): %s" % (" ".join(words), f, ans))
            answers.append(ans)
        log("proxy: %s" % " ".join(words))
        return answers

    def dump(self, i):
        """Every key and value on node i, from its own state (a stale
        read), as text; None if it does not answer."""
        r = self.cli(i, "--consistency=stale", "-At", "-c", "SCAN PREFIX ''",
                     check=False, timeout=60)
        return r.stdout if r.returncode == 0 else None

    def wait_converged(self, nodes=None, timeout=None):
        """Waits until the given nodes (default: all live ones) hold the
        same data: equal dumps of their own state, twice in a row (so no
        write was in flight between the two reads of one node)."""
        nodes = nodes or [i for i in self.ids() if self.alive(i)]

        def same():
            d = [self.dump(i) for i in nodes]
            if any(x is None for x in d) or len(set(d)) != 1:
                return None
            d2 = [self.dump(i) for i in nodes]
            return d2 == d and d[0]
        data = wait_for(same, "nodes %s to hold the same data" % nodes,
                        timeout)
        log("nodes %s converged (%d keys)" % (nodes, data.count("\n")))
        return data


class History:
    """A sisy-history run in the background."""

    def __init__(self, cluster, name, hosts, clients=4, pinned=False,
                 first_client=1, args=()):
        self.c = cluster
        self.out = os.path.join(cluster.tmp, name + ".jsonl")
        self.progress = os.path.join(cluster.tmp, name + ".progress")
        self.stop_file = os.path.join(cluster.tmp, name + ".stop")
        cmd = [os.path.join(BIN, "sisy-history"), "--out", self.out,
               "--hosts", ",".join(cluster.addr(i) for i in hosts),
               "--clients", str(clients), "--first-client",
               str(first_client), "--progress", self.progress,
               "--stop-file", self.stop_file, "--duration-ms", "600000",
               "--timeout-ms", "3000", "--retry-ms", "6000",
               "--seed", str(first_client)] + list(args)
        if pinned:
            cmd.append("--pinned")
        e = dict(os.environ)
        e.update({k: v for k, v in cluster.env.items()
                  if k.startswith("SISY_")})
        e["HOME"] = cluster.home
        self.p = subprocess.Popen(cmd, env=e, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        self.name = name
        self.summary = None
        RUNNING.append(self)

    def counts(self):
        try:
            w = open(self.progress).read().split()
        except OSError:
            return {"ok_writes": 0, "ok_reads": 0, "done": 0,
                    "last_ok_write_ns": 0}
        return {w[i]: int(w[i + 1]) for i in range(0, len(w) - 1, 2)}

    def wait_writes(self, n, what="", timeout=None):
        """Waits until n more writes were acknowledged than now."""
        base = self.counts()["ok_writes"]
        wait_for(lambda: self.counts()["ok_writes"] >= base + n,
                 "%d acknowledged writes of %s %s" % (n, self.name, what),
                 timeout)

    def stop(self):
        open(self.stop_file, "w").close()
        out, err = self.p.communicate(timeout=WAIT * 3)
        sys.stdout.write(err)
        line = [x for x in out.splitlines() if x.startswith("history:")]
        if not line:
            raise Fail("%s printed no summary (exit %d):\n%s" %
                       (self.name, self.p.returncode, out))
        log("%s: %s" % (self.name, line[0]))
        self.summary = dict(kv.split("=") for kv in line[0].split()[1:])
        if self.p.returncode != 0:
            raise Fail("%s exit %d: acknowledged writes lost or unverified" %
                       (self.name, self.p.returncode))
        return self.summary

    def records(self):
        return [json.loads(x) for x in open(self.out)]


def lincheck(cluster, histories, name="history"):
    """Merges the histories and runs sisy-lincheck on them; Fail unless
    linearizable."""
    path = os.path.join(cluster.tmp, name + ".all.jsonl")
    with open(path, "w") as out:
        for h in histories:
            with open(h.out) as f:
                shutil.copyfileobj(f, out)
    r = subprocess.run([os.path.join(BIN, "sisy-lincheck"), path],
                       capture_output=True, text=True, timeout=600)
    log("lincheck: " + r.stdout.strip().splitlines()[0] if r.stdout else
        "lincheck: (no output) " + r.stderr)
    if r.returncode != 0:
        keep = os.path.join(tempfile.gettempdir(),
                            "sisy-fault-%s-%d.jsonl" % (name, os.getpid()))
        shutil.copy(path, keep)
        raise Fail("sisy-lincheck exit %d (history kept in %s):\n%s%s" %
                   (r.returncode, keep, r.stdout, r.stderr))


def first_ok_write_after(records, t):
    """ns of the first acknowledged write among those sent at or after t
    (None if there is none)."""
    best = None
    for o in records:
        if o["op"] != "get" and o["outcome"] == "ok" and o["sent"] >= t:
            best = o["return"] if best is None else min(best, o["return"])
    return best


def run(scenario):
    """Runs scenario(made) (it appends the clusters it makes to `made`),
    always taking them down; exit 1 on any failure, with the tail of
    every node's log."""
    made = []
    ok = False
    try:
        scenario(made)
        ok = True
    except Fail as e:
        print("FAIL: %s" % e, flush=True)
    except Exception:
        import traceback
        traceback.print_exc()
    finally:
        for h in RUNNING:
            if h.p.poll() is None:
                h.p.kill()
                h.p.communicate()
        # The clusters come down whatever happens while reporting (a
        # closed stdout must not leave nodes running).
        try:
            if not ok:
                for c in made:
                    for i in c.ids():
                        logf = os.path.join(c.data_dir(i), "sisyd.log")
                        if os.path.exists(logf):
                            print("--- tail of node %d's log ---" % i)
                            print("".join(open(logf, errors="replace")
                                          .readlines()[-25:]), flush=True)
        finally:
            for c in made:
                c.down()
    if not ok:
        sys.exit(1)
    log("PASS")
