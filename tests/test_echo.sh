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
import socket, sys, threading, time
port = int(sys.argv[1])
n = 16 << 20
data = bytes(i * 7 % 251 for i in range(1 << 16)) * (n >> 16)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
s.settimeout(30)
s.connect(("127.0.0.1", port))
sender = threading.Thread(target=lambda: s.sendall(data))
sender.start()
time.sleep(1)  # nothing read: the server's send queue fills and it stops reading
got = bytearray()
while len(got) < n:
    b = s.recv(1 << 20)
    assert b, "closed after %d of %d bytes" % (len(got), n)
    got += b
sender.join()
assert got == data, "the echo differs from what was sent"
s.sendall(b"ping")
back = b""
while len(back) < 4:
    b = s.recv(16)
    assert b, "closed instead of echoing after the flow control"
    back += b
assert back == b"ping", back
PY
kill -0 "$spid" 2>/dev/null || fail "the server died"
ok "16 MiB unread, then read back in order, then echoing on"
echo "all passed"
