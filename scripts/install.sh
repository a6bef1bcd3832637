#!/usr/bin/env bash
# Install logpipe on this host: binaries to /usr/local/bin, configs to /etc/logpipe
# (an existing config is never overwritten), data to /var/lib/logpipe (owned by the
# user logpipe, created if missing), systemd units to /etc/systemd/system.
# Idempotent: run it again after `make build` to upgrade the binaries and units.
#
#   sudo scripts/install.sh                 install for real (needs root)
#   scripts/install.sh --prefix /tmp/lp     dry run: the same tree under /tmp/lp,
#                                           no root, no useradd, no systemctl
#   --bin DIR   where the binaries are (default: bin/ of the repository)
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
prefix=""
bindir="$repo/bin"
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="${2:?--prefix needs a directory}"; shift 2 ;;
    --prefix=*) prefix="${1#--prefix=}"; shift ;;
    --bin) bindir="${2:?--bin needs a directory}"; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

components=(broker logagent logtransfer)
for b in "${components[@]}" logpipectl; do
  [ -x "$bindir/$b" ] || { echo "install.sh: $bindir/$b is missing: run 'make build' first" >&2; exit 1; }
done

dry=0
if [ -n "$prefix" ]; then
  dry=1
  mkdir -p "$prefix"
  prefix="$(cd "$prefix" && pwd)"
elif [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run as root (or use --prefix DIR for a dry run)" >&2
  exit 1
fi

say() { echo "install.sh: $*"; }

# The service user.
if [ $dry -eq 0 ]; then
  if ! id -u logpipe >/dev/null 2>&1; then
    useradd --system --user-group --home-dir /var/lib/logpipe --no-create-home \
      --shell /usr/sbin/nologin logpipe
    say "created user logpipe"
  fi
  owner=(-o logpipe -g logpipe)
  cfgowner=(-o root -g logpipe)
else
  say "dry run into $prefix (no user, no ownership, no systemctl)"
  owner=()
  cfgowner=()
fi

install -d -m 0755 "$prefix/usr/local/bin" "$prefix/etc/systemd/system"
install -d -m 0755 "$prefix/etc/logpipe"
install -d -m 0750 "${owner[@]}" "$prefix/var/lib/logpipe"

install -m 0755 "$bindir/logpipectl" "$prefix/usr/local/bin/logpipectl"
say "installed /usr/local/bin/logpipectl (topics and consumer groups administration)"
if [ -e "$prefix/etc/logpipe/logpipectl.ini" ]; then
  say "kept existing /etc/logpipe/logpipectl.ini"
else
  install -m 0640 "${cfgowner[@]}" "$repo/conf/logpipectl.ini" "$prefix/etc/logpipe/logpipectl.ini"
  say "installed /etc/logpipe/logpipectl.ini (logpipectl's default brokers)"
fi

for b in "${components[@]}"; do
  install -m 0755 "$bindir/$b" "$prefix/usr/local/bin/$b"
  say "installed /usr/local/bin/$b"

  cfg="$prefix/etc/logpipe/$b.ini"
  if [ -e "$cfg" ]; then
    say "kept existing /etc/logpipe/$b.ini"
  else
    install -m 0640 "${cfgowner[@]}" "$repo/conf/$b.ini" "$cfg"
    say "installed /etc/logpipe/$b.ini (edit it: brokers, etcd endpoints, Elasticsearch URLs)"
  fi

  install -m 0644 "$repo/scripts/logpipe-$b.service" "$prefix/etc/systemd/system/logpipe-$b.service"
  say "installed /etc/systemd/system/logpipe-$b.service"
done
install -m 0755 "$repo/scripts/put-collect-config.sh" "$prefix/usr/local/bin/logpipe-put-collect-config"
say "installed /usr/local/bin/logpipe-put-collect-config"

if [ $dry -eq 0 ]; then
  systemctl daemon-reload
  say "done. Start what this host runs, for example:"
else
  say "done (dry run). On a real host you would then run:"
fi
echo "  systemctl enable --now logpipe-broker       # the broker host"
echo "  systemctl enable --now logpipe-logtransfer  # the transfer host(s)"
echo "  systemctl enable --now logpipe-logagent     # every host that ships logs"
