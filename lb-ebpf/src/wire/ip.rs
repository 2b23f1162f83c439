//! IPv4 and IPv6 facts the data plane needs, each defined once.

use lb_common::{Addr, Family};
use network_types::ip::{Ipv4Hdr, Ipv6Hdr};

use super::csum;

/// IPv4 flags and fragment offset (`frags`, host order after
/// `from_be_bytes`): Don't Fragment, and the fragment offset bits alone.
pub const IPV4_DF: u16 = 0x4000;
pub const IPV4_OFFSET: u16 = 0x1fff;
/// More Fragments and the offset: non-zero for any fragment.
pub const IPV4_MF_AND_OFFSET: u16 = 0x3fff;

/// IANA protocol numbers of a tunnelled packet, as the outer header names
/// it: IPv4 inside (IP-in-IP) and IPv6 inside.
pub const IPPROTO_IPIP: u8 = 4;
pub const IPPROTO_IPV6: u8 = 41;

/// The two ECN bits of the IPv4 TOS / IPv6 traffic class, and Congestion
/// Experienced.
pub const ECN_MASK: u8 = 0b11;
pub const ECN_CE: u8 = 0b11;

/// TTL / hop limit of the packets the data plane originates (the Linux
/// default).
pub const DEFAULT_TTL: u8 = 64;

/// IPv6 next-header values that are extension headers (IANA's list, RFC
/// 7045), ESP left out: it is a transport of its own.
const IPV6_HOP_BY_HOP: u8 = 0;
const IPV6_ROUTING: u8 = 43;
pub const IPV6_FRAGMENT: u8 = 44;
const IPV6_AUTH: u8 = 51;
const IPV6_DEST_OPTS: u8 = 60;
const IPV6_MOBILITY: u8 = 135;
const IPV6_HIP: u8 = 139;
const IPV6_SHIM6: u8 = 140;
const IPV6_EXPERIMENT_1: u8 = 253;
const IPV6_EXPERIMENT_2: u8 = 254;

/// Whether an IPv6 next header is an extension header.
#[inline(always)]
pub fn is_ipv6_extension(next_header: u8) -> bool {
    matches!(
        next_header,
        IPV6_HOP_BY_HOP
            | IPV6_ROUTING
            | IPV6_FRAGMENT
            | IPV6_AUTH
            | IPV6_DEST_OPTS
            | IPV6_MOBILITY
            | IPV6_HIP
            | IPV6_SHIM6
            | IPV6_EXPERIMENT_1
            | IPV6_EXPERIMENT_2
    )
}

/// The fixed IP header length of `family` (IPv4 without options).
#[inline(always)]
pub fn header_len(family: Family) -> usize {
    match family {
        Family::V4 => Ipv4Hdr::LEN,
        Family::V6 => Ipv6Hdr::LEN,
    }
}

/// The protocol number an outer header carries for an inner packet of
/// `inner`'s family.
#[inline(always)]
pub fn tunnel_protocol(inner: Family) -> u8 {
    match inner {
        Family::V4 => IPPROTO_IPIP,
        Family::V6 => IPPROTO_IPV6,
    }
}

/// The inner packet's family an outer header's `protocol` names, if it is
/// a tunnel.
#[inline(always)]
pub fn tunnelled_family(protocol: u8) -> Option<Family> {
    match protocol {
        IPPROTO_IPIP => Some(Family::V4),
        IPPROTO_IPV6 => Some(Family::V6),
        _ => None,
    }
}

/// Whether `addr` may be answered at all: never an unspecified, loopback,
/// multicast or broadcast source (RFC 1122 3.2.2, RFC 4443 2.4(e)), which
/// would turn one packet into many or into nonsense.
#[inline(always)]
pub fn is_unicast(family: Family, addr: &Addr) -> bool {
    let first = addr.words[0].to_ne_bytes()[0];
    match family {
        // 0/8 "this network", 127/8 loopback, 224/4 multicast, 240/4
        // reserved and the limited broadcast.
        Family::V4 => first != 0 && first != 127 && first < 224,
        Family::V6 => first != 0xff && *addr != Addr::UNSPECIFIED,
    }
}

/// Sets an IPv4 header's TTL, and its checksum with it (the TTL shares a
/// 16-bit word with the protocol, in memory order as `csum` works).
#[inline(always)]
pub fn set_ttl(ip: &mut Ipv4Hdr, ttl: u8) {
    let old = u16::from_ne_bytes([ip.ttl, ip.proto]);
    ip.ttl = ttl;
    let new = u16::from_ne_bytes([ip.ttl, ip.proto]);
    ip.check = csum::replace16(u16::from_ne_bytes(ip.check), old, new).to_ne_bytes();
}

/// Back to the sender, from the address it was sent to, with a fresh TTL.
/// Swapping the addresses leaves the header checksum as it is; the TTL
/// moves it.
#[inline(always)]
pub fn turn_ipv4(ip: &mut Ipv4Hdr, ttl: u8) {
    core::mem::swap(&mut ip.src_addr, &mut ip.dst_addr);
    set_ttl(ip, ttl);
}

/// [`turn_ipv4`] for IPv6, which has no header checksum.
#[inline(always)]
pub fn turn_ipv6(ip: &mut Ipv6Hdr, hop_limit: u8) {
    core::mem::swap(&mut ip.src_addr, &mut ip.dst_addr);
    ip.hop_limit = hop_limit;
}

/// An address into a header, byte by byte from its words (no 16-byte
/// copy on the stack, unlike `Addr::octets`).
#[inline(always)]
pub fn write_addr(to: &mut [u8; 16], addr: &Addr) {
    let mut i = 0;
    while i < 4 {
        let [a, b, c, d] = addr.words[i].to_ne_bytes();
        to[4 * i] = a;
        to[4 * i + 1] = b;
        to[4 * i + 2] = c;
        to[4 * i + 3] = d;
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use lb_common::{Addr, Family};

    use super::*;

    #[test]
    fn tunnel_protocols_round_trip() {
        for family in [Family::V4, Family::V6] {
            assert_eq!(tunnelled_family(tunnel_protocol(family)), Some(family));
        }
        assert_eq!(tunnelled_family(17), None);
    }

    #[test]
    fn extension_headers_are_not_transports() {
        assert!(is_ipv6_extension(0));
        assert!(is_ipv6_extension(44));
        assert!(!is_ipv6_extension(6));
        assert!(!is_ipv6_extension(17));
        assert!(!is_ipv6_extension(50)); // ESP
        assert!(!is_ipv6_extension(58));
    }

    /// A header from 198.18.0.1 to 198.18.0.2 with TTL `ttl`, checksum
    /// computed from scratch.
    fn ipv4_header(ttl: u8, src: [u8; 4], dst: [u8; 4]) -> [u8; 20] {
        let mut header = [
            0x45, 0, 0, 84, 0x12, 0x34, 0x40, 0, ttl, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        header[12..16].copy_from_slice(&src);
        header[16..20].copy_from_slice(&dst);
        let sum = crate::wire::reference::checksum(&header);
        header[10..12].copy_from_slice(&sum);
        header
    }

    fn as_header(bytes: &mut [u8; 20]) -> &mut Ipv4Hdr {
        // SAFETY: 20 bytes, and `Ipv4Hdr` is 20 bytes of alignment 1.
        unsafe { &mut *(bytes.as_mut_ptr() as *mut Ipv4Hdr) }
    }

    const A: [u8; 4] = [198, 18, 0, 1];
    const B: [u8; 4] = [198, 18, 0, 2];

    #[test]
    fn set_ttl_keeps_the_checksum_right() {
        let mut header = ipv4_header(64, A, B);
        set_ttl(as_header(&mut header), 63);
        assert_eq!(header, ipv4_header(63, A, B));
    }

    #[test]
    fn turning_a_packet_swaps_the_ends_with_a_fresh_ttl() {
        let mut header = ipv4_header(3, A, B);
        turn_ipv4(as_header(&mut header), DEFAULT_TTL);
        assert_eq!(header, ipv4_header(DEFAULT_TTL, B, A));
    }

    #[test]
    fn write_addr_writes_the_octets() {
        let octets = core::array::from_fn(|i| 0xf0 + i as u8);
        let mut to = [0u8; 16];
        write_addr(&mut to, &Addr::from_v6_octets(octets));
        assert_eq!(to, octets);
    }

    #[test]
    fn only_unicast_sources_are_answered() {
        let v4 = |a, b, c, d| Addr::from_v4_octets([a, b, c, d]);
        assert!(is_unicast(Family::V4, &v4(198, 18, 0, 1)));
        assert!(!is_unicast(Family::V4, &v4(0, 0, 0, 0)));
        assert!(!is_unicast(Family::V4, &v4(127, 0, 0, 1)));
        assert!(!is_unicast(Family::V4, &v4(224, 0, 0, 1)));
        assert!(!is_unicast(Family::V4, &v4(255, 255, 255, 255)));
        let mut v6 = [0u8; 16];
        assert!(!is_unicast(Family::V6, &Addr::from_v6_octets(v6)));
        v6[0] = 0xfd;
        v6[15] = 1;
        assert!(is_unicast(Family::V6, &Addr::from_v6_octets(v6)));
        v6[0] = 0xff;
        assert!(!is_unicast(Family::V6, &Addr::from_v6_octets(v6)));
    }
}
