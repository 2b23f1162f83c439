//! The packet an ICMP error quotes: where its headers lie.
//!
//! Both directions read quotes: errors to a VIP quote a packet the VIP
//! sent (`icmp::relay`), errors from a NAT real quote a packet it received
//! (`forward::nat::icmp_error`). The quote is usable when it is a TCP or
//! UDP packet with a whole IP header of the error's family, not (IPv4) a
//! non-first fragment, and holds the transport header's first bytes.
//! Extension headers are not followed: the flows the balancer accepts have
//! none.

use lb_common::{Family, proto};
use network_types::ip::{Ipv4Hdr, Ipv6Hdr};

use super::{
    frame::{Frame, view},
    icmp::ICMP_HDR_LEN,
    ip::IPV4_OFFSET,
};

/// Where the quoted packet lies in the frame.
#[derive(Clone, Copy)]
pub struct Quote {
    /// Offset of the quoted IP header.
    pub ip_offset: usize,
    /// Offset of the quoted TCP/UDP header.
    pub l4_offset: usize,
    /// TCP or UDP.
    pub protocol: u8,
}

/// The quote of the error whose ICMP header is at `icmp_offset`, if usable
/// (see the module), with at least `L4` bytes of its transport header
/// inside the message, which ends at `end` (from the outer IP length:
/// Ethernet padding behind a short packet must not pass for quoted bytes).
/// Cheap, so callers do it again rather than keep the result across helper
/// calls. Those bytes are not proved inside the frame here: the caller's
/// own access to them must be the one the verifier sees checked (a check
/// here would be merged with the caller's, on a pointer the verifier
/// tracks apart).
#[inline(always)]
pub fn locate<const L4: usize>(
    frame: &impl Frame,
    family: Family,
    icmp_offset: usize,
    end: usize,
) -> Option<Quote> {
    let ip_offset = icmp_offset + ICMP_HDR_LEN;
    let (l4_offset, protocol) = match family {
        Family::V4 => {
            let ip = view::<Ipv4Hdr>(frame, ip_offset)?;
            let header_len = ip.ihl() as usize;
            let frag_offset = u16::from_be_bytes(ip.frags) & IPV4_OFFSET;
            if ip.version() != 4 || header_len < Ipv4Hdr::LEN || frag_offset != 0 {
                return None;
            }
            (ip_offset + header_len, ip.proto)
        }
        Family::V6 => {
            let ip = view::<Ipv6Hdr>(frame, ip_offset)?;
            if ip.version() != 6 {
                return None;
            }
            (ip_offset + Ipv6Hdr::LEN, ip.next_hdr)
        }
    };
    if !matches!(protocol, proto::TCP | proto::UDP) || l4_offset + L4 > end {
        return None;
    }
    Some(Quote {
        ip_offset,
        l4_offset,
        protocol,
    })
}

#[cfg(test)]
mod tests;
