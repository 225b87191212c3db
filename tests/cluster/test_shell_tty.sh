#!/usr/bin/env bash
# sisy-cli at a terminal (a pseudo-terminal driven by python3's pty module)
# against a real sisyd: trust on first use with the fingerprint shown, the
# password prompt (no echo), the prompt user@host:port=> and its batch and
# lost-connection marks, tab completion, Ctrl-C dropping the line, the
# history file (mode 0600, no password lines), help/quit words, and the
# exit status of an interactive session. Every wait is for a given text,
# bounded.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${BUILD_BIN:?set BUILD_BIN to the build bin directory}
command -v python3 >/dev/null || { echo "skipped: no python3"; exit 0; }
T=$(mktemp -d /tmp/sisy-test-shell-tty.XXXXXX)
export SISYD="$BIN/sisyd"
cleanup() { "$HERE/devcluster" down "$T/c" >/dev/null 2>&1; rm -rf "$T"; }
trap cleanup EXIT
"$HERE/devcluster" up 1 "$T/c" >/dev/null || { echo "FAIL: devcluster up"; exit 1; }
mkdir -p "$T/home"
CLI="$BIN/sisy-cli" ENVFILE="$T/c/env" HOMEDIR="$T/home" python3 - <<'PY'
import os, pty, select, sys, time

cli, home = os.environ["CLI"], os.environ["HOMEDIR"]
cluster = dict(l.strip().split("=", 1) for l in open(os.environ["ENVFILE"])
               if "=" in l and not l.startswith("#"))
password = cluster["SISY_PASSWORD"]
hostport = cluster["SISY_HOST"]

def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)

class Tty:
    def __init__(self, args, env):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execve(cli, [cli] + args, env)
        self.seen = b""

    def expect(self, text, what, timeout=20):
        want = text.encode()
        end = time.time() + timeout
        while want not in self.seen:
            left = end - time.time()
            if left <= 0:
                fail("%s: no %r in %r" % (what, text, self.seen[-400:]))
            r, _, _ = select.select([self.fd], [], [], min(left, 0.5))
            if r:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    fail("%s: the shell ended before %r (%r)" % (what, text, self.seen[-400:]))
                self.seen += chunk
        out, self.seen = self.seen.split(want, 1)
        return out.decode(errors="replace")

    def send(self, text):
        os.write(self.fd, text.encode())

    def wait(self):
        end = time.time() + 20
        while time.time() < end:
            pid, st = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return os.WEXITSTATUS(st)
            try:
                os.read(self.fd, 4096)
            except OSError:
                pass
            time.sleep(0.02)
        fail("the shell did not exit")

base = {"PATH": os.environ["PATH"], "HOME": home, "TERM": "dumb",
        "SISY_HOST": hostport, "SISY_USER": "admin"}
prompt = "admin@%s (leader)=> " % hostport

# 1. Unknown cluster key: the fingerprint is shown and "no" refuses (exit 2).
t = Tty([], dict(base, SISY_PASSWORD=password))
shown = t.expect("(yes/no)? ", "trust question")
if "fingerprint is BLAKE2b:" not in shown:
    fail("no fingerprint in %r" % shown)
t.send("no\n")
t.expect("not trusted", "refusal")
if t.wait() != 2:
    fail("refusing the key did not exit 2")

# 2. "yes" pins it; no password anywhere: asked for, without echo.
t = Tty([], base)
t.expect("(yes/no)? ", "trust question")
t.send("yes\n")
t.expect("Password for user admin: ", "password prompt")
t.send(password + "\n")
after = t.expect(prompt, "first prompt")
if password in after:
    fail("the password was echoed")
if "Type \"\\?\" for help" not in after:
    fail("no banner: %r" % after)
t.send("PUT tty:k 'hello'\n")
t.expect("PUT 1 VERSION ", "PUT")
t.expect(prompt, "prompt after PUT")
t.send("GET tty:k\n")
out = t.expect(prompt, "prompt after GET")
if " hello\r\n(1 row)" not in out:
    fail("aligned GET output: %r" % out)
# Completion, in the case typed.
t.send("wh\t\n")
out = t.expect(prompt, "completed WHOAMI")
if "whoami" not in out or "leader" not in out:
    fail("tab did not complete whoami: %r" % out)
# A batch shows in the prompt.
t.send("BEGIN\n")
t.expect("admin@%s (leader)*> " % hostport, "batch prompt")
t.send("ROLLBACK\n")
t.expect(prompt, "prompt after ROLLBACK")
# Ctrl-C drops the line being typed.
t.send("PUT tty:never 1")
t.expect("PUT tty:never 1", "echo of the typed line")
t.send("\x03")
t.expect(prompt, "prompt after Ctrl-C")
t.send("GET tty:never\n")
out = t.expect(prompt, "GET after Ctrl-C")
if "(0 rows)" not in out:
    fail("the line dropped by Ctrl-C ran: %r" % out)
# Every time, also right after the last key was echoed (a Ctrl-C that
# came while the shell handled a key used to wait for the next key: lost
# about one time in 20).
for i in range(40):
    t.send("PUT tty:never %d" % i)
    t.expect("PUT tty:never %d" % i, "echo of typed line %d" % i)
    t.send("\x03")
    t.expect(prompt, "prompt after Ctrl-C number %d" % (i + 2))
t.send("GET tty:never\n")
out = t.expect(prompt, "GET after the Ctrl-Cs")
if "(0 rows)" not in out:
    fail("a line dropped by Ctrl-C ran: %r" % out)
# A password given in a command stays out of the history.
t.send("USER ADD tty ROLE readonly PASSWORD 'secret-pw'\n")
t.expect(prompt, "USER ADD")
t.send("NOSUCH\n")
out = t.expect(prompt, "error at the prompt")
if "error: unknown command" not in out:
    fail("no error at the prompt: %r" % out)
t.send("help\n")
out = t.expect(prompt, "help word")
if "\\q to quit" not in out:
    fail("help: %r" % out)
t.send("quit\n")
if t.wait() != 0:
    fail("an interactive session with errors did not exit 0")

hist = os.path.join(home, ".sisy_history")
mode = os.stat(hist).st_mode & 0o777
if mode != 0o600:
    fail("history mode %o" % mode)
lines = open(hist).read().splitlines()
if "GET tty:k" not in lines or any("secret-pw" in l for l in lines):
    fail("history: %r" % lines)
if not open(os.path.join(home, ".sisy", "known_servers")).read().strip():
    fail("the accepted key was not pinned")

# 3. Pinned key and the cached login key: no question, no password; -w.
t = Tty(["-w"], base)
t.expect(prompt, "prompt with the pinned key and cached login")
t.send("\\q\n")
if t.wait() != 0:
    fail("\\q did not exit 0")
print("ok: trust on first use, password prompt, prompts, completion, Ctrl-C, history, exit status")
PY
