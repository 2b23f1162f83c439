//! What the NAT paths take from the frame, and how.
//!
//! They run as BPF functions of their own (see `call.rs`) and parse the
//! frame again with `parse`. Addresses are the exception: they are copied
//! from the IP header straight to where they are needed (scratch map keys)
//! instead of being kept in registers. An IPv6 pair is eight words, and
//! every word held across a helper call is a stack slot.

use aya_ebpf::programs::XdpContext;
use lb_common::{Addr, Family};
use network_types::ip::{Ipv4Hdr, Ipv6Hdr};

use crate::parse::{self, L3, L3Verdict, L4, L4Verdict, header};

/// Where the headers are and what they are: what a rewrite needs.
#[derive(Clone, Copy)]
pub struct Layout {
    pub family: Family,
    pub protocol: u8,
    pub l3_offset: usize,
    pub l4_offset: usize,
}

impl Layout {
    #[inline(always)]
    pub fn of(l3: &L3) -> Self {
        Self {
            family: l3.family,
            protocol: l3.protocol,
            l3_offset: l3.l3_offset,
            l4_offset: l3.l4_offset,
        }
    }
}

/// The frame's L3 and TCP/UDP headers.
#[inline(always)]
pub fn tcp_udp(ctx: &XdpContext) -> Option<(L3, L4)> {
    let L3Verdict::Packet(l3) = parse::l3(ctx) else {
        return None;
    };
    let L4Verdict::Packet(l4) = parse::l4(ctx, &l3) else {
        return None;
    };
    Some((l3, l4))
}

/// Copies the source address into `addr`.
#[inline(always)]
pub fn source(ctx: &XdpContext, at: Layout, addr: &mut Addr) -> Option<()> {
    match at.family {
        Family::V4 => {
            let ip = header::<Ipv4Hdr>(ctx, at.l3_offset)?;
            // SAFETY: bounds checked by `header`.
            *addr = Addr::from_v4_octets(unsafe { (*ip).src_addr });
        }
        Family::V6 => {
            let ip = header::<Ipv6Hdr>(ctx, at.l3_offset)?;
            // SAFETY: bounds checked by `header`.
            copy_v6(unsafe { &(*ip).src_addr }, addr);
        }
    }
    Some(())
}

/// Copies the destination address into `addr`.
#[inline(always)]
pub fn destination(ctx: &XdpContext, at: Layout, addr: &mut Addr) -> Option<()> {
    match at.family {
        Family::V4 => {
            let ip = header::<Ipv4Hdr>(ctx, at.l3_offset)?;
            // SAFETY: bounds checked by `header`.
            *addr = Addr::from_v4_octets(unsafe { (*ip).dst_addr });
        }
        Family::V6 => {
            let ip = header::<Ipv6Hdr>(ctx, at.l3_offset)?;
            // SAFETY: bounds checked by `header`.
            copy_v6(unsafe { &(*ip).dst_addr }, addr);
        }
    }
    Some(())
}

/// Copies the source and destination addresses into `src` and `dst`.
#[inline(always)]
pub fn addresses(ctx: &XdpContext, at: Layout, src: &mut Addr, dst: &mut Addr) -> Option<()> {
    match at.family {
        Family::V4 => {
            let ip = header::<Ipv4Hdr>(ctx, at.l3_offset)?;
            // SAFETY: bounds checked by `header`.
            let ip = unsafe { &*ip };
            *src = Addr::from_v4_octets(ip.src_addr);
            *dst = Addr::from_v4_octets(ip.dst_addr);
        }
        Family::V6 => {
            let ip = header::<Ipv6Hdr>(ctx, at.l3_offset)?;
            // SAFETY: bounds checked by `header`.
            let ip = unsafe { &*ip };
            copy_v6(&ip.src_addr, src);
            copy_v6(&ip.dst_addr, dst);
        }
    }
    Some(())
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
