#!/usr/bin/env bash
# Prepares a real server for direct routing (LVS-DR): run as root on each
# real, once per VIP. Undo with `dr-real-setup.sh --remove VIP...`.
#
#   dr-real-setup.sh 198.18.1.10 fd00:18:1::10
#
# - The VIP goes on `lo` (a /32 or /128) so the real accepts packets sent to
#   it, and answers the client directly with the VIP as source.
# - arp_ignore=1: answer ARP only for addresses on the receiving interface,
#   so the real never claims the VIP on the segment (the balancer owns it).
# - arp_announce=2: never use the VIP as the source of its own ARP requests.
# IPv6 needs no equivalent: Linux answers neighbour solicitations only for
# addresses on the interface they arrive on.
set -euo pipefail

remove=false
if [[ "${1:-}" == "--remove" ]]; then remove=true; shift; fi
if [[ $# -eq 0 ]]; then
    echo "usage: $0 [--remove] VIP..." >&2
    exit 2
fi

for vip in "$@"; do
    if [[ "$vip" == *:* ]]; then prefix=128; else prefix=32; fi
    if $remove; then
        ip addr del "$vip/$prefix" dev lo 2>/dev/null || true
    else
        ip addr replace "$vip/$prefix" dev lo
    fi
done

if ! $remove; then
    sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
    cat >/etc/sysctl.d/90-lb-dr-real.conf <<'SYSCTL'
# LVS-DR real server: never answer or announce the VIP held on lo.
net.ipv4.conf.all.arp_ignore = 1
net.ipv4.conf.all.arp_announce = 2
SYSCTL
fi
