#!/usr/bin/env python3
"""Hostile and broken clients against a real sisyd (tests/cluster).

While random bytes, truncated frames, absurd length prefixes (4 GiB, 2 GiB,
0), a valid hello followed by forged sealed frames, a byte-per-second
client and 50 stalled connections hit the port, a real client keeps being
served; afterwards the server is alive, answers, closed the slow and the
stalled connections by its deadlines, and its memory stayed bounded.
"""
import os, random, socket, struct, subprocess, sys, tempfile, threading, time

BUILD_BIN = os.environ.get("BUILD_BIN", "")
SRC = os.environ.get("SRC_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
DEVCLUSTER = os.path.join(SRC, "tests", "cluster", "devcluster")
PROBE = os.path.join(BUILD_BIN, "sisy-probe")
HANDSHAKE_MS = 3000


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


def load_env(path):
    env = {}
    for line in open(path):
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            env[k] = v
    return env


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


def probe(env, *args, timeout=20):
    e = dict(os.environ)
    e.update(env)
    return subprocess.run([PROBE, *args], env=e, capture_output=True,
                          text=True, timeout=timeout)


def conn(host, port):
    try:
        return socket.create_connection((host, port), timeout=5)
    except OSError:
        return None


def send_close(host, port, data, wait=0.0):
    s = conn(host, port)
    if not s:
        return
    try:
        s.sendall(data)
        time.sleep(wait)
    except OSError:
        pass
    finally:
        s.close()


def client_hello():
    """A well-formed ClientHello (protobuf by hand: versions 1..1, a random
    32-byte 'ephemeral key', purpose CLIENT)."""
    return b"\x08\x01\x10\x01\x1a\x20" + os.urandom(32)


def frame(payload):
    return struct.pack(">I", len(payload)) + payload


def read_frame(s):
    hdr = b""
    while len(hdr) < 4:
        d = s.recv(4 - len(hdr))
        if not d:
            return None
        hdr += d
    n = struct.unpack(">I", hdr)[0]
    body = b""
    while len(body) < n:
        d = s.recv(n - len(body))
        if not d:
            return None
        body += d
    return body


def closed_by_server(s, within):
    s.settimeout(within)
    try:
        while True:
            d = s.recv(4096)
            if not d:
                return True
    except (socket.timeout, TimeoutError):
        return False
    except OSError:
        return True


def main():
    tmp = tempfile.mkdtemp(prefix="sisy-bad-input.")
    d = os.path.join(tmp, "c")
    env_run = dict(os.environ)
    if BUILD_BIN:
        env_run["SISYD"] = os.path.join(BUILD_BIN, "sisyd")
    up = subprocess.run([DEVCLUSTER, "up", "1", d, "--",
                         f"--handshake_timeout_ms={HANDSHAKE_MS}",
                         "--io_timeout_ms=3000", "--max_unauth=64"],
                        env=env_run, capture_output=True, text=True)
    if up.returncode != 0:
        fail("devcluster up: " + up.stderr)
    try:
        run(d, tmp)
    finally:
        subprocess.run([DEVCLUSTER, "down", d], capture_output=True)
        subprocess.run(["rm", "-rf", tmp])


def run(d, tmp):
    env = load_env(os.path.join(d, "env"))
    home = os.path.join(tmp, "home")
    os.makedirs(home)
    cenv = {k: env[k] for k in ("SISY_HOST", "SISY_USER", "SISY_PASSWORD",
                                "SISY_SERVER_KEY")}
    cenv["HOME"] = home
    host, port, pid = env["NODE1_HOST"], int(env["NODE1_PORT"]), int(env["NODE1_PID"])
    r = probe(cenv, "put", "bad:k", "v")
    if r.returncode != 0:
        fail("PUT before the test: " + r.stderr)
    rss0 = rss_kb(pid)

    # A real client works throughout.
    served = {"ok": 0, "bad": 0}
    stop = threading.Event()

    def real_client():
        while not stop.is_set():
            r = probe(cenv, "get", "bad:k", "pipeline", "20")
            if r.returncode == 0 and r.stdout == "v\n":
                served["ok"] += 1
            else:
                served["bad"] += 1
                print("real client failed:", r.returncode, r.stderr.strip())
            time.sleep(0.05)

    t = threading.Thread(target=real_client)
    t.start()

    random.seed(11)
    for _ in range(200):
        send_close(host, port, os.urandom(random.randint(1, 4096)))
    for blob in (struct.pack(">I", 0xFFFFFFFF) + b"x" * 100,
                 struct.pack(">I", 0x7FFFFFFF),
                 struct.pack(">I", 0),
                 struct.pack(">I", 50) + b"\x0a" * 10,
                 frame(client_hello())[:17]):
        send_close(host, port, blob, 0.05)

    # A valid hello, then forged "sealed" frames: the server answers the
    # hello, then ends the session at the first forged frame.
    s = conn(host, port)
    s.sendall(frame(client_hello()))
    if read_frame(s) is None:
        fail("no ServerHello for a well-formed ClientHello")
    s.sendall(frame(os.urandom(24 + 40)))
    if not closed_by_server(s, 5):
        fail("a forged sealed frame did not end the session")
    s.close()
    # Same, with a frame over the pre-login limit: closed at once.
    s = conn(host, port)
    s.sendall(frame(client_hello()))
    read_frame(s)
    s.sendall(struct.pack(">I", 1 << 20) + b"\0" * 100)
    if not closed_by_server(s, 5):
        fail("a 1 MiB frame before login did not end the session")
    s.close()

    # 50 stalled connections (one byte each) and a byte-per-second client.
    held = []
    for _ in range(50):
        c = conn(host, port)
        if c:
            c.sendall(b"\x00")
            held.append(c)
    slow = conn(host, port)
    hello = frame(client_hello())
    slow_closed = False
    t0 = time.time()
    for i in range(len(hello)):
        try:
            slow.sendall(hello[i:i + 1])
        except OSError:
            slow_closed = True
            break
        time.sleep(0.25)
        if time.time() - t0 > (HANDSHAKE_MS / 1000) + 3:
            break
    if not slow_closed:
        slow_closed = closed_by_server(slow, 3)
    slow.close()
    if not slow_closed:
        fail("a byte-per-second client outlived the handshake deadline")
    # The stalled ones are gone too by now (handshake deadline).
    gone = sum(1 for c in held if closed_by_server(c, 2))
    for c in held:
        c.close()
    stop.set()
    t.join()

    # kill(pid, 0) would not tell: an exited node nobody reaped (its
    # parent, devcluster, is gone) is a zombie.
    try:
        with open(f"/proc/{pid}/stat") as f:
            died = f.read().rsplit(")", 1)[1].split()[0] in "ZXx"
    except OSError:
        died = True
    if died:
        fail("sisyd died")
    r = probe(cenv, "get", "bad:k")
    if r.returncode != 0 or r.stdout != "v\n":
        fail("GET after the attack: %d %s" % (r.returncode, r.stderr))
    if served["ok"] == 0 or served["bad"] > 0:
        fail("the real client was not served throughout: %s" % served)
    if gone != 50:
        fail("%d of 50 stalled connections were still open after the "
             "handshake deadline" % (50 - gone))
    rss1 = rss_kb(pid)
    # Bounded: the attack must not have grown the server by more than a
    # few MiB of buffers (sanitizer builds carry their own overhead).
    if rss1 - rss0 > 64 * 1024:
        fail("RSS grew from %d kB to %d kB" % (rss0, rss1))
    print("ok: 205 hostile blobs, forged frames, 50 stalled and one slow "
          "connection; real client served %d times; RSS %d -> %d kB"
          % (served["ok"], rss0, rss1))


if __name__ == "__main__":
    main()
