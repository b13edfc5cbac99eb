#!/usr/bin/env bash
# System tools some tests use as oracles: GNU as (binutils), gcc (Xen ABI layouts),
# ACPICA's iasl
# (acpica-tools) and Debian's chromium for the browser test.  Installed with
# apt-get when missing and we may; otherwise those tests skip and say why.
set -u
want=()
command -v as >/dev/null 2>&1 || want+=(binutils)
command -v gcc >/dev/null 2>&1 || want+=(gcc)
command -v iasl >/dev/null 2>&1 || want+=(acpica-tools)
command -v chromium >/dev/null 2>&1 || want+=(chromium)
[ ${#want[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "sysdeps: installing ${want[*]}"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${want[@]}") \
    >/tmp/xenlab-sysdeps.log 2>&1 || echo "sysdeps: apt-get failed (see /tmp/xenlab-sysdeps.log); tests needing ${want[*]} will skip"
else
  echo "sysdeps: ${want[*]} missing and apt-get is not usable here; tests that need them will skip"
fi
exit 0
