//! Where a packet's headers are (a [`Layout`], packed into one register
//! for BPF functions that would otherwise parse the frame again), and
//! which [`End`] of the packet a rewrite is about.

use lb_common::Family;

/// Where the headers are and what they are: what a rewrite needs.
#[derive(Clone, Copy)]
pub struct Layout {
    pub family: Family,
    pub protocol: u8,
    pub l3_offset: usize,
    pub l4_offset: usize,
}

impl Layout {
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

/// Which end of the packet: its source or its destination.
#[derive(Clone, Copy)]
pub enum End {
    /// Replies: real:port becomes VIP:port.
    Source,
    /// Requests: VIP:port becomes real:port.
    Destination,
}

impl End {
    /// Of a source and a destination field, the one at this end.
    #[inline(always)]
    pub fn pick<T>(self, source: T, destination: T) -> T {
        match self {
            Self::Source => source,
            Self::Destination => destination,
        }
    }
}

#[cfg(test)]
mod tests {
    use lb_common::Family;

    use super::Layout;

    #[test]
    fn a_layout_survives_packing() {
        for (family, protocol, l3_offset, l4_offset) in [
            (Family::V4, 6, 14, 34),
            (Family::V4, 17, 18, 78),
            (Family::V6, 17, 14, 54),
            (Family::V6, 6, 18, 58),
        ] {
            let layout = Layout {
                family,
                protocol,
                l3_offset,
                l4_offset,
            };
            let back = Layout::unpacked(layout.packed());
            assert_eq!(back.family, family);
            assert_eq!(back.protocol, protocol);
            assert_eq!((back.l3_offset, back.l4_offset), (l3_offset, l4_offset));
        }
    }

    #[test]
    fn unpacked_offsets_stay_below_a_byte() {
        let layout = Layout::unpacked(u32::MAX);
        assert!(layout.l3_offset <= 0xff && layout.l4_offset <= 0xff);
        assert_eq!(layout.family, Family::V4);
    }
}
