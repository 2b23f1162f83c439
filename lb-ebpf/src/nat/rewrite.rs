//! Header rewrites: one end's address and port, the TTL, and every checksum
//! they feed, all updated incrementally (RFC 1624) so the payload is never
//! read.
//!
//! The old address and port are read from the frame itself, right before
//! they are overwritten, rather than carried over from the parse: values
//! carried across helper calls spill to the stack, which is scarce (see
//! `call.rs`).

use aya_ebpf::programs::XdpContext;
use lb_common::{Addr, Family, proto};
use network_types::{
    eth::EthHdr,
    ip::{Ipv4Hdr, Ipv6Hdr},
    tcp::TcpHdr,
    udp::UdpHdr,
};

use super::headers::Layout;
use crate::{csum, parse::header};

/// Which end of the packet a translation rewrites.
#[derive(Clone, Copy)]
pub enum End {
    /// Replies: real:port becomes VIP:port.
    Source,
    /// Requests: VIP:port becomes real:port.
    Destination,
}

/// Rewrites `end` to `new_addr`:`new_port` (network byte order) and takes
/// one off the TTL / hop limit (the caller checked it is above 1). `None`
/// only if a header the parser already read is not there, or the packet is
/// neither TCP nor UDP; nothing is written then.
#[inline(always)]
pub fn translate(
    ctx: &XdpContext,
    at: Layout,
    end: End,
    new_addr: &Addr,
    new_port: u16,
) -> Option<()> {
    match at.family {
        Family::V4 => {
            let ip = header::<Ipv4Hdr>(ctx, at.l3_offset)?;
            // SAFETY: bounds checked by `header`.
            let ip = unsafe { &mut *ip };
            let old = match end {
                End::Source => ip.src_addr,
                End::Destination => ip.dst_addr,
            };
            transport(ctx, at, end, &Addr::from_v4_octets(old), new_addr, new_port)?;
            ipv4(ip, end, old, new_addr);
        }
        Family::V6 => {
            let ip = header::<Ipv6Hdr>(ctx, at.l3_offset)?;
            // SAFETY: bounds checked by `header`.
            let ip = unsafe { &mut *ip };
            let old = match end {
                End::Source => ip.src_addr,
                End::Destination => ip.dst_addr,
            };
            transport(ctx, at, end, &Addr::from_v6_octets(old), new_addr, new_port)?;
            ipv6(ip, end, new_addr);
        }
    }
    Some(())
}

/// The next hop's MACs.
#[inline(always)]
pub fn set_macs(ctx: &XdpContext, dst: &[u8; 6], src: &[u8; 6]) -> Option<()> {
    let eth = header::<EthHdr>(ctx, 0)?;
    // SAFETY: bounds checked by `header`.
    unsafe {
        (*eth).dst_addr = *dst;
        (*eth).src_addr = *src;
    }
    Some(())
}

/// The port and the TCP/UDP checksum, which covers the address through the
/// pseudo-header.
#[inline(always)]
fn transport(
    ctx: &XdpContext,
    at: Layout,
    end: End,
    old_addr: &Addr,
    new_addr: &Addr,
    new_port: u16,
) -> Option<()> {
    match at.protocol {
        proto::TCP => {
            let tcp = header::<TcpHdr>(ctx, at.l4_offset)?;
            // SAFETY: bounds checked by `header`.
            let tcp = unsafe { &mut *tcp };
            let port = port_field(end, &mut tcp.source, &mut tcp.dest);
            let check = u16::from_ne_bytes(tcp.check);
            let check = l4_checksum(check, old_addr, new_addr, port, new_port);
            tcp.check = check.to_ne_bytes();
            *port = new_port.to_ne_bytes();
        }
        proto::UDP => {
            let udp = header::<UdpHdr>(ctx, at.l4_offset)?;
            // SAFETY: bounds checked by `header`.
            let udp = unsafe { &mut *udp };
            let port = port_field(end, &mut udp.src, &mut udp.dst);
            let check = u16::from_ne_bytes(udp.check);
            // An IPv4 UDP checksum of 0 means "none" and stays that way
            // (IPv6 requires one, so 0 there is just a broken packet).
            if check != 0 || matches!(at.family, Family::V6) {
                let check = l4_checksum(check, old_addr, new_addr, port, new_port);
                udp.check = udp_checksum(check).to_ne_bytes();
            }
            *port = new_port.to_ne_bytes();
        }
        _ => return None,
    }
    Some(())
}

#[inline(always)]
fn port_field<'a>(end: End, source: &'a mut [u8; 2], dest: &'a mut [u8; 2]) -> &'a mut [u8; 2] {
    match end {
        End::Source => source,
        End::Destination => dest,
    }
}

/// The TCP/UDP checksum after the address (in the pseudo-header) and the
/// port change.
#[inline(always)]
pub(super) fn l4_checksum(
    check: u16,
    old_addr: &Addr,
    new_addr: &Addr,
    port: &[u8; 2],
    new: u16,
) -> u16 {
    let check = csum::replace_addr(check, old_addr, new_addr);
    csum::replace16(check, u16::from_ne_bytes(*port), new)
}

/// UDP transmits a computed checksum of 0 as all ones (RFC 768): 0 on the
/// wire would mean "no checksum".
#[inline(always)]
pub(super) fn udp_checksum(check: u16) -> u16 {
    if check == 0 { 0xffff } else { check }
}

#[inline(always)]
pub(super) fn ipv4(ip: &mut Ipv4Hdr, end: End, old: [u8; 4], new_addr: &Addr) {
    // TTL shares its checksum word with the protocol (memory order, as
    // `csum` works).
    let old_ttl = u16::from_ne_bytes([ip.ttl, ip.proto]);
    ip.ttl = ip.ttl.wrapping_sub(1);
    let new_ttl = u16::from_ne_bytes([ip.ttl, ip.proto]);
    let check = csum::replace16(u16::from_ne_bytes(ip.check), old_ttl, new_ttl);
    let check = csum::replace32(check, u32::from_ne_bytes(old), new_addr.words[0]);
    ip.check = check.to_ne_bytes();
    let addr = new_addr.words[0].to_ne_bytes();
    match end {
        End::Source => ip.src_addr = addr,
        End::Destination => ip.dst_addr = addr,
    }
}

#[inline(always)]
pub(super) fn ipv6(ip: &mut Ipv6Hdr, end: End, new_addr: &Addr) {
    ip.hop_limit = ip.hop_limit.wrapping_sub(1);
    let addr = new_addr.octets();
    match end {
        End::Source => ip.src_addr = addr,
        End::Destination => ip.dst_addr = addr,
    }
}
