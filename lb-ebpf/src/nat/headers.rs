//! What the NAT paths take from the frame, and how.
//!
//! They run as BPF functions of their own (see `call.rs`). The reply path
//! parses the frame again with `parse`; the request path and the reply
//! cache are told where the headers are (a [`Layout`] packed into one
//! argument) and read only the fields they use. Addresses are copied from
//! the IP header straight to where they are needed (scratch map keys)
//! instead of being kept in registers: an IPv6 pair is eight words, and
//! every word held across a helper call is a stack slot.

use aya_ebpf::programs::XdpContext;
use lb_common::{Addr, Family};
use network_types::ip::{Ipv4Hdr, Ipv6Hdr};

use crate::parse::{L3, header};

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

    /// The layout in one register, for a BPF function that would otherwise
    /// parse the frame again. Offsets fit a byte: the IP header starts at
    /// most 18 bytes in (one VLAN tag), TCP/UDP at most 60 bytes after it.
    #[inline(always)]
    pub fn packed(self) -> u32 {
        self.l3_offset as u32
            | (self.l4_offset as u32) << 8
            | (self.family as u32) << 16
            | (self.protocol as u32) << 24
    }

    /// [`Layout::packed`] undone. The masks also bound the offsets for the
    /// verifier, which proves each header read against them.
    #[inline(always)]
    pub fn unpacked(packed: u32) -> Self {
        Self {
            family: if (packed >> 16) as u8 == Family::V6 as u8 {
                Family::V6
            } else {
                Family::V4
            },
            protocol: (packed >> 24) as u8,
            l3_offset: (packed & 0xff) as usize,
            l4_offset: ((packed >> 8) & 0xff) as usize,
        }
    }
}

/// The TTL (IPv4) or hop limit (IPv6).
#[inline(always)]
pub fn ttl(ctx: &XdpContext, at: Layout) -> Option<u8> {
    // SAFETY (both arms): bounds checked by `header`.
    match at.family {
        Family::V4 => header::<Ipv4Hdr>(ctx, at.l3_offset).map(|ip| unsafe { (*ip).ttl }),
        Family::V6 => header::<Ipv6Hdr>(ctx, at.l3_offset).map(|ip| unsafe { (*ip).hop_limit }),
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
