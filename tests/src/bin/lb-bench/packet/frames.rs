//! The frames the generators send: minimum-size TCP and UDP frames of one
//! flow, built with etherparse, and the per-packet edit that turns a frame
//! into a new flow.

use std::net::IpAddr;

use anyhow::{Result, bail};
use etherparse::PacketBuilder;

/// Ethernet's minimum frame without the FCS: 64 bytes on the wire.
pub const MIN_FRAME: usize = 60;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// An ACK: a flow-table hit once the flow is known (a SYN always
    /// schedules afresh).
    TcpAck,
    Udp,
}

#[derive(Clone, Copy, Debug)]
pub struct Flow {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub transport: Transport,
}

impl Flow {
    /// The frame, padded to the Ethernet minimum (IPv6 frames are larger).
    pub fn frame(&self) -> Result<Vec<u8>> {
        let ethernet = PacketBuilder::ethernet2(self.src_mac, self.dst_mac);
        let ip = match (self.src, self.dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => ethernet.ipv4(src.octets(), dst.octets(), 64),
            (IpAddr::V6(src), IpAddr::V6(dst)) => ethernet.ipv6(src.octets(), dst.octets(), 64),
            _ => bail!("mixed address families in {self:?}"),
        };
        let mut frame = Vec::with_capacity(128);
        match self.transport {
            Transport::TcpAck => ip
                .tcp(self.src_port, self.dst_port, 1, 64_240)
                .ack(1)
                .write(&mut frame, &[])?,
            Transport::Udp => ip
                .udp(self.src_port, self.dst_port)
                .write(&mut frame, &[0; 18])?,
        }
        if frame.len() < MIN_FRAME {
            frame.resize(MIN_FRAME, 0);
        }
        Ok(frame)
    }
}

const ETHERNET: usize = 14;
const IPV4_SRC: usize = ETHERNET + 12;
const IPV4_CHECKSUM: usize = ETHERNET + 10;
const IPV6_SRC: usize = ETHERNET + 8;

/// Gives `frame` (built by [`Flow::frame`]) the `index`-th distinct source
/// address and port, so each index is a flow never seen before. The IPv4
/// header checksum is recomputed; the L4 checksum is left stale, which
/// neither the balancer (it updates checksums incrementally) nor the sink
/// (it drops) reads.
pub fn make_new_flow(frame: &mut [u8], ipv6: bool, index: u64) {
    const PORTS: u64 = 64_512;
    let port = 1024 + (index % PORTS) as u16;
    let host = (index / PORTS) as u16;
    let (src, l4) = if ipv6 {
        (IPV6_SRC + 14, ETHERNET + 40)
    } else {
        (IPV4_SRC + 2, ETHERNET + 20)
    };
    frame[src..src + 2].copy_from_slice(&host.to_be_bytes());
    frame[l4..l4 + 2].copy_from_slice(&port.to_be_bytes());
    if !ipv6 {
        frame[IPV4_CHECKSUM..IPV4_CHECKSUM + 2].fill(0);
        let checksum = ipv4_header_checksum(&frame[ETHERNET..ETHERNET + 20]);
        frame[IPV4_CHECKSUM..IPV4_CHECKSUM + 2].copy_from_slice(&checksum.to_be_bytes());
    }
}

fn ipv4_header_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks_exact(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], pair[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    use super::*;

    fn flow(src: IpAddr, dst: IpAddr, transport: Transport) -> Flow {
        Flow {
            src_mac: [2, 0, 0, 0, 0, 1],
            dst_mac: [2, 0, 0, 0, 0, 2],
            src,
            dst,
            src_port: 40_000,
            dst_port: 80,
            transport,
        }
    }

    fn source(frame: &[u8]) -> (IpAddr, u16) {
        let packet = SlicedPacket::from_ethernet(frame).unwrap();
        let address = match packet.net.unwrap() {
            NetSlice::Ipv4(ip) => {
                assert!(
                    ip.header().to_header().calc_header_checksum() == ip.header().header_checksum()
                );
                IpAddr::V4(ip.header().source_addr())
            }
            NetSlice::Ipv6(ip) => IpAddr::V6(ip.header().source_addr()),
            _ => unreachable!(),
        };
        let port = match packet.transport.unwrap() {
            TransportSlice::Tcp(tcp) => tcp.source_port(),
            TransportSlice::Udp(udp) => udp.source_port(),
            _ => unreachable!(),
        };
        (address, port)
    }

    #[test]
    fn ipv4_frames_are_64_bytes_on_the_wire() {
        let v4 = |a, b, c, d| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
        for transport in [Transport::TcpAck, Transport::Udp] {
            let frame = flow(v4(198, 18, 0, 100), v4(198, 18, 1, 10), transport)
                .frame()
                .unwrap();
            assert_eq!(frame.len(), MIN_FRAME);
        }
    }

    #[test]
    fn every_index_is_a_distinct_flow_with_a_valid_ipv4_header() {
        let v4 = IpAddr::V4(Ipv4Addr::new(198, 18, 0, 100));
        let vip = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 10));
        let v6 = IpAddr::V6(Ipv6Addr::new(0xfd00, 0x18, 0, 0, 0, 0, 0, 0x100));
        let vip6 = IpAddr::V6(Ipv6Addr::new(0xfd00, 0x18, 1, 0, 0, 0, 0, 0x10));
        for (src, dst, ipv6) in [(v4, vip, false), (v6, vip6, true)] {
            let template = flow(src, dst, Transport::TcpAck).frame().unwrap();
            let mut seen = std::collections::HashSet::new();
            for index in [0, 1, 64_511, 64_512, 64_513, 1_000_000] {
                let mut frame = template.clone();
                make_new_flow(&mut frame, ipv6, index);
                assert!(seen.insert(source(&frame)), "index {index} repeats a flow");
            }
        }
    }
}
