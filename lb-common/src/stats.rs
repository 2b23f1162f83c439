//! Named counters. Each global counter is an index into a per-CPU array; its
//! name is defined next to it so the daemon never prints "counter 7".

/// Global data-plane counters, one `u64` per CPU each.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GlobalCounter {
    /// Frames the program saw.
    Received = 0,
    /// Frames sent towards a real (XDP_TX or redirect).
    Forwarded,
    /// Not IPv4/IPv6 (ARP, LLDP, ...): passed.
    PassNotIp,
    /// Destination is not a VIP: passed.
    PassNotVip,
    /// VIP, but no service for that port and protocol: passed.
    PassNoService,
    /// VIP, but neither TCP nor UDP: passed to the host.
    PassOtherProtocol,
    /// Ethernet or IP header cut short: passed for the kernel to judge.
    PassTruncatedL3,
    /// TCP/UDP header to a VIP cut short: dropped.
    DropTruncatedL4,
    /// A fragment to a VIP: dropped (non-first fragments carry no ports, so
    /// they cannot be steered consistently with the first one).
    DropFragment,
    /// IPv6 extension headers before TCP/UDP to a VIP: dropped.
    DropIpv6ExtensionHeader,
    /// No usable real: an empty row, or every candidate unavailable: dropped.
    DropNoReal,
    /// The chosen real has no known next hop: dropped.
    DropNoNextHop,
    /// The redirect to the egress interface failed: dropped.
    DropRedirectFailed,
    /// IPv4 packets to a service that carried IP options (forwarded).
    Ipv4Options,
    /// Packets that matched an existing flow entry.
    FlowHit,
    /// New flows scheduled through Maglev.
    FlowNew,
    /// Flows whose recorded real was gone and were scheduled afresh.
    FlowRescheduled,
    /// Flow entries found past their idle timeout: scheduled afresh.
    FlowExpired,
    /// TUN: packets that would not fit the egress MTU once encapsulated,
    /// answered with ICMP "fragmentation needed" / ICMPv6 "packet too big".
    IcmpTooBigSent,
    /// TUN: growing the frame for the outer header failed: dropped.
    DropEncapFailed,
    /// NAT: replies from a real rewritten back to the VIP and forwarded.
    NatReplies,
    /// NAT: rewritten, but the kernel has no neighbour entry for the next
    /// hop yet: passed to the kernel, which resolves it and forwards.
    PassNoNeighbour,
    /// NAT: no route to the destination: dropped.
    DropNoRoute,
    /// NAT: TTL or hop limit would expire here: passed so the kernel
    /// answers with "time exceeded".
    PassTtlExceeded,
    /// ICMP/ICMPv6 echo requests to a VIP answered by the data plane.
    IcmpEchoReplied,
    /// ICMP errors quoting a VIP flow, sent on to its real (or translated).
    IcmpErrorForwarded,
    /// Decap program (on reals): tunnels stripped and passed up.
    Decapsulated,
    /// NAT: a reply too big for the route to the client, handed to the
    /// kernel (which fragments it, or tells the real the path MTU).
    PassReplyTooBig,
    /// A packet of a flow whose real was removed, with expire_nodest_conn
    /// off: dropped (the flow idles out).
    DropRealRemoved,
    /// New connections sent to a real by a persistence template.
    PersistenceHit,
    /// New flows forwarded without a flow entry: the flood guard's limit
    /// of recorded new flows this second was reached (see
    /// `lb_common::FloodGuard`). Also counted in `FlowNew`.
    FlowUnrecorded,
}

impl GlobalCounter {
    pub const COUNT: u32 = 31;
    pub const ALL: [GlobalCounter; Self::COUNT as usize] = [
        Self::Received,
        Self::Forwarded,
        Self::PassNotIp,
        Self::PassNotVip,
        Self::PassNoService,
        Self::PassOtherProtocol,
        Self::PassTruncatedL3,
        Self::DropTruncatedL4,
        Self::DropFragment,
        Self::DropIpv6ExtensionHeader,
        Self::DropNoReal,
        Self::DropNoNextHop,
        Self::DropRedirectFailed,
        Self::Ipv4Options,
        Self::FlowHit,
        Self::FlowNew,
        Self::FlowRescheduled,
        Self::FlowExpired,
        Self::IcmpTooBigSent,
        Self::DropEncapFailed,
        Self::NatReplies,
        Self::PassNoNeighbour,
        Self::DropNoRoute,
        Self::PassTtlExceeded,
        Self::IcmpEchoReplied,
        Self::IcmpErrorForwarded,
        Self::Decapsulated,
        Self::PassReplyTooBig,
        Self::DropRealRemoved,
        Self::PersistenceHit,
        Self::FlowUnrecorded,
    ];

    /// The counter whose discriminant is `value`, e.g. one that crossed a
    /// BPF function's return register as a plain integer.
    #[inline(always)]
    pub const fn from_u32(value: u32) -> Option<Self> {
        if value < Self::COUNT {
            // SAFETY: the enum is `repr(u32)` and its discriminants are
            // exactly 0..COUNT (the assertion below `impl GlobalCounter`).
            Some(unsafe { core::mem::transmute::<u32, Self>(value) })
        } else {
            None
        }
    }

    /// Stable snake_case name, used in logs and metrics.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Forwarded => "forwarded",
            Self::PassNotIp => "pass_not_ip",
            Self::PassNotVip => "pass_not_vip",
            Self::PassNoService => "pass_no_service",
            Self::PassOtherProtocol => "pass_other_protocol",
            Self::PassTruncatedL3 => "pass_truncated_l3",
            Self::DropTruncatedL4 => "drop_truncated_l4",
            Self::DropFragment => "drop_fragment",
            Self::DropIpv6ExtensionHeader => "drop_ipv6_extension_header",
            Self::DropNoReal => "drop_no_real",
            Self::DropNoNextHop => "drop_no_next_hop",
            Self::DropRedirectFailed => "drop_redirect_failed",
            Self::Ipv4Options => "ipv4_options",
            Self::FlowHit => "flow_hit",
            Self::FlowNew => "flow_new",
            Self::FlowRescheduled => "flow_rescheduled",
            Self::FlowExpired => "flow_expired",
            Self::IcmpTooBigSent => "icmp_too_big_sent",
            Self::DropEncapFailed => "drop_encap_failed",
            Self::NatReplies => "nat_replies",
            Self::PassNoNeighbour => "pass_no_neighbour",
            Self::DropNoRoute => "drop_no_route",
            Self::PassTtlExceeded => "pass_ttl_exceeded",
            Self::IcmpEchoReplied => "icmp_echo_replied",
            Self::IcmpErrorForwarded => "icmp_error_forwarded",
            Self::Decapsulated => "decapsulated",
            Self::PassReplyTooBig => "pass_reply_too_big",
            Self::DropRealRemoved => "drop_real_removed",
            Self::PersistenceHit => "persistence_hit",
            Self::FlowUnrecorded => "flow_unrecorded",
        }
    }
}

// `ALL` lists every counter in discriminant order, 0..COUNT without gaps:
// what `from_u32` relies on.
const _: () = {
    let mut i = 0;
    while i < GlobalCounter::ALL.len() {
        assert!(GlobalCounter::ALL[i] as u32 == i as u32);
        i += 1;
    }
};

/// Per-service and per-real traffic counters (per CPU; the daemon sums).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrafficCounters {
    /// Client -> real packets (ipvsadm's InPkts).
    pub packets: u64,
    pub bytes: u64,
    pub new_connections: u64,
    /// Packets for this service/real that were dropped.
    pub drops: u64,
    /// Real -> client packets the balancer rewrote (NAT replies; DR and
    /// TUN replies bypass the balancer): ipvsadm's OutPkts.
    pub out_packets: u64,
    pub out_bytes: u64,
}

impl TrafficCounters {
    pub fn add(&mut self, other: &Self) {
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.new_connections += other.new_connections;
        self.drops += other.drops;
        self.out_packets += other.out_packets;
        self.out_bytes += other.out_bytes;
    }
}

/// Per-CPU values add up to the whole: `per_cpu.iter().sum()`.
impl<'a> core::iter::Sum<&'a TrafficCounters> for TrafficCounters {
    fn sum<I: Iterator<Item = &'a TrafficCounters>>(per_cpu: I) -> Self {
        let mut total = Self::default();
        for counters in per_cpu {
            total.add(counters);
        }
        total
    }
}

#[cfg(feature = "user")]
// SAFETY: repr(C), six u64 fields, no padding.
unsafe impl aya::Pod for TrafficCounters {}

#[cfg(test)]
mod tests {
    use super::GlobalCounter;

    #[test]
    fn from_u32_gives_back_every_counter_and_nothing_past_them() {
        for counter in GlobalCounter::ALL {
            assert_eq!(GlobalCounter::from_u32(counter as u32), Some(counter));
        }
        assert_eq!(GlobalCounter::from_u32(GlobalCounter::COUNT), None);
        assert_eq!(GlobalCounter::from_u32(u32::MAX), None);
    }
}
