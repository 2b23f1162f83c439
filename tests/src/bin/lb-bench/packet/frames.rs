//! The frames the generators send: minimum-size TCP and UDP frames of one
//! flow, built by the shared frame builder.

use std::net::IpAddr;

use anyhow::{Result, bail};
use lb_tests::frames::{self, MIN_FRAME, Packet};

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
        if self.src.is_ipv4() != self.dst.is_ipv4() {
            bail!("mixed address families in {self:?}");
        }
        let (src_port, dst_port) = (self.src_port, self.dst_port);
        let (transport, payload) = match self.transport {
            Transport::TcpAck => {
                let ack = frames::Transport::Tcp {
                    src_port,
                    dst_port,
                    syn: false,
                    ack: true,
                    fin: false,
                };
                (ack, Vec::new())
            }
            Transport::Udp => (frames::Transport::Udp { src_port, dst_port }, vec![0; 18]),
        };
        let packet = Packet {
            src_mac: self.src_mac,
            dst_mac: self.dst_mac,
            payload,
            ..Packet::new(self.src, self.dst, transport)
        };
        let mut frame = packet.bytes();
        if frame.len() < MIN_FRAME {
            frame.resize(MIN_FRAME, 0);
        }
        Ok(frame)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn ipv4_frames_are_64_bytes_on_the_wire() {
        let v4 = |a, b, c, d| IpAddr::V4(Ipv4Addr::new(a, b, c, d));
        for transport in [Transport::TcpAck, Transport::Udp] {
            let flow = Flow {
                src_mac: [2, 0, 0, 0, 0, 1],
                dst_mac: [2, 0, 0, 0, 0, 2],
                src: v4(198, 18, 0, 100),
                dst: v4(198, 18, 1, 10),
                src_port: 40_000,
                dst_port: 80,
                transport,
            };
            assert_eq!(flow.frame().unwrap().len(), MIN_FRAME);
        }
    }
}
