#!/usr/bin/env bash
# The self-signed certificate of the portal's HTTPS and of SIP over TLS/WSS, made idempotently
# (scripts/bootstrap.sh runs it): var/tls/sip.crt and sip.key.
#
# It names localhost, *.localhost, 127.0.0.1, the demo tenant's host (PBX_DEMO_HOST, default
# demo.localhost: TLS clients take no wildcard right under a top-level name, *.localhost
# included), the provider's hosts (PBX_PUBLIC_HOSTS, each with its subdomains: tenants under
# the provider's name) and PBX_SIP_PUBLIC_HOST. It is made again when that list changes, but
# only while it is still the one made here (its fingerprint is in sip.made): a certificate put
# in its place (README, HTTPS) is never touched.
set -euo pipefail
VAR="${PBX_VAR_DIR:-$(dirname "$0")/../var}"
say() { printf '\033[1m==>\033[0m %s\n' "$*"; }
mkdir -p "$VAR/tls"
CRT="$VAR/tls/sip.crt" KEY="$VAR/tls/sip.key" MADE="$VAR/tls/sip.made"
san_names=(localhost "*.localhost" 127.0.0.1)
is_address() { [[ "$1" =~ ^[0-9.]+$ || "$1" == *:* ]]; }
add_host() {  # add_host NAME [with-subdomains]
  local h="${1// /}"
  [ -n "$h" ] || return 0
  if ! [[ "$h" =~ ^[A-Za-z0-9:][A-Za-z0-9.:-]*$ ]]; then
    echo "tls_cert.sh: '$h' (PBX_DEMO_HOST, PBX_PUBLIC_HOSTS or PBX_SIP_PUBLIC_HOST)" \
      "is not a host name or address" >&2
    exit 1
  fi
  san_names+=("$h")
  if [ -n "${2:-}" ] && ! is_address "$h" && [[ "$h" == *.* ]]; then san_names+=("*.$h"); fi
}
add_host "${PBX_DEMO_HOST:-demo.localhost}"
IFS=',' read -r -a public_hosts <<< "${PBX_PUBLIC_HOSTS:-}"
for h in "${public_hosts[@]}"; do add_host "$h" with-subdomains; done
add_host "${PBX_SIP_PUBLIC_HOST:-}"
san=""
declare -A seen=()
for h in "${san_names[@]}"; do
  [ -z "${seen[$h]:-}" ] || continue
  seen[$h]=1
  if is_address "$h"; then san+="${san:+,}IP:$h"; else san+="${san:+,}DNS:$h"; fi
done
fingerprint() { openssl x509 -in "$CRT" -noout -fingerprint -sha256 2>/dev/null; }
ours=""
if [ -s "$CRT" ] && [ -s "$MADE" ] && [ "$(tail -n1 "$MADE")" = "$(fingerprint)" ]; then
  ours="$(head -n1 "$MADE")"
elif [ -s "$CRT" ] && [ ! -e "$MADE" ] \
    && [ "$(openssl x509 -in "$CRT" -noout -subject -issuer 2>/dev/null | sed 's/^[a-z]*=//' | sort -u)" = "CN = localhost" ]; then
  # Made by an earlier bootstrap, before sip.made: the names it gave every certificate.
  ours="DNS:localhost,DNS:*.localhost,IP:127.0.0.1"
fi
if [ ! -s "$CRT" ] || { [ -n "$ours" ] && [ "$ours" != "$san" ]; }; then
  names="${san//DNS:/}"
  say "making a self-signed TLS certificate for ${names//IP:/}"
  openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=localhost" \
    -addext "subjectAltName=$san" -keyout "$KEY.new" -out "$CRT.new" >/dev/null 2>&1
  chmod 600 "$KEY.new"
  mv "$KEY.new" "$KEY" && mv "$CRT.new" "$CRT"
  ours="$san"
fi
if [ -n "$ours" ]; then
  printf '%s\n%s\n' "$ours" "$(fingerprint)" > "$MADE"
fi
