//! TCP and UDP header facts.

use lb_common::proto;

/// TCP flags byte offset inside the TCP header, and the bits we read.
pub const TCP_FLAGS_OFFSET: usize = 13;
pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_ACK: u8 = 0x10;

/// Offsets of the checksum in the TCP and UDP headers.
const TCP_CHECKSUM: usize = 16;
const UDP_CHECKSUM: usize = 6;

/// Bytes at the start of both headers that hold the source and destination
/// ports, and the whole UDP header (which an ICMP error always quotes).
pub const PORTS_LEN: usize = 4;
pub const UDP_HDR_LEN: usize = 8;

/// Where the checksum sits in a TCP (anything but UDP) or UDP header.
#[inline(always)]
pub fn checksum_offset(protocol: u8) -> usize {
    if protocol == proto::UDP {
        UDP_CHECKSUM
    } else {
        TCP_CHECKSUM
    }
}

#[cfg(test)]
mod tests {
    use lb_common::proto;

    use super::checksum_offset;

    #[test]
    fn checksums_sit_where_the_rfcs_put_them() {
        assert_eq!(checksum_offset(proto::UDP), 6);
        assert_eq!(checksum_offset(proto::TCP), 16);
    }
}
