//! The ICMP fixtures' runner on top of the harness: every checksum of what
//! the program sent, verified independently, besides the byte comparison.

use etherparse::{Ipv4HeaderSlice, NetSlice, SlicedPacket, TransportSlice};
use lb_common::GlobalCounter;

use crate::harness::{Case, Lb, assert_no_mismatches, xdp};

/// Verifies, with etherparse, every checksum of an ICMP frame that can be
/// verified: the IPv4 header, the ICMP message (ICMPv6 with its
/// pseudo-header), the quoted IPv4 header, and the quoted TCP/UDP checksum
/// when the quote holds the whole segment.
fn checksum_errors(name: &str, frame: &[u8]) -> Vec<String> {
    let mut errors = Vec::new();
    let packet = match SlicedPacket::from_ethernet(frame) {
        Ok(packet) => packet,
        Err(error) => return vec![format!("{name}: etherparse cannot read the frame: {error}")],
    };
    let quote = match (&packet.net, &packet.transport) {
        (Some(NetSlice::Ipv4(ipv4)), Some(TransportSlice::Icmpv4(icmp))) => {
            let header = ipv4.header().to_header();
            if header.calc_header_checksum() != header.header_checksum {
                errors.push(format!("{name}: bad IPv4 header checksum"));
            }
            if icmp.icmp_type().calc_checksum(icmp.payload()) != icmp.checksum() {
                errors.push(format!("{name}: bad ICMP checksum"));
            }
            icmp.payload()
        }
        (Some(NetSlice::Ipv6(ipv6)), Some(TransportSlice::Icmpv6(icmp))) => {
            let header = ipv6.header();
            if !icmp.is_checksum_valid(header.source(), header.destination()) {
                errors.push(format!("{name}: bad ICMPv6 checksum"));
            }
            icmp.payload()
        }
        _ => return vec![format!("{name}: not an ICMP or ICMPv6 packet")],
    };
    if quote.first().is_some_and(|b| b >> 4 == 4) {
        match Ipv4HeaderSlice::from_slice(quote) {
            Ok(quoted) => {
                let quoted = quoted.to_header();
                if quoted.calc_header_checksum() != quoted.header_checksum {
                    errors.push(format!("{name}: bad quoted IPv4 header checksum"));
                }
            }
            Err(error) => errors.push(format!("{name}: quoted IPv4 header: {error}")),
        }
    }
    if let Some(error) = quoted_segment_checksum_error(quote) {
        errors.push(format!("{name}: {error}"));
    }
    errors
}

/// The quoted segment's own checksum, when the quote is the whole packet
/// (a cut quote cannot be verified by anyone).
fn quoted_segment_checksum_error(quote: &[u8]) -> Option<String> {
    let quoted = SlicedPacket::from_ip(quote).ok()?;
    let (src, dst): (Vec<u8>, Vec<u8>) = match &quoted.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header();
            if usize::from(h.total_len()) != quote.len() {
                return None;
            }
            (h.source().to_vec(), h.destination().to_vec())
        }
        Some(NetSlice::Ipv6(ip)) => {
            let h = ip.header();
            if usize::from(h.payload_length()) + 40 != quote.len() {
                return None;
            }
            (h.source().to_vec(), h.destination().to_vec())
        }
        _ => return None,
    };
    let v4 = |a: &[u8]| -> [u8; 4] { a.try_into().unwrap() };
    let v6 = |a: &[u8]| -> [u8; 16] { a.try_into().unwrap() };
    let (expected, got) = match &quoted.transport {
        Some(TransportSlice::Tcp(tcp)) if src.len() == 4 => (
            tcp.calc_checksum_ipv4(v4(&src), v4(&dst)).ok()?,
            tcp.checksum(),
        ),
        Some(TransportSlice::Tcp(tcp)) => (
            tcp.calc_checksum_ipv6(v6(&src), v6(&dst)).ok()?,
            tcp.checksum(),
        ),
        Some(TransportSlice::Udp(udp)) if udp.checksum() == 0 && src.len() == 4 => return None,
        Some(TransportSlice::Udp(udp)) if src.len() == 4 => (
            udp.to_header()
                .calc_checksum_ipv4_raw(v4(&src), v4(&dst), udp.payload())
                .ok()?,
            udp.checksum(),
        ),
        Some(TransportSlice::Udp(udp)) => (
            udp.to_header()
                .calc_checksum_ipv6_raw(v6(&src), v6(&dst), udp.payload())
                .ok()?,
            udp.checksum(),
        ),
        _ => return None,
    };
    (expected != got).then(|| format!("bad quoted TCP/UDP checksum {got:#06x}, {expected:#06x}"))
}

/// Runs the cases with the harness and verifies the checksums of every
/// frame the program sent, reporting all mismatches at once.
pub(super) fn expect_icmp_out(lb: &mut Lb, cases: &[Case]) {
    let mut errors = Vec::new();
    for case in cases {
        let sent = case.action == xdp::TX || case.action == xdp::REDIRECT;
        let mut checksums = Vec::new();
        errors.extend(lb.check_output(case, |out| {
            if sent {
                checksums = checksum_errors(&case.name, out);
            }
        }));
        errors.extend(checksums);
    }
    assert_no_mismatches(&errors, cases.len());
}

/// Sent back out (XDP_TX) as `output`, with `counters` moved.
pub(super) fn tx(name: &str, input: Vec<u8>, output: Vec<u8>, counters: &[GlobalCounter]) -> Case {
    Case {
        name: name.into(),
        frame: input,
        action: xdp::TX,
        output: Some(output),
        counters: counters.to_vec(),
        ingress: None,
    }
}
