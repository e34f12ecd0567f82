#!/usr/bin/env bash
# krill-echo against a live client: echo-load's round trips come back byte for byte (64 B on
# 100 connections, 256 KiB on 8, more than the socket buffers hold), and a client that sends
# 16 MiB without reading gets every byte back in order once it reads (flow control: the
# server holds what its full send queue refuses, stops reading, and goes on when it drains),
# and the connection still echoes afterwards. usage: test_echo.sh KRILL_ECHO ECHO_LOAD
set -u
server=$1
echo_load=$2

. "$(dirname "$0")/live.sh"

start_server krill-echo "$server" --port 0 --schedulers 2

# load CONNS SIZE: one second of echo-load; every echo must match and some must come.
load() {
	local line
	line=$("$echo_load" --port "$port" --conns "$1" --size "$2" --seconds 1 --threads 1) ||
		fail "echo-load --conns $1 --size $2 failed"
	python3 -c 'import json, sys; r = json.loads(sys.argv[1]); sys.exit(0 if r["errors"] == 0 and r["rate"] > 0 else 1)' "$line" ||
		fail "echo-load --conns $1 --size $2: $line"
	ok "$1 connections of $2 bytes: $line"
}
load 100 64
load 8 262144

python3 - "$port" <<'PY' || fail "unread"
import socket, struct, sys, threading, time
port = int(sys.argv[1])
n = 16 << 20
# Every 8-byte word holds its own offset: a misplaced run of bytes names where it came from.
data = b"".join(struct.pack("<Q", k) for k in range(0, n, 8))
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
s.settimeout(60)  # per call: a stall fails, a slow machine does not
s.connect(("127.0.0.1", port))
t0 = time.monotonic()
sent = 0
errors = []
def send():
    # send, not sendall: sendall's timeout bounds the whole 16 MiB, not a stall
    global sent
    try:
        view = memoryview(data)
        while sent < n:
            sent += s.send(view[sent:sent + (1 << 20)])
    except OSError as e:
        errors.append("send failed after %d of %d bytes, at %.1f s: %r" % (sent, n, time.monotonic() - t0, e))
sender = threading.Thread(target=send)
sender.start()
time.sleep(1)  # nothing read: the server's send queue fills and it stops reading
got = bytearray()
try:
    while len(got) < n:
        b = s.recv(1 << 20)
        if not b:
            sys.exit("closed after %d of %d bytes" % (len(got), n))
        got += b
except OSError as e:
    sys.exit("receive failed after %d of %d bytes (%d sent), at %.1f s: %r %s"
             % (len(got), n, sent, time.monotonic() - t0, e, errors))
sender.join()
if errors:
    sys.exit(errors[0])
if got != data:
    # Say where the echo went wrong: the first differing word and where its bytes came from.
    i = next(k for k in range(0, n, 4096) if got[k:k + 4096] != data[k:k + 4096])
    i = next(k for k in range(i, n) if got[k] != data[k])
    word = bytes(got[i:i + 8])
    src = data.find(word)  # -1: bytes never sent
    bad = sum(1 for k in range(0, n, 4096) if got[k:k + 4096] != data[k:k + 4096])
    sys.exit("the echo differs from what was sent: bytes %d.. hold %s (sent at %s); %d of %d "
             "4 KiB pages differ; same length: %s" % (i, word.hex(), src, bad, n >> 12,
                                                    len(got) == n))
s.sendall(b"ping")
back = b""
while len(back) < 4:
    b = s.recv(16)
    if not b:
        sys.exit("closed instead of echoing after the flow control")
    back += b
if back != b"ping":
    sys.exit("echoed %r for b'ping'" % back)
print("16 MiB in %.1f s" % (time.monotonic() - t0))
PY
kill -0 "$spid" 2>/dev/null || fail "the server died"
ok "16 MiB unread, then read back in order, then echoing on"
echo "all passed"
