//! Header rewrites: one end's address and port, the TTL, and every checksum
//! they feed, all updated incrementally (RFC 1624) so the payload is never
//! read.
//!
//! The old address and port are read from the frame itself, right before
//! they are overwritten, rather than carried over from the parse: values
//! carried across helper calls spill to the stack, which is scarce (see
//! `wire::verdict`).

use lb_common::{Addr, Family, proto};
use network_types::{
    ip::{Ipv4Hdr, Ipv6Hdr},
    tcp::TcpHdr,
    udp::UdpHdr,
};

use super::{
    csum,
    frame::{Frame, view_mut},
    ip::set_ttl,
    layout::{End, Layout},
};

/// Rewrites `end` to `new` (address and port, network byte order) and takes
/// one off the TTL / hop limit (the caller checked it is above 1). `None`
/// only if a header the parser already read is not there, or the packet is
/// neither TCP nor UDP; nothing is written then.
#[inline(always)]
pub fn translate(ctx: &impl Frame, at: Layout, end: End, new: (&Addr, u16)) -> Option<()> {
    match at.family {
        Family::V4 => {
            let ip = view_mut::<Ipv4Hdr>(ctx, at.l3_offset)?;
            let old = *end.pick(&ip.src_addr, &ip.dst_addr);
            transport(ctx, at, end, &Addr::from_v4_octets(old), new)?;
            ipv4(ip, end, old, new.0);
        }
        Family::V6 => {
            let ip = view_mut::<Ipv6Hdr>(ctx, at.l3_offset)?;
            let old = Addr::from_v6_octets(*end.pick(&ip.src_addr, &ip.dst_addr));
            transport(ctx, at, end, &old, new)?;
            ipv6(ip, end, new.0);
        }
    }
    Some(())
}

/// The port and the TCP/UDP checksum, which covers the address through the
/// pseudo-header.
#[inline(always)]
fn transport(
    ctx: &impl Frame,
    at: Layout,
    end: End,
    old_addr: &Addr,
    (new_addr, new_port): (&Addr, u16),
) -> Option<()> {
    match at.protocol {
        proto::TCP => {
            let tcp = view_mut::<TcpHdr>(ctx, at.l4_offset)?;
            let port = end.pick(&mut tcp.source, &mut tcp.dest);
            let check = u16::from_ne_bytes(tcp.check);
            let check = csum::l4_replace(check, old_addr, new_addr, port, new_port);
            tcp.check = check.to_ne_bytes();
            *port = new_port.to_ne_bytes();
        }
        proto::UDP => {
            let udp = view_mut::<UdpHdr>(ctx, at.l4_offset)?;
            let port = end.pick(&mut udp.src, &mut udp.dst);
            let update = |check| csum::l4_replace(check, old_addr, new_addr, port, new_port);
            let old = u16::from_ne_bytes(udp.check);
            if let Some(check) = csum::l4_update(old, proto::UDP, at.family, update) {
                udp.check = check.to_ne_bytes();
            }
            *port = new_port.to_ne_bytes();
        }
        _ => return None,
    }
    Some(())
}

#[inline(always)]
pub fn ipv4(ip: &mut Ipv4Hdr, end: End, old: [u8; 4], new_addr: &Addr) {
    set_ttl(ip, ip.ttl.wrapping_sub(1));
    let check = u16::from_ne_bytes(ip.check);
    let check = csum::replace32(check, u32::from_ne_bytes(old), new_addr.words[0]);
    ip.check = check.to_ne_bytes();
    *end.pick(&mut ip.src_addr, &mut ip.dst_addr) = new_addr.words[0].to_ne_bytes();
}

#[inline(always)]
pub fn ipv6(ip: &mut Ipv6Hdr, end: End, new_addr: &Addr) {
    ip.hop_limit = ip.hop_limit.wrapping_sub(1);
    *end.pick(&mut ip.src_addr, &mut ip.dst_addr) = new_addr.octets();
}

#[cfg(test)]
mod tests;
