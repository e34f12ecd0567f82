# live.sh, sourced by the tests that drive a krill server over sockets (test_http.sh,
# test_echo.sh): python3 or a skip, a temporary directory, the server started on a free port
# and stopped at exit, and fail/ok lines. After start_server: $port, $spid, $tmp/err.

if ! command -v python3 >/dev/null; then
	echo "SKIP: python3 is not installed"
	exit 77 # meson's skip code
fi

tmp=$(mktemp -d)
spid=
cleanup() {
	if [ -n "$spid" ]; then
		kill "$spid" 2>/dev/null
		wait "$spid" 2>/dev/null
		rm -f /dev/shm/krill."$spid".*
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
	echo "FAIL ($SECONDS s): $*"
	[ -s "$tmp/err" ] && sed 's/^/server: /' "$tmp/err"
	exit 1
}
# With the seconds since the start: a slow run shows which step was slow.
ok() { echo "ok ($SECONDS s): $*"; }

# start_server NAME CMD...: run CMD (a server that prints "port N" once listening).
start_server() {
	local name=$1
	shift
	"$@" >"$tmp/out" 2>"$tmp/err" &
	spid=$!
	port=
	for _ in $(seq 100); do
		port=$(awk '$1 == "port" {print $2; exit}' "$tmp/out")
		[ -n "$port" ] && return 0
		kill -0 "$spid" 2>/dev/null || fail "$name did not start"
		sleep 0.1
	done
	fail "$name printed no port"
}
