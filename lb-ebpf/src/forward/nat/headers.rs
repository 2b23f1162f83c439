//! What the NAT paths take from the frame, and how.
//!
//! They run as BPF functions of their own (see `wire::verdict`). The reply path
//! parses the frame again with `parse`; the request path and the reply
//! cache are told where the headers are (a [`Layout`] packed into one
//! argument) and read only the fields they use. Addresses are copied from
//! the IP header straight to where they are needed (scratch map keys)
//! instead of being kept in registers: an IPv6 pair is eight words, and
//! every word held across a helper call is a stack slot.

use aya_ebpf::programs::XdpContext;
use lb_common::{Addr, Family};
use network_types::ip::{Ipv4Hdr, Ipv6Hdr};

use crate::wire::{
    frame::{header, view},
    layout::{End, Layout},
};

/// The TTL (IPv4) or hop limit (IPv6).
#[inline(always)]
pub fn ttl(ctx: &XdpContext, at: Layout) -> Option<u8> {
    match at.family {
        Family::V4 => view::<Ipv4Hdr>(ctx, at.l3_offset).map(|ip| ip.ttl),
        Family::V6 => view::<Ipv6Hdr>(ctx, at.l3_offset).map(|ip| ip.hop_limit),
    }
}

/// The TCP or UDP source and destination ports, in network byte order.
#[inline(always)]
pub fn ports(ctx: &XdpContext, at: Layout) -> Option<(u16, u16)> {
    let ports = header::<[u16; 2]>(ctx, at.l4_offset)?;
    // SAFETY: bounds checked by `header`; both headers start with them.
    let [source, destination] = unsafe { ports.read_unaligned() };
    Some((source, destination))
}

/// Copies the address at `end` into `addr`.
#[inline(always)]
pub fn address(ctx: &XdpContext, at: Layout, end: End, addr: &mut Addr) -> Option<()> {
    match at.family {
        Family::V4 => {
            let ip = view::<Ipv4Hdr>(ctx, at.l3_offset)?;
            *addr = Addr::from_v4_octets(*end.pick(&ip.src_addr, &ip.dst_addr));
        }
        Family::V6 => {
            let ip = view::<Ipv6Hdr>(ctx, at.l3_offset)?;
            copy_v6(end.pick(&ip.src_addr, &ip.dst_addr), addr);
        }
    }
    Some(())
}

/// Copies the source and destination addresses into `src` and `dst`.
#[inline(always)]
pub fn addresses(ctx: &XdpContext, at: Layout, src: &mut Addr, dst: &mut Addr) -> Option<()> {
    address(ctx, at, End::Source, src)?;
    address(ctx, at, End::Destination, dst)
}

/// Byte by byte through one register: assembling the four words first
/// (`Addr::from_v6_octets`) needs more registers than there are.
#[inline(always)]
fn copy_v6(octets: &[u8; 16], addr: &mut Addr) {
    // SAFETY: both are 16 bytes, and a frame never overlaps a map value.
    unsafe {
        core::ptr::copy_nonoverlapping(octets.as_ptr(), addr.words.as_mut_ptr().cast::<u8>(), 16)
    };
}
