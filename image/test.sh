#!/usr/bin/env bash
# Boot test of the appliance image under QEMU (TCG), self-contained:
# installs what it needs (idempotently), builds lanai and the image when they
# are missing or stale, then, through the HTTPS API with the password read from
# the serial banner:
#   boot 1: apply a haproxy config whose frontend (guest :8080) is forwarded,
#           see traffic proxied to a backend on the host, Save, power off;
#   boot 2: the saved config is back (traffic proxied, same response header);
#           the admin password is not printed again; apply a change, no Save,
#           power off;
#   boot 3: the change is gone (saved config again).
# A failed boot or a timeout prints the serial log. Measures the boot time
# (QEMU start -> banner, and -> console answering over HTTPS) and the image size.
#
# Environment: BOOT_TIMEOUT (s, default 240), KEEP_TMP=1 keeps the run directory.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
BOOT_TIMEOUT=${BOOT_TIMEOUT:-240}

say() { printf '[image-test] %s\n' "$*" >&2; }

# --- tools --------------------------------------------------------------------
# (qemu-system-x86 comes first: on bookworm it replaces a backported
# qemu-utils, and qemu-img is checked after that.)
apt_updated=
install_pkgs() {
	say "installing: $*"
	export DEBIAN_FRONTEND=noninteractive
	[ -n "$apt_updated" ] || { apt-get update -qq; apt_updated=1; }
	apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
command -v qemu-system-x86_64 >/dev/null 2>&1 || install_pkgs qemu-system-x86 qemu-system-common qemu-system-data
need_pkgs=()
command -v qemu-img >/dev/null 2>&1 || need_pkgs+=(qemu-utils)
command -v curl >/dev/null 2>&1 || need_pkgs+=(curl)
[ -x /bin/busybox ] || need_pkgs+=(busybox-static)
[ ${#need_pkgs[@]} -eq 0 ] || install_pkgs "${need_pkgs[@]}"

# --- build (lanai with cargo, which is a no-op when fresh; the image if stale) --
if [ -z "${LANAI_BIN:-}" ]; then
	(cd "$repo" && cargo build --release --locked)
	LANAI_BIN="$repo/target/release/lanai"
fi
export LANAI_BIN
base="$here/out/lanai.qcow2"
stale=
if [ ! -e "$base" ]; then
	stale="missing"
elif [ -n "$(find "$LANAI_BIN" "$here/build.sh" "$here/rootfs" "$here/modules.list" "$here/syslinux.cfg" -newer "$base" 2>/dev/null | head -n 1)" ]; then
	stale="older than its inputs"
fi
if [ -n "$stale" ]; then
	say "image $stale: running image/build.sh"
	"$here/build.sh"
fi
img_bytes=$(stat -c %s "$here/out/lanai.img")
qcow_bytes=$(stat -c %s "$base")

# --- run directory, ports, backend --------------------------------------------
tmp=$(mktemp -d /tmp/lanai-image-test.XXXXXX)
qemu_pid=
httpd_pid=
cleanup() {
	[ -n "$qemu_pid" ] && kill "$qemu_pid" 2>/dev/null || true
	[ -n "$httpd_pid" ] && kill "$httpd_pid" 2>/dev/null || true
	if [ "${KEEP_TMP:-0}" = 1 ]; then say "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
	local p
	while :; do
		# below the ephemeral range (32768-), where client sockets bind
		p=$((20000 + RANDOM % 12000))
		port_free "$p" && ! grep -qw "$p" "$tmp/ports" 2>/dev/null && { echo "$p" >> "$tmp/ports"; echo "$p"; return; }
	done
}
console_port=$(pick_port)  # -> guest 4444 (HTTPS console + API)
proxy_port=$(pick_port)    # -> guest 8080 (the frontend the test configures)
monitor_port=$(pick_port)  # QEMU monitor (power button)
backend_port=$(pick_port)  # host backend, reached by the guest at 10.0.2.2

mkdir -p "$tmp/www"
token="lanai-image-test-backend-$$-$RANDOM"
echo "$token" > "$tmp/www/index.html"
for try in 1 2 3 4 5; do
	/bin/busybox httpd -f -p "127.0.0.1:$backend_port" -h "$tmp/www" &
	httpd_pid=$!
	for i in 1 2 3 4 5 6 7 8 9 10; do
		curl -s --max-time 2 "http://127.0.0.1:$backend_port/" 2>/dev/null | grep -q "$token" && break 2
		sleep 0.2
	done
	kill "$httpd_pid" 2>/dev/null || true
	httpd_pid=
	backend_port=$(pick_port)
done
[ -n "$httpd_pid" ] || { echo "image-test: cannot start the backend httpd" >&2; exit 1; }

cp "$base" "$tmp/disk.qcow2"

passed=0
failed=0
boot_n=0
serial=
fail() {
	failed=$((failed + 1))
	say "FAIL: $*"
	if [ -n "$serial" ] && [ -e "$serial" ]; then
		say "serial log ($serial):"
		tr -d '\r' < "$serial" | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g; s/\x1bc//g' >&2
	fi
	say "image: $passed passed, $failed failed"
	echo "image: $passed passed, $failed failed"
	exit 1
}
ok() { passed=$((passed + 1)); say "ok: $*"; }

now_ms() { date +%s%3N; }

boot() {
	boot_n=$((boot_n + 1))
	serial="$tmp/serial-$boot_n.log"
	: > "$serial"
	local t0 t_banner t_api
	t0=$(now_ms)
	# -no-reboot: a guest reboot ends QEMU, so the test sees it and boots again.
	qemu-system-x86_64 -accel tcg -m 1024 -smp 2 -nographic -no-reboot \
		-serial "file:$serial" -monitor "tcp:127.0.0.1:$monitor_port,server,nowait" \
		-drive "file=$tmp/disk.qcow2,if=virtio,format=qcow2" \
		-netdev "user,id=n,hostfwd=tcp:127.0.0.1:$console_port-:4444,hostfwd=tcp:127.0.0.1:$proxy_port-:8080" \
		-device virtio-net-pci,netdev=n -device virtio-rng-pci \
		< /dev/null > "$tmp/qemu-$boot_n.out" 2>&1 &
	qemu_pid=$!
	while ! grep -q "Lanai console: https://" "$serial"; do
		kill -0 "$qemu_pid" 2>/dev/null || fail "boot $boot_n: QEMU exited before the banner ($(cat "$tmp/qemu-$boot_n.out"))"
		[ $(($(now_ms) - t0)) -gt $((BOOT_TIMEOUT * 1000)) ] && fail "boot $boot_n: no banner after ${BOOT_TIMEOUT}s"
		sleep 0.2
	done
	t_banner=$(($(now_ms) - t0))
	until curl -ks -o /dev/null --max-time 5 "https://127.0.0.1:$console_port/"; do
		[ $(($(now_ms) - t0)) -gt $((BOOT_TIMEOUT * 1000)) ] && fail "boot $boot_n: console not answering after ${BOOT_TIMEOUT}s"
		sleep 0.2
	done
	t_api=$(($(now_ms) - t0))
	say "boot $boot_n: banner after $((t_banner / 1000)).$(printf '%03d' $((t_banner % 1000)))s, console answering after $((t_api / 1000)).$(printf '%03d' $((t_api % 1000)))s"
	echo "$boot_n $t_banner $t_api" >> "$tmp/boot-times"
}

poweroff() {
	# ACPI power button, as a hypervisor's "shut down": the guest powers off.
	# Pressed again every 10 s, as an operator would, in case the first press
	# came before the guest listened for it.
	local i=0
	while kill -0 "$qemu_pid" 2>/dev/null; do
		if [ $((i % 100)) -eq 0 ]; then
			# (keep the connection open a moment: QEMU drops a command whose
			# connection is already closed when it reads it)
			{ echo system_powerdown; sleep 1; } > "/dev/tcp/127.0.0.1/$monitor_port" ||
				fail "boot $boot_n: QEMU monitor unreachable"
		fi
		i=$((i + 1))
		[ $i -gt 600 ] && fail "boot $boot_n: no power-off 60 s after the ACPI power button"
		sleep 0.1
	done
	wait "$qemu_pid" 2>/dev/null || true
	qemu_pid=
	ok "boot $boot_n: powered off by the ACPI power button"
}

reboot_from_console() {
	# Setup -> Reboot, as an operator: the button is there (we are init's
	# child in the image), then the API call; with -no-reboot QEMU exits.
	local jar="$tmp/cookies" page body i=0
	curl -ks -c "$jar" -o /dev/null -H "Origin: https://127.0.0.1:$console_port" \
		--data-urlencode username=admin --data-urlencode "password=$password" \
		"https://127.0.0.1:$console_port/login" || fail "boot $boot_n: console login"
	page=$(curl -ks -b "$jar" "https://127.0.0.1:$console_port/setup")
	echo "$page" | grep -q 'action="/setup/reboot"' || fail "boot $boot_n: no Reboot button on the Setup tab"
	ok "boot $boot_n: Setup shows the Reboot button"
	body=$(api POST /api/system/reboot) || fail "boot $boot_n: reboot: $body"
	while kill -0 "$qemu_pid" 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 600 ] && fail "boot $boot_n: still running 60 s after POST /api/system/reboot"
		sleep 0.1
	done
	wait "$qemu_pid" 2>/dev/null || true
	qemu_pid=
	tr -d '\r' < "$serial" | grep -q "lanai: shutting down" || fail "boot $boot_n: reboot did not run the shutdown script"
	ok "boot $boot_n: rebooted from the console ($body), through init's shutdown"
}

network_setup_unsaved() {
	# A VLAN on eth0 and a dummy interface through Services -> network ->
	# setup: the guest's kernel (8021q, dummy) creates them; any item it
	# refused would come back as a warning. Not saved: gone after the reboot.
	local body
	printf 'service network eth0\n    ip address dhcp\nservice network eth0.100\n    mtu 1400\n    ip address 192.0.2.1/24\nservice network dummy0\n    type dummy\n    ip address 198.51.100.1/32\n' > "$tmp/network.rc"
	body=$(api POST /api/services/network/setup/apply -H 'Content-Type: text/plain' --data-binary "@$tmp/network.rc") ||
		fail "boot $boot_n: network setup apply: $body"
	echo "$body" | grep -q '"warnings":\[\]' || fail "boot $boot_n: network setup applied with warnings: $body"
	ok "boot $boot_n: VLAN eth0.100 and dummy0 configured by the network service ($body)"
}

network_service_running() {
	local list
	list=$(api GET /api/services) || fail "GET /api/services: $list"
	echo "$list" | grep -q '"name":"network","status":"running"' ||
		fail "boot $boot_n: the network service is not running: $list"
	ok "boot $boot_n: network service running (eth0 by DHCP from the saved config.rc)"
}

api() { # api METHOD PATH [curl args...] -> body on stdout, fails on HTTP >= 400
	local method=$1 path=$2
	shift 2
	curl -ksS --fail-with-body --max-time 30 -u "admin:$password" -X "$method" "https://127.0.0.1:$console_port$path" "$@"
}

haproxy_cfg() { # haproxy_cfg HEADER_VALUE
	cat <<EOF
global
    maxconn 1000

defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s

frontend web
    bind :8080
    http-response set-header X-Lanai-Test $1
    default_backend app

backend app
    server host 10.0.2.2:$backend_port
EOF
}

apply() { # apply HEADER_VALUE
	local body
	haproxy_cfg "$1" > "$tmp/haproxy-$1.cfg"
	body=$(api POST /api/services/haproxy/apply -H 'Content-Type: text/plain' --data-binary "@$tmp/haproxy-$1.cfg") ||
		fail "apply ($1): $body"
	echo "$body" | grep -q '"revision"' || fail "apply ($1): unexpected answer $body"
	ok "apply ($1): $body"
}

expect_proxied() { # expect_proxied HEADER_VALUE WHAT
	local i=0 headers body
	while :; do
		headers=$(curl -s --max-time 5 -D - -o "$tmp/body" "http://127.0.0.1:$proxy_port/" 2>/dev/null | tr -d '\r') || true
		body=$(cat "$tmp/body" 2>/dev/null || true)
		if [ "$body" = "$token" ] && echo "$headers" | grep -qi "^x-lanai-test: $1\$"; then
			ok "$2: traffic proxied through guest :8080 to the host backend (X-Lanai-Test: $1)"
			return
		fi
		i=$((i + 1))
		[ $i -gt 100 ] && fail "$2: expected the backend's page with X-Lanai-Test: $1; got headers: $(echo "$headers" | head -n 12 | tr '\n' '|') body: ${body:0:200}"
		sleep 0.2
	done
}

# --- boot 1 ---------------------------------------------------------------------
say "image: lanai.img $img_bytes bytes, lanai.qcow2 $qcow_bytes bytes; run dir $tmp"
boot
password=$(tr -d '\r' < "$serial" | sed -n 's/^admin password: //p' | head -n 1)
[ -n "$password" ] || fail "boot 1: no 'admin password:' line on the first boot"
ok "boot 1: banner with the console URL and the admin password"
services=$(api GET /api/services) || fail "GET /api/services: $services"
ok "GET /api/services with the banner's password"
network_service_running
apply saved
expect_proxied saved "boot 1"
out=$(api POST /api/config/save) || fail "save: $out"
ok "save: $out"
poweroff

# --- boot 2: saved config back, no password line ------------------------------
boot
if tr -d '\r' < "$serial" | grep -q '^admin password:'; then fail "boot 2: the admin password was printed again"; fi
ok "boot 2: no admin password line on a later boot"
expect_proxied saved "boot 2 (saved config restored)"
apply unsaved
expect_proxied unsaved "boot 2 (change applied, not saved)"
network_setup_unsaved
expect_proxied unsaved "boot 2 (console and proxy still reachable after the network change)"
reboot_from_console

# --- boot 3: unsaved change gone -------------------------------------------------
boot
expect_proxied saved "boot 3 (unsaved change gone)"
rc=$(api GET /api/services/network/config) || fail "boot 3: config.rc: $rc"
if echo "$rc" | grep -q 'eth0.100'; then fail "boot 3: the unsaved network change survived the reboot: $rc"; fi
ok "boot 3: unsaved network change gone"
poweroff

awk '{ printf "[image-test] boot %d: banner %.1f s, console answering %.1f s\n", $1, $2 / 1000, $3 / 1000 }' "$tmp/boot-times" >&2
say "image size: lanai.img $img_bytes bytes ($((img_bytes / 1048576)) MiB), lanai.qcow2 $qcow_bytes bytes"
echo "image: $passed passed, $failed failed"
