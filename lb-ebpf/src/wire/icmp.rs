//! ICMP and ICMPv6 header types and numbers.

use lb_common::{Family, proto};

use super::csum;

/// The part of an ICMP and ICMPv6 header they share: type, code and
/// checksum, then four bytes whose meaning depends on the type (echo id and
/// sequence, next-hop MTU, unused). An error's quote follows it.
#[repr(C)]
pub struct IcmpHdr {
    pub kind: u8,
    pub code: u8,
    /// As on the wire; the `csum` helpers work on it as it sits in memory.
    pub checksum: [u8; 2],
    pub rest: [u8; 4],
}

pub const ICMP_HDR_LEN: usize = core::mem::size_of::<IcmpHdr>();

/// ICMP types (RFC 792) and codes.
pub const ICMP_ECHO_REPLY: u8 = 0;
pub const ICMP_DEST_UNREACH: u8 = 3;
pub const ICMP_FRAG_NEEDED: u8 = 4;
pub const ICMP_ECHO_REQUEST: u8 = 8;
pub const ICMP_TIME_EXCEEDED: u8 = 11;
pub const ICMP_PARAMETER_PROBLEM: u8 = 12;

/// ICMPv6 types (RFC 4443).
pub const ICMPV6_DEST_UNREACH: u8 = 1;
pub const ICMPV6_PACKET_TOO_BIG: u8 = 2;
pub const ICMPV6_TIME_EXCEEDED: u8 = 3;
pub const ICMPV6_PARAMETER_PROBLEM: u8 = 4;
pub const ICMPV6_ECHO_REQUEST: u8 = 128;
pub const ICMPV6_ECHO_REPLY: u8 = 129;

/// The ICMP protocol number of `family`: ICMP or ICMPv6.
#[inline(always)]
pub fn protocol(family: Family) -> u8 {
    match family {
        Family::V4 => proto::ICMP,
        Family::V6 => proto::ICMPV6,
    }
}

/// Whether `kind` is an error that quotes a packet: destination
/// unreachable (port unreachable, fragmentation needed, ...), time
/// exceeded, parameter problem; ICMPv6 also packet too big.
#[inline(always)]
pub fn is_error(family: Family, kind: u8) -> bool {
    match family {
        Family::V4 => matches!(
            kind,
            ICMP_DEST_UNREACH | ICMP_TIME_EXCEEDED | ICMP_PARAMETER_PROBLEM
        ),
        Family::V6 => matches!(kind, ICMPV6_DEST_UNREACH..=ICMPV6_PARAMETER_PROBLEM),
    }
}

/// Request -> reply (or any type to another). Identifier, sequence and
/// data stay as they are, so only the type word moves the checksum.
/// (ICMPv6's pseudo-header holds both addresses, which a reply swaps, not
/// changes: its sum stays the same.)
#[inline(always)]
pub fn set_type(icmp: &mut IcmpHdr, kind: u8) {
    let old = u16::from_ne_bytes([icmp.kind, icmp.code]);
    let new = u16::from_ne_bytes([kind, icmp.code]);
    icmp.kind = kind;
    icmp.checksum = csum::replace16(u16::from_ne_bytes(icmp.checksum), old, new).to_ne_bytes();
}

#[cfg(test)]
mod tests {
    use lb_common::Family;

    use super::*;

    #[test]
    fn the_header_is_eight_bytes() {
        assert_eq!(ICMP_HDR_LEN, 8);
    }

    /// An echo message of `kind`, id 0x1234, sequence 7, data "ping", with
    /// its checksum from scratch.
    fn echo(kind: u8) -> [u8; 12] {
        let mut message = [kind, 0, 0, 0, 0x12, 0x34, 0, 7, b'p', b'i', b'n', b'g'];
        let sum = crate::wire::reference::checksum(&message);
        message[2..4].copy_from_slice(&sum);
        message
    }

    #[test]
    fn an_echo_request_becomes_a_reply_with_a_right_checksum() {
        let mut message = echo(ICMP_ECHO_REQUEST);
        // SAFETY: the header is the first 8 of the 12 bytes, alignment 1.
        set_type(
            unsafe { &mut *(message.as_mut_ptr() as *mut IcmpHdr) },
            ICMP_ECHO_REPLY,
        );
        assert_eq!(message, echo(ICMP_ECHO_REPLY));
    }

    #[test]
    fn errors_are_told_from_queries() {
        for kind in [3, 11, 12] {
            assert!(is_error(Family::V4, kind));
        }
        for kind in [0, 5, 8, 13] {
            assert!(!is_error(Family::V4, kind));
        }
        for kind in 1..=4 {
            assert!(is_error(Family::V6, kind));
        }
        for kind in [0, 5, 128, 129, 135] {
            assert!(!is_error(Family::V6, kind));
        }
    }
}
