//! The services the ICMP cases run against: one real per service, by
//! forwarding method.

use lb_common::{Addr, Family, FlowKey, ForwardingMethod, Real, proto};
use lb_tests::frames::{Packet, ip};

use super::{TUNNEL_SRC4, TUNNEL_SRC6};
use crate::harness::{Lb, MaglevRow, real};

/// Service `id` at `vip` with one real (`id` as well) at `real_addr`,
/// forwarding with `method`. The real's next hop is known and is reached
/// through the ingress interface, so forwarding is XDP_TX.
pub(super) fn one_real_service(
    lb: &mut Lb,
    vip: &str,
    protocol: u8,
    id: u32,
    method: ForwardingMethod,
    real_addr: &str,
) -> Real {
    lb.service(vip, protocol, id);
    let mut entry = real(id, id, ip(real_addr));
    entry.forwarding = method as u8;
    entry.tunnel_src = Addr::from(ip(if entry.family == Family::V4 as u8 {
        TUNNEL_SRC4
    } else {
        TUNNEL_SRC6
    }));
    entry.mtu = 1500;
    lb.set_real(id, entry);
    lb.set_maglev_row(id, &MaglevRow::all(id));
    entry
}

pub(super) fn tun_service(lb: &mut Lb, vip: &str, id: u32, real_addr: &str, mtu: u16) -> Real {
    let mut entry = one_real_service(lb, vip, proto::TCP, id, ForwardingMethod::Tunnel, real_addr);
    entry.mtu = mtu;
    lb.set_real(id, entry);
    entry
}

/// Opens the flow `packet` starts (whatever the method does with the packet
/// itself) and checks it was recorded.
pub(super) fn open_flow(lb: &mut Lb, packet: &Packet) -> FlowKey {
    let key = packet.flow_key();
    lb.try_run(&packet.bytes()).expect("test run");
    assert!(lb.flow(&key).is_some(), "no flow entry for {packet:?}");
    key
}
