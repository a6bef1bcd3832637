#!/usr/bin/env bash
# Put a host's collection config (a JSON array of {"path", "topic"} entries) into etcd,
# validating it first.
#
#   put-collect-config.sh [-c logagent.ini] FILE
#       validates with `logagent config validate`, then stores it with `logagent config put`
#       at the key of the host that logagent.ini names ([agent] host, [etcd] collect_key).
#   put-collect-config.sh --etcdctl --endpoints HOST:PORT --host NAME FILE
#       validates (with logagent if it is installed, else as JSON), then
#       etcdctl put /logagent/NAME/collect_config "$(cat FILE)".
#
# logagent is looked up as $LOGAGENT, then in PATH, then as bin/logagent; the ini defaults
# to /etc/logpipe/logagent.ini, else conf/logagent.ini.
set -euo pipefail

usage() { sed -n '2,14p' "$0" >&2; exit 2; }

mode=logagent ini="" endpoints="127.0.0.1:2379" host="" file=""
while [ $# -gt 0 ]; do
  case "$1" in
    -c|--config) ini="${2:?}"; shift 2 ;;
    --etcdctl) mode=etcdctl; shift ;;
    --endpoints) endpoints="${2:?}"; shift 2 ;;
    --host) host="${2:?}"; shift 2 ;;
    -h|--help) usage ;;
    -*) echo "put-collect-config.sh: unknown option $1" >&2; usage ;;
    *) [ -z "$file" ] || usage; file="$1"; shift ;;
  esac
done
[ -n "$file" ] || usage
[ -r "$file" ] || { echo "put-collect-config.sh: cannot read $file" >&2; exit 1; }

agent="${LOGAGENT:-}"
if [ -z "$agent" ]; then
  agent="$(command -v logagent || true)"
  [ -n "$agent" ] || { [ -x bin/logagent ] && agent=bin/logagent; } || true
fi
if [ -z "$ini" ]; then
  if [ -r /etc/logpipe/logagent.ini ]; then ini=/etc/logpipe/logagent.ini; else ini=conf/logagent.ini; fi
fi

validate() {
  if [ -n "$agent" ]; then
    "$agent" -config "$ini" config validate "$file"
  elif command -v python3 >/dev/null; then
    python3 -c 'import json,sys
v=json.load(open(sys.argv[1]))
assert isinstance(v,list), "want a JSON array"
for i,e in enumerate(v):
    assert isinstance(e,dict) and e.get("path") and e.get("topic"), "entry %d: needs path and topic" % i
print("%s: valid JSON, %d entries (install logagent for the full check)" % (sys.argv[1], len(v)))' "$file"
  else
    echo "put-collect-config.sh: neither logagent nor python3 found to validate $file" >&2
    return 1
  fi
}

case "$mode" in
  logagent)
    [ -n "$agent" ] || { echo "put-collect-config.sh: logagent not found (set LOGAGENT, or use --etcdctl)" >&2; exit 1; }
    validate
    "$agent" -config "$ini" config put "$file"
    ;;
  etcdctl)
    [ -n "$host" ] || { echo "put-collect-config.sh: --etcdctl needs --host NAME" >&2; exit 2; }
    command -v etcdctl >/dev/null || { echo "put-collect-config.sh: etcdctl not found" >&2; exit 1; }
    validate
    key="/logagent/$host/collect_config"
    ETCDCTL_API=3 etcdctl --endpoints="$endpoints" put "$key" "$(cat "$file")"
    echo "stored $file at $key"
    ;;
esac
