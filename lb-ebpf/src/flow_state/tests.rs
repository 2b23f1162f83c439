use lb_common::{Addr, ConnectionState, Family, FlowKey, proto};

use super::{LAST_SEEN_GRANULARITY_NS, flow_key, next_state, writes_flow_entry};
use crate::{
    parse::{L3, L4},
    wire::l4::{TCP_FIN, TCP_RST},
};

const SYN_SEEN: u8 = ConnectionState::TcpSynSeen as u8;
const ESTABLISHED: u8 = ConnectionState::TcpEstablished as u8;
const CLOSING: u8 = ConnectionState::TcpClosing as u8;
const UDP: u8 = ConnectionState::Udp as u8;
/// A flow table entry that does not exist yet.
const NEW: u8 = 0;
const ACK: u8 = 0x10;
const SYN: u8 = 0x02;

/// A TCP packet's flags, and whether the parser called it a SYN (SYN
/// without ACK).
fn tcp(current: u8, flags: u8) -> u8 {
    next_state(current, proto::TCP, flags, flags & (SYN | ACK) == SYN)
}

#[test]
fn tcp_handshake_data_and_close() {
    let mut state = NEW;
    let mut seen = Vec::new();
    for flags in [SYN, ACK, ACK, TCP_FIN | ACK, ACK] {
        state = tcp(state, flags);
        seen.push(state);
    }
    assert_eq!(seen, [SYN_SEEN, ESTABLISHED, ESTABLISHED, CLOSING, CLOSING]);
}

#[test]
fn rst_closes_from_every_state() {
    for current in [NEW, SYN_SEEN, ESTABLISHED, CLOSING] {
        assert_eq!(tcp(current, TCP_RST), CLOSING, "from {current}");
        assert_eq!(tcp(current, TCP_RST | ACK), CLOSING, "from {current}");
    }
}

#[test]
fn syn_reopens_a_closing_flow() {
    // A client reusing the port starts over; the flow cache and table see
    // the same transition.
    assert_eq!(tcp(CLOSING, SYN), SYN_SEEN);
    assert_eq!(tcp(ESTABLISHED, SYN), SYN_SEEN);
}

#[test]
fn a_syn_with_fin_closes() {
    assert_eq!(tcp(NEW, SYN | TCP_FIN), CLOSING);
}

#[test]
fn a_synack_from_the_client_side_establishes() {
    // SYN+ACK is not a new connection to the parser.
    assert_eq!(tcp(SYN_SEEN, SYN | ACK), ESTABLISHED);
}

#[test]
fn everything_but_tcp_is_udp_whatever_its_flags() {
    for protocol in [proto::UDP, proto::ICMP] {
        for current in [NEW, UDP, ESTABLISHED] {
            assert_eq!(next_state(current, protocol, TCP_FIN, true), UDP);
        }
    }
}

#[test]
fn an_entry_is_written_on_a_state_change_or_once_a_second() {
    let second = LAST_SEEN_GRANULARITY_NS;
    assert!(!writes_flow_entry(ESTABLISHED, ESTABLISHED, 0));
    assert!(!writes_flow_entry(ESTABLISHED, ESTABLISHED, second));
    assert!(writes_flow_entry(ESTABLISHED, ESTABLISHED, second + 1));
    assert!(writes_flow_entry(ESTABLISHED, CLOSING, 0));
    assert!(writes_flow_entry(SYN_SEEN, ESTABLISHED, 0));
}

fn l3(family: Family, src: Addr, dst: Addr, protocol: u8) -> L3 {
    L3 {
        family,
        src,
        dst,
        protocol,
        l3_offset: 14,
        l4_offset: 34,
        ip_len: 60,
        tos: 0,
        ttl: 64,
        dont_fragment: true,
        is_fragment: false,
        has_ipv4_options: false,
    }
}

#[test]
fn the_key_is_the_client_to_vip_five_tuple_as_on_the_wire() {
    let client = Addr::from_v4_octets([198, 18, 0, 100]);
    let vip = Addr::from_v4_octets([198, 18, 1, 10]);
    let l4 = L4 {
        src_port: 40_000u16.to_be(),
        dst_port: 80u16.to_be(),
        is_tcp_syn: true,
        tcp_flags: SYN,
    };
    let key = flow_key(&l3(Family::V4, client, vip, proto::TCP), &l4);
    let expected = FlowKey {
        src: client,
        dst: vip,
        src_port: 40_000u16.to_be(),
        dst_port: 80u16.to_be(),
        protocol: proto::TCP,
        family: Family::V4 as u8,
        _pad: [0; 2],
    };
    assert_eq!(key, expected);
}

#[test]
fn the_key_tells_families_and_protocols_apart() {
    let mut v6 = [0u8; 16];
    v6[..2].copy_from_slice(&[0xfd, 0x00]);
    let client = Addr::from_v6_octets(v6);
    v6[15] = 0x10;
    let vip = Addr::from_v6_octets(v6);
    let l4 = L4 {
        src_port: 1,
        dst_port: 2,
        is_tcp_syn: false,
        tcp_flags: 0,
    };
    let udp = flow_key(&l3(Family::V6, client, vip, proto::UDP), &l4);
    let tcp = flow_key(&l3(Family::V6, client, vip, proto::TCP), &l4);
    assert_eq!((udp.family, udp.protocol), (Family::V6 as u8, proto::UDP));
    assert_ne!(udp, tcp);
    assert_eq!((udp.src, udp.dst), (client, vip));
}
