#!/usr/bin/env bash
# Robustness of krill-http against a live server: a plain request, pipelined answers in
# order, malformed input (400, then close), oversized heads (431), a client reset mid-request,
# a slowloris client cut off by --header-timeout-ms, a client that does not read its answers
# (flow control, every answer in order afterwards), and 10,000 idle connections (still
# serving, bounded memory). The socket work is a python3 helper. usage: test_http.sh KRILL_HTTP
set -u
server=$1

. "$(dirname "$0")/live.sh"

ulimit -n "$(ulimit -Hn)" 2>/dev/null
start_server krill-http "$server" --port 0 --schedulers 2 --header-timeout-ms 1500

cat >"$tmp/client.py" <<'PY'
import resource, socket, struct, sys, time

port = int(sys.argv[2])
HELLO = b"Hello, World!\n"

def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s

def read_all(s):
    """Everything until the server closes (fails on a timeout)."""
    data = b""
    while True:
        try:
            b = s.recv(65536)
        except ConnectionResetError:
            return data
        if not b:
            return data
        data += b

def responses(data):
    """Split a byte stream of responses: [(status, headers, body)]."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, "incomplete response: %r" % data[:200]
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        hdrs = {}
        for l in lines[1:]:
            k, _, v = l.partition(b":")
            hdrs[k.strip().lower()] = v.strip()
        n = int(hdrs.get(b"content-length", b"0"))
        if hdrs.get(b"x-head") == b"1":
            n = 0
        out.append((status, hdrs, rest[:n]))
        data = rest[n:]
    return out

def get(path="/", extra=b""):
    s = conn()
    s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" +
              extra + b"\r\n")
    r = responses(read_all(s))
    s.close()
    return r

def t_plain():
    r = get()
    assert len(r) == 1 and r[0][0] == 200 and r[0][2] == HELLO, r

def t_pipelined():
    s = conn()
    # GET, HEAD, GET: the HEAD answer has no body, so answers out of order would not parse.
    s.sendall(b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\n"
              b"HEAD /2 HTTP/1.1\r\nHost: t\r\n\r\n"
              b"GET /3 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    data = read_all(s)
    first, rest = data.split(HELLO, 1)
    head2, sep, rest = rest.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 200") and head2.startswith(b"HTTP/1.1 200"), data
    assert b"Content-Length: 14" in head2 and rest.startswith(b"HTTP/1.1 200"), data
    assert rest.endswith(HELLO) and rest.count(HELLO) == 1, data
    # Many in one send: every answer, no more.
    s = conn()
    s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n" * 200 +
              b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    r = responses(read_all(s))
    assert len(r) == 201 and all(x[0] == 200 and x[2] == HELLO for x in r), len(r)

def expect_close(payload, status):
    s = conn()
    s.sendall(payload)
    r = responses(read_all(s))  # returns only once the server has closed
    assert len(r) == 1 and r[0][0] == status, r
    assert r[0][1].get(b"connection") == b"close", r

def t_malformed():
    expect_close(b"GARBAGE\r\n\r\n", 400)
    expect_close(b"GET / HTTP/1.1\r\nHost: t\r\n folded\r\n\r\n", 400)
    expect_close(b"GET / HTTP/2.0\r\n\r\n", 505)
    expect_close(b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n", 501)
    t_plain()

def t_oversized():
    expect_close(b"GET / HTTP/1.1\r\nHost: t\r\nX: " + b"a" * 9000 + b"\r\n\r\n", 431)
    expect_close(b"GET / HTTP/1.1\r\nHost: t\r\n" + b"X: y\r\n" * 101 + b"\r\n", 431)
    expect_close(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999\r\n\r\n", 413)
    t_plain()

def t_reset():
    for _ in range(20):
        s = conn()
        s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nX-Partial: ")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()  # linger 0: an RST
    t_plain()

def t_slowloris():
    # A byte every 0.2 s of a 200-byte head would take 40 s; the server allows 1.5 s.
    s = conn()
    payload = b"GET / HTTP/1.1\r\nHost: t\r\nX: " + b"a" * 170 + b"\r\n\r\n"
    t0 = time.monotonic()
    for i in range(len(payload)):
        try:
            s.send(payload[i:i + 1])
            s.settimeout(0.2)
            b = s.recv(1024)
            if not b or b.startswith(b"HTTP/1.1 408"):
                break
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            break
    else:
        raise AssertionError("the slow request was never cut off")
    assert i < len(payload) - 1, i
    print("  cut off after %d bytes, %.1f s" % (i + 1, time.monotonic() - t0))
    t_plain()

def t_unread():
    # A client that sends far more requests than it reads: the answers fill the socket and the
    # server's send queue, the server stops reading (flow control) and starts again once they
    # drain, as often as it takes. Every answer must come, in order, and then the connection
    # must still serve.
    import threading
    n = 100000
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    s.settimeout(30)
    s.connect(("127.0.0.1", port))
    req = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
    sender = threading.Thread(target=lambda: s.sendall(req * n))
    sender.start()
    time.sleep(1)  # nothing read: the server must block, and stop reading
    one = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 14\r\n\r\n" + HELLO
    got = 0
    buf = b""
    while got < n * len(one):
        b = s.recv(1 << 20)
        assert b, "closed after %d of %d bytes" % (got, n * len(one))
        buf += b
        k = len(buf) - len(buf) % len(one)
        assert buf[:k] == one * (k // len(one)), buf[:200]
        got += k
        buf = buf[k:]
    sender.join()
    s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    r = responses(read_all(s))
    assert len(r) == 1 and r[0][0] == 200, r

def t_idle():
    resource.setrlimit(resource.RLIMIT_NOFILE, (20000, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    n = int(sys.argv[3])
    socks = []
    for i in range(n):
        socks.append(socket.create_connection(("127.0.0.1", port), timeout=30))
    time.sleep(1)
    t_plain()
    # Every idle connection is still served.
    for s in socks[:: max(1, n // 100)]:
        s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        b = b""
        while not b.endswith(HELLO):
            b += s.recv(1024)
    print("  %d idle connections held" % n)
    sys.stdout.flush()
    sys.stdin.readline()  # the shell measures RSS meanwhile
    for s in socks:
        s.close()

globals()["t_" + sys.argv[1]]()
PY

run() { # run TEST [ARGS]
	python3 "$tmp/client.py" "$1" "$port" "${@:2}" || fail "$1"
	kill -0 "$spid" 2>/dev/null || fail "$1: the server died"
	ok "$1"
}
run plain
run pipelined
run malformed
run oversized
run reset
run slowloris

# 10,000 idle connections: the helper holds them open until told to go on.
n=10000
[ "$(ulimit -n)" -lt $((n + 200)) ] && n=$(($(ulimit -n) / 2 - 100))
mkfifo "$tmp/go"
python3 "$tmp/client.py" idle "$port" "$n" <"$tmp/go" >"$tmp/idle" 2>&1 &
ipid=$!
exec 3>"$tmp/go"
for _ in $(seq 600); do
	grep -q 'idle connections held' "$tmp/idle" && break
	kill -0 "$ipid" 2>/dev/null || break
	sleep 0.1
done
grep -q 'idle connections held' "$tmp/idle" || { cat "$tmp/idle"; fail "idle: $n connections"; }
rss=$(awk '/^VmRSS:/ {print $2}' /proc/"$spid"/status)
echo "  server RSS with $n connections: $((rss / 1024)) MB"
echo >&3
exec 3>&-
wait "$ipid" || fail "idle"
[ "$rss" -lt $((200 * 1024)) ] || fail "idle: RSS $((rss / 1024)) MB >= 200 MB"
ok "idle ($n connections)"
# After the RSS bound: under ASan the memory this frees stays in its quarantine.
run unread
run plain
echo "all passed"
