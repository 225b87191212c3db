#!/usr/bin/env python3
"""faultproxy_selftest.py — sisy-faultproxy on its own, between two sockets
standing in for nodes 1 and 2 (ctest cluster_faultproxy).

Checks: bytes pass both ways; a one-way cut stalls exactly one direction and
heal delivers the held bytes intact and in order; "drop" loses bytes for good
(only what is sent after heal arrives); a symmetric cut blocks a new
connection's first bytes until healed; reset aborts connections; EOF is
passed on; a route with no upstream refuses; isolate/partition set the
rules that status reports; bad commands are refused.

Positive conditions are polled with deadlines. "Not delivered" can only be
shown over a window: the proxy's own byte counters back each such check.
"""
import os
import socket
import subprocess
import sys
import tempfile
import time

BIN = os.environ.get("BUILD_BIN") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "bin")
PROXY = os.path.join(BIN, "sisy-faultproxy")
DEADLINE = 10.0


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def wait_for(cond, what, limit=DEADLINE):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.01)
    fail("timed out waiting for " + what)


class Proxy:
    def __init__(self, tmp):
        self.pf = os.path.join(tmp, "ports")
        self.p = subprocess.Popen([PROXY, "--nodes", "3", "--port-file",
                                   self.pf])
        wait_for(lambda: os.path.exists(self.pf), "the port file")
        self.routes = {}
        for line in open(self.pf):
            w = line.split()
            if w[0] == "control":
                self.ctl_port = int(w[1])
            else:
                self.routes[(int(w[1]), int(w[2]))] = int(w[3])
        self.ctl = socket.create_connection(("127.0.0.1", self.ctl_port))
        self.ctl_r = self.ctl.makefile("r")

    def cmd(self, line, ok=True):
        self.ctl.sendall((line + "\n").encode())
        ans = self.ctl_r.readline().strip()
        if ok and not ans.startswith("OK"):
            fail("%r answered %r" % (line, ans))
        return ans

    def stats(self, a, b):
        ans = self.cmd("stats %d %d" % (a, b))
        return dict(kv.split("=") for kv in ans.split()[1:])


def recv_exactly(s, n):
    s.settimeout(DEADLINE)
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            fail("connection closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def nothing_arrives(s, window=0.3):
    s.settimeout(window)
    try:
        data = s.recv(100)
    except socket.timeout:
        return True
    fail("bytes arrived across a cut: %r" % data)


def pair(px, server, frm, to):
    """A connection from node `frm` to node `to` through the proxy."""
    c = socket.create_connection(("127.0.0.1", px.routes[(frm, to)]))
    server.settimeout(DEADLINE)
    s, _ = server.accept()
    return c, s


def main():
    if not os.access(PROXY, os.X_OK):
        fail("no %s (build the sisy-faultproxy target)" % PROXY)
    tmp = tempfile.mkdtemp(prefix="sisy-fp.")
    px = Proxy(tmp)
    try:
        run(px)
    finally:
        px.cmd("quit", ok=False)
        px.p.wait(timeout=DEADLINE)
    if px.p.returncode != 0:
        fail("proxy exited with %d" % px.p.returncode)
    pair_mode(tmp)
    print("faultproxy: all checks passed")


def pair_mode(tmp):
    """devcluster's --proxy-cmd form: one route, port file I_J.ctl."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    p = subprocess.Popen([PROXY, "pair", tmp, "0",
                          str(server.getsockname()[1]), "4", "7"])
    ctl = os.path.join(tmp, "4_7.ctl")
    wait_for(lambda: os.path.exists(ctl), "the pair's port file")
    lines = open(ctl).read().split("\n")
    route = [l.split() for l in lines if l.startswith("route")]
    if len(route) != 1 or route[0][1:3] != ["4", "7"]:
        fail("pair mode should open exactly route 4>7: %r" % lines)
    c = socket.create_connection(("127.0.0.1", int(route[0][3])))
    server.settimeout(DEADLINE)
    s, _ = server.accept()
    c.sendall(b"pair")
    if recv_exactly(s, 4) != b"pair":
        fail("pair mode should forward to its target port")
    r = subprocess.run([PROXY, "ctl", "@" + ctl, "quit"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        fail("pair mode: quit: %r" % (r,))
    p.wait(timeout=DEADLINE)
    for x in (c, s, server):
        x.close()


def run(px):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    port = server.getsockname()[1]
    px.cmd("ping")
    if len(px.routes) != 6:
        fail("--nodes 3 should open 6 routes, port file has %d" %
             len(px.routes))

    # No upstream for node 2 yet: refused (closed at once).
    c = socket.create_connection(("127.0.0.1", px.routes[(1, 2)]))
    c.settimeout(DEADLINE)
    if c.recv(10) != b"":
        fail("a route without upstream should close the connection")
    c.close()
    if "refused=1" not in px.cmd("status"):
        fail("status should count the refused connection")

    px.cmd("upstream 2 127.0.0.1:%d" % port)
    c, s = pair(px, server, 1, 2)
    c.sendall(b"hello")
    if recv_exactly(s, 5) != b"hello":
        fail("1->2 bytes altered")
    s.sendall(b"back")
    if recv_exactly(c, 4) != b"back":
        fail("2->1 bytes altered")

    # One-way cut 1 -> 2: 2 -> 1 still flows, 1 -> 2 waits, heal delivers.
    px.cmd("oneway 1 2")
    before = int(px.stats(1, 2)["bytes"])
    c.sendall(b"held-1")
    s.sendall(b"free")
    if recv_exactly(c, 4) != b"free":
        fail("2->1 should pass a one-way cut of 1->2")
    nothing_arrives(s)
    c.sendall(b"held-2")
    if int(px.stats(1, 2)["bytes"]) != before:
        fail("bytes were forwarded 1->2 across the cut")
    if "1>2:stall" not in px.cmd("status") or "2>1" in px.cmd("status"):
        fail("status should show exactly 1>2 stalled")
    px.cmd("heal")
    if recv_exactly(s, 12) != b"held-1held-2":
        fail("held bytes must arrive intact and in order after heal")

    # Drop: what is sent during the cut is lost for good.
    px.cmd("oneway 1 2 drop")
    c.sendall(b"lost")
    wait_for(lambda: int(px.stats(1, 2)["dropped"]) >= 4, "the drop count")
    px.cmd("heal 1 2")
    c.sendall(b"after")
    if recv_exactly(s, 5) != b"after":
        fail("dropped bytes reappeared")

    # EOF passes through; the other direction stays open.
    c.shutdown(socket.SHUT_WR)
    s.settimeout(DEADLINE)
    if s.recv(10) != b"":
        fail("EOF of 1 should reach 2")
    s.sendall(b"still")
    if recv_exactly(c, 5) != b"still":
        fail("a half-closed connection should carry the other direction")
    s.close()
    c.settimeout(DEADLINE)
    if c.recv(10) != b"":
        fail("EOF of 2 should reach 1")
    c.close()
    wait_for(lambda: px.stats(1, 2)["open"] == "0",
             "the closed connection to be forgotten")

    # Symmetric cut: a new connection is accepted, its bytes wait.
    px.cmd("cut 1 2")
    c, s = pair(px, server, 1, 2)
    c.sendall(b"hs")
    s.sendall(b"sh")
    nothing_arrives(s)
    nothing_arrives(c, 0.05)
    px.cmd("heal")
    if recv_exactly(s, 2) != b"hs" or recv_exactly(c, 2) != b"sh":
        fail("bytes of a connection made during a cut must flow on heal")

    # Reset aborts every connection between the pair.
    if px.cmd("reset 2 1") != "OK 1":
        fail("reset should abort the one open connection")
    c.settimeout(DEADLINE)
    try:
        data = c.recv(10)
    except ConnectionResetError:
        data = b""
    if data != b"":
        fail("a reset connection should end")
    c.close()
    s.close()

    # Connections node 2 makes to node 1 obey the same per-direction rules.
    px.cmd("upstream 1 127.0.0.1:%d" % port)
    px.cmd("oneway 1 2")
    c, s = pair(px, server, 2, 1)   # c is node 2, s is node 1
    c.sendall(b"2to1")
    if recv_exactly(s, 4) != b"2to1":
        fail("2->1 should pass on a connection 2 dialled")
    s.sendall(b"1to2")
    nothing_arrives(c)
    px.cmd("heal")
    if recv_exactly(c, 4) != b"1to2":
        fail("1->2 held bytes should arrive after heal")
    c.close()
    s.close()

    # isolate / partition set the rules status reports.
    px.cmd("isolate 3")
    st = px.cmd("status")
    for want in ("3>1:stall", "1>3:stall", "3>2:stall", "2>3:stall"):
        if want not in st:
            fail("isolate 3: status lacks %s: %s" % (want, st))
    if "1>2" in st:
        fail("isolate 3 must not cut 1-2: " + st)
    px.cmd("heal")
    px.cmd("partition 1 2,3 drop")
    st = px.cmd("status")
    if "1>2:drop" not in st or "3>1:drop" not in st or "2>3" in st:
        fail("partition 1 | 2,3: " + st)
    px.cmd("heal")
    if px.cmd("status").split("cut=")[1] != "":
        fail("heal should clear every rule")

    for bad in ("cut 1", "cut 0 2", "cut 1 2 sideways", "route 1 1",
                "upstream 2 nocolon", "frobnicate", "partition 1,x 2"):
        if not px.cmd(bad, ok=False).startswith("ERR"):
            fail("%r should be refused" % bad)
    r = subprocess.run([PROXY, "ctl", "@" + px.pf, "ping"],
                       capture_output=True, text=True)
    if r.returncode != 0 or r.stdout.strip() != "OK":
        fail("ctl mode: %r" % (r,))
    r = subprocess.run([PROXY, "ctl", "@" + px.pf, "bogus"],
                       capture_output=True, text=True)
    if r.returncode != 1:
        fail("ctl mode should exit 1 on ERR")
    server.close()


if __name__ == "__main__":
    main()
