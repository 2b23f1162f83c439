//! A dual-stack address as the data plane stores it.

/// Address family tag stored next to every [`Addr`].
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4 = 4,
    V6 = 6,
}

impl Family {
    pub const fn from_u8(value: u8) -> Option<Self> {
        match value {
            4 => Some(Self::V4),
            6 => Some(Self::V6),
            _ => None,
        }
    }
}

/// An IPv4 or IPv6 address in network byte order, as it appears on the wire.
///
/// IPv4 occupies the first word and leaves the others zero, so the BPF side
/// can copy the four bytes straight out of the IP header without shuffling.
/// Kept as `u32` words (not bytes) so the verifier-friendly copies and
/// compares are four loads instead of sixteen.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Addr {
    pub words: [u32; 4],
}

impl Addr {
    pub const UNSPECIFIED: Self = Self { words: [0; 4] };

    /// From the four bytes of an IPv4 address in wire order.
    pub const fn from_v4_octets(octets: [u8; 4]) -> Self {
        Self {
            words: [u32::from_ne_bytes(octets), 0, 0, 0],
        }
    }

    /// From the sixteen bytes of an IPv6 address in wire order.
    pub const fn from_v6_octets(o: [u8; 16]) -> Self {
        Self {
            words: [
                u32::from_ne_bytes([o[0], o[1], o[2], o[3]]),
                u32::from_ne_bytes([o[4], o[5], o[6], o[7]]),
                u32::from_ne_bytes([o[8], o[9], o[10], o[11]]),
                u32::from_ne_bytes([o[12], o[13], o[14], o[15]]),
            ],
        }
    }

    /// The address with only its first `prefix` bits kept (the rest zero):
    /// the network a persistence template stands for (ipvsadm's `-M`). A
    /// prefix of 32 or more keeps an IPv4 address whole, 128 or more an
    /// IPv6 one; 0 keeps nothing.
    #[inline(always)]
    pub const fn masked(&self, prefix: u8) -> Self {
        let [a, b, c, d] = self.words;
        Self {
            words: [
                a & Self::word_mask(prefix, 0),
                b & Self::word_mask(prefix, 32),
                c & Self::word_mask(prefix, 64),
                d & Self::word_mask(prefix, 96),
            ],
        }
    }

    /// The mask of the word holding bits `first..first + 32`, in the
    /// words' memory order (network byte order).
    #[inline(always)]
    const fn word_mask(prefix: u8, first: u32) -> u32 {
        let prefix = prefix as u32;
        if prefix <= first {
            return 0;
        }
        let bits = prefix - first;
        if bits >= 32 {
            return u32::MAX;
        }
        (u32::MAX << (32 - bits)).to_be()
    }

    /// The sixteen bytes in wire order (IPv4: the first four, then zeros).
    pub const fn octets(&self) -> [u8; 16] {
        let [a, b, c, d] = self.words;
        let (a, b, c, d) = (
            a.to_ne_bytes(),
            b.to_ne_bytes(),
            c.to_ne_bytes(),
            d.to_ne_bytes(),
        );
        [
            a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3], c[0], c[1], c[2], c[3], d[0], d[1],
            d[2], d[3],
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::Addr;

    #[test]
    fn masking_keeps_the_leading_bits() {
        let v4 = Addr::from_v4_octets([198, 19, 7, 77]);
        assert_eq!(v4.masked(32), v4);
        assert_eq!(v4.masked(128), v4);
        assert_eq!(v4.masked(24), Addr::from_v4_octets([198, 19, 7, 0]));
        assert_eq!(v4.masked(26), Addr::from_v4_octets([198, 19, 7, 64]));
        assert_eq!(v4.masked(9), Addr::from_v4_octets([198, 0, 0, 0]));
        assert_eq!(v4.masked(0), Addr::UNSPECIFIED);
        let mut o = [0xffu8; 16];
        o[15] = 0x77;
        let v6 = Addr::from_v6_octets(o);
        assert_eq!(v6.masked(128), v6);
        let mut want = [0u8; 16];
        want[..8].copy_from_slice(&[0xff; 8]);
        want[8] = 0xf0;
        assert_eq!(v6.masked(68), Addr::from_v6_octets(want));
        assert_eq!(v6.masked(64).words[2..], [0, 0]);
    }
}

#[cfg(feature = "user")]
mod user {
    extern crate std;
    use super::{Addr, Family};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    impl From<IpAddr> for Addr {
        fn from(ip: IpAddr) -> Self {
            match ip {
                IpAddr::V4(v4) => Addr::from_v4_octets(v4.octets()),
                IpAddr::V6(v6) => Addr::from_v6_octets(v6.octets()),
            }
        }
    }

    impl Addr {
        /// Back to a std address; `family` says how to read the words.
        pub fn to_ip(&self, family: Family) -> IpAddr {
            let o = self.octets();
            match family {
                Family::V4 => IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], o[3])),
                Family::V6 => IpAddr::V6(Ipv6Addr::from(o)),
            }
        }
    }

    impl Family {
        pub fn of(ip: &IpAddr) -> Self {
            match ip {
                IpAddr::V4(_) => Family::V4,
                IpAddr::V6(_) => Family::V6,
            }
        }
    }
}
