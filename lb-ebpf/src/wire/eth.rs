//! The L2 header: Ethernet with at most one 802.1Q tag.

use lb_common::Family;
use network_types::{
    eth::{EthHdr, EtherType},
    vlan::VlanHdr,
};

use super::frame::{Frame, view, view_mut};

/// The length of the L2 header (Ethernet, plus at most one 802.1Q tag) and
/// the ethertype of what follows it, as on the wire. `None`: cut short.
#[inline(always)]
pub fn l2(frame: &impl Frame) -> Option<(usize, u16)> {
    let ether_type = view::<EthHdr>(frame, 0)?.ether_type;
    if ether_type != EtherType::Ieee8021q as u16 {
        return Some((EthHdr::LEN, ether_type));
    }
    let vlan = view::<VlanHdr>(frame, EthHdr::LEN)?;
    Some((EthHdr::LEN + VlanHdr::LEN, vlan.ether_type))
}

/// The ethertype of a packet of `family`, as on the wire.
#[inline(always)]
pub fn ether_type(family: Family) -> u16 {
    match family {
        Family::V4 => EtherType::Ipv4 as u16,
        Family::V6 => EtherType::Ipv6 as u16,
    }
}

/// Towards the next hop: its MAC and ours.
#[inline(always)]
pub fn set_macs(frame: &impl Frame, dst: &[u8; 6], src: &[u8; 6]) -> Option<()> {
    let eth = view_mut::<EthHdr>(frame, 0)?;
    eth.dst_addr = *dst;
    eth.src_addr = *src;
    Some(())
}

/// Swaps the Ethernet destination and source (the first twelve bytes of
/// the frame): it goes back to the neighbour it came from.
#[inline(always)]
pub fn swap_macs(macs: &mut [[u8; 6]; 2]) {
    let [dst, src] = *macs;
    *macs = [src, dst];
}

#[cfg(test)]
mod tests {
    use lb_common::Family;

    use super::*;
    use crate::wire::frame::{header, test_frame::Bytes};

    const A: [u8; 6] = [2, 0, 0, 0, 0, 0xa];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 0xb];

    fn frame(tags: &[u8], ether_type: [u8; 2]) -> Vec<u8> {
        [&A[..], &B, tags, &ether_type, &[0x45, 0]].concat()
    }

    #[test]
    fn l2_finds_the_ethertype_behind_at_most_one_tag() {
        let untagged = Bytes::<64>::new(&frame(&[], [0x86, 0xdd]));
        assert_eq!(l2(&untagged), Some((14, ether_type(Family::V6))));
        let tagged = Bytes::<64>::new(&frame(&[0x81, 0x00, 0x00, 0x07], [0x08, 0x00]));
        assert_eq!(l2(&tagged), Some((18, ether_type(Family::V4))));
        assert_eq!(l2(&Bytes::<64>::new(&frame(&[], [0x08, 0x00])[..13])), None);
        let cut_tag = &frame(&[0x81, 0x00, 0x00, 0x07], [0x08, 0x00])[..17];
        assert_eq!(l2(&Bytes::<64>::new(cut_tag)), None);
    }

    #[test]
    fn macs_are_set_and_swapped_in_place() {
        let bytes = Bytes::<64>::new(&frame(&[], [0x08, 0x00]));
        set_macs(&bytes, &B, &A).unwrap();
        assert_eq!(&bytes.as_slice()[..12], &[B, A].concat()[..]);
        // SAFETY: the frame holds 12 bytes and no other view is alive.
        swap_macs(unsafe { &mut *header::<[[u8; 6]; 2]>(&bytes, 0).unwrap() });
        assert_eq!(&bytes.as_slice()[..12], &[A, B].concat()[..]);
        assert_eq!(&bytes.as_slice()[12..], &[0x08, 0x00, 0x45, 0]);
    }
}
