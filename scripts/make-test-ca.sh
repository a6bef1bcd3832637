#!/usr/bin/env bash
# make-test-ca.sh DIR HOST [CLIENT...]
#
# Makes a throwaway certificate authority and certificates for trying logpipe's
# TLS and mTLS, with openssl: DIR/ca.pem (and ca-key.pem), DIR/broker.pem and
# DIR/broker-key.pem for HOST (also valid for localhost and 127.0.0.1), and
# DIR/CLIENT.pem, DIR/CLIENT-key.pem for each client name (its CN is the name:
# the broker's principal for it is User:CN=NAME).
#
# For production, use your organisation's CA: the files have the same shape.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 DIR HOST [CLIENT...]" >&2; exit 2; }
dir=$1 host=$2
shift 2
mkdir -p "$dir"
cd "$dir"
umask 077

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 365 \
  -subj "/CN=logpipe test CA" -keyout ca-key.pem -out ca.pem 2>/dev/null

issue() { # name subject extensions
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$2" \
    -keyout "$1-key.pem" -out "$1.csr" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 365 \
    -extfile <(printf '%s\n' "$3") -out "$1.pem" 2>/dev/null
  rm -f "$1.csr"
}

issue broker "/CN=$host" "subjectAltName=DNS:$host,DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth,clientAuth"
for c in "$@"; do
  issue "$c" "/CN=$c" "extendedKeyUsage=clientAuth"
done
chmod 0644 ca.pem ./*.pem
chmod 0600 ./*-key.pem
echo "make-test-ca.sh: wrote $dir/ca.pem, $dir/broker.pem (+ -key.pem)${*:+ and client certificates for: $*}"
