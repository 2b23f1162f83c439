#!/usr/bin/env bash
# Prepares a real server for tunnelling (LVS-TUN): run as root on each real.
# Undo with `tun-real-setup.sh --remove [--interface IF] VIP...`.
#
#   tun-real-setup.sh --interface eth0 198.18.1.10 fd00:18:1::10
#
# The balancer wraps each client packet in an outer IPv4/IPv6 header
# addressed to this real's own address (IP-in-IP, IPv6-in-IPv6, or one in
# the other). The real strips that header and answers the client directly,
# with the VIP as source, like DR:
#
# - The VIPs go on `lo` (a /32 or /128) so the inner packet, addressed to the
#   VIP, is accepted locally. Services listen on the VIP or the wildcard.
# - arp_ignore=1, arp_announce=2: the real must never answer ARP for the
#   VIP nor use it as the source of its own ARP requests, or it would pull
#   the VIP's traffic away from the balancer on a shared segment. (IPv6
#   needs nothing: Linux answers neighbour solicitations only for addresses
#   on the interface they arrive on.)
# - rp_filter=2 (loose): after decapsulation the inner packet looks as if it
#   arrived on the physical interface straight from the client. Strict mode
#   (1) drops it whenever the real's route back to the client leaves by
#   another interface (several uplinks, policy routing, a tunnel arriving on
#   a backend network); loose mode still drops sources with no route at all.
#   The kernel applies the larger of conf.all and conf.<if>, so an interface
#   left at 1 would win over all=2: both are set. (With the kernel's own
#   ipip module the packet appears on tunl0, where strict mode always fails;
#   hence the usual LVS-TUN advice to turn rp_filter off.)
#
# No ipip / ip6_tunnel module is needed: `lbd decap` strips tunnels in XDP,
# before the stack sees them, for every outer destination that is one of
# this host's own addresses (all interfaces, except loopback and link-local
# addresses: never the VIPs on lo, since the balancer tunnels to the real's
# address, not to the VIP). It follows address changes every second.
#
#   lbd decap --interface eth0                      # foreground, until SIGTERM
#   systemctl enable --now lbd-decap@eth0.service   # deploy/lbd-decap@.service
#   lbd decap --interface eth0 --teardown           # detach, remove the pins
#
# Run one per interface tunnels arrive on. Stopping it leaves the program
# attached (its link is pinned under /sys/fs/bpf/lb-decap/<if>/), so a
# restart or upgrade does not interrupt traffic; only --teardown detaches.
# Counter: `bpftool map lookup pinned /sys/fs/bpf/lb-decap/eth0/maps/LB_GLOBAL_STATS
# key <n> 0 0 0`, n = GlobalCounter::Decapsulated (lb-common/src/stats.rs), per
# CPU; `lbd decap` also logs the total when it stops.
#
# Security: like the kernel's tunl0, this accepts tunnels from any source.
# Filter IP protocols 4 and 41 towards the reals at the network edge.
#
# With --interface IF this script also loosens rp_filter on IF and, when
# systemd and the unit are installed, enables and starts lbd-decap@IF
# (--remove: stops it and detaches).
set -euo pipefail

usage() {
    echo "usage: $0 [--remove] [--interface IF] VIP..." >&2
    exit 2
}

remove=false
interface=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --remove) remove=true; shift ;;
        --interface) [[ $# -ge 2 ]] || usage; interface="$2"; shift 2 ;;
        --interface=*) interface="${1#--interface=}"; shift ;;
        -h|--help) usage ;;
        --*) usage ;;
        *) break ;;
    esac
done
if [[ $# -eq 0 ]]; then usage; fi
if [[ -n "$interface" && ! -e "/sys/class/net/$interface" ]] && ! $remove; then
    echo "$0: no interface named $interface" >&2
    exit 1
fi

have_unit() {
    command -v systemctl >/dev/null && systemctl cat "lbd-decap@$interface.service" >/dev/null 2>&1
}

for vip in "$@"; do
    if [[ "$vip" == *:* ]]; then prefix=128; else prefix=32; fi
    if $remove; then
        ip addr del "$vip/$prefix" dev lo 2>/dev/null || true
    else
        ip addr replace "$vip/$prefix" dev lo
    fi
done

if $remove; then
    if [[ -n "$interface" ]]; then
        if have_unit; then systemctl disable --now "lbd-decap@$interface.service" || true; fi
        lbd decap --interface "$interface" --teardown
    fi
    exit 0
fi

sysctls=(
    net.ipv4.conf.all.arp_ignore=1
    net.ipv4.conf.all.arp_announce=2
    net.ipv4.conf.all.rp_filter=2
    net.ipv4.conf.default.rp_filter=2
)
if [[ -n "$interface" ]]; then
    sysctls+=("net.ipv4.conf.${interface//./\/}.rp_filter=2")
fi
sysctl -qw "${sysctls[@]}"
{
    echo "# LVS-TUN real server (lbd decap): never answer or announce the VIPs"
    echo "# held on lo; accept decapsulated packets whose way back to the client"
    echo "# leaves by another interface."
    for setting in "${sysctls[@]}"; do
        echo "${setting%%=*} = ${setting#*=}"
    done
} >/etc/sysctl.d/90-lb-tun-real.conf

if [[ -n "$interface" ]]; then
    if have_unit; then
        systemctl enable --now "lbd-decap@$interface.service"
    else
        echo "now run: lbd decap --interface $interface   (or install deploy/lbd-decap@.service)"
    fi
fi
