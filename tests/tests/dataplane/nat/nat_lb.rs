//! The balancer with NAT services: the harness's loader and comparisons,
//! plus LB_NAT_REALS and LB_NAT_REPLIES.

use std::ops::{Deref, DerefMut};

use lb_common::{
    Addr, Family, FlowKey, ForwardingMethod, GlobalCounter, NatRealKey, NatReply, REAL_ACTIVE,
    REAL_NEXT_HOP_KNOWN, Real,
};
use lb_tests::frames::{LB_EGRESS_MAC, real_mac, sa};
use lb_userspace::dataplane::monotonic_now_ns;

use super::frames::{Frame, assert_checksums_valid};
use crate::harness::{Case, Lb, MaglevRow, assert_no_mismatches};

/// The harness's balancer with NAT services: it writes LB_NAT_REALS too,
/// reads LB_NAT_REPLIES, and checks the checksums of every rewritten frame
/// on top of the harness's rules (action, exact frame, every counter).
pub(super) struct NatLb {
    lb: Lb,
}

impl Deref for NatLb {
    type Target = Lb;

    fn deref(&self) -> &Lb {
        &self.lb
    }
}

impl DerefMut for NatLb {
    fn deref_mut(&mut self) -> &mut Lb {
        &mut self.lb
    }
}

impl NatLb {
    pub(super) fn load() -> Self {
        Self { lb: Lb::load() }
    }

    /// A NAT service on `vip` (VIP:port) whose only real is `real_addr`
    /// (address:port), reached through `ifindex`. Returns the real as
    /// written, for the expected MACs.
    pub(super) fn nat_service(
        &mut self,
        vip: &str,
        protocol: u8,
        service_id: u32,
        real_id: u32,
        real_addr: &str,
        ifindex: u32,
    ) -> Real {
        self.lb.service(vip, protocol, service_id);
        let real_addr = sa(real_addr);
        let family = Family::of(&real_addr.ip()) as u8;
        let real = Real {
            addr: Addr::from(real_addr.ip()),
            family,
            flags: REAL_ACTIVE | REAL_NEXT_HOP_KNOWN,
            forwarding: ForwardingMethod::Masquerade as u8,
            port_be: real_addr.port().to_be(),
            service_id,
            ifindex,
            dst_mac: real_mac(real_id),
            src_mac: LB_EGRESS_MAC,
            weight: 1,
            ..Real::default()
        };
        self.lb.set_real(real_id, real);
        self.lb.set_maglev_row(service_id, &MaglevRow::all(real_id));
        let nat_real = NatRealKey {
            addr: Addr::from(real_addr.ip()),
            family,
            _pad: [0; 3],
        };
        self.lb
            .maps_mut()
            .nat_reals
            .insert(nat_real, 1, 0)
            .expect("insert NAT real");
        real
    }

    pub(super) fn nat_reply(&self, key: &FlowKey) -> Option<NatReply> {
        self.lb.maps().nat_replies.get(key, 0).ok()
    }

    pub(super) fn forget_nat_reply(&mut self, key: &FlowKey) {
        self.lb
            .maps_mut()
            .nat_replies
            .remove(key)
            .expect("remove NAT reply entry");
    }

    /// Makes the flow's entry look `seconds` old.
    pub(super) fn age_flow(&mut self, key: &FlowKey, seconds: u64) {
        let mut flow = self.lb.flow(key).expect("the flow");
        flow.last_seen_ns = monotonic_now_ns() - seconds * 1_000_000_000;
        self.lb.set_flow(*key, flow);
    }

    /// Runs one case; returns what went wrong. Rewritten output frames also
    /// get their checksums checked by etherparse.
    pub(super) fn check(&mut self, case: &Case) -> Vec<String> {
        self.lb.check_output(case, |out| {
            if case.output.is_some() {
                assert_checksums_valid(&case.name, out);
            }
        })
    }

    pub(super) fn expect_all(&mut self, cases: &[Case]) {
        let errors: Vec<String> = cases.iter().flat_map(|case| self.check(case)).collect();
        assert_no_mismatches(&errors, cases.len());
    }
}

/// A frame that must come out as `output`, with `action` and `counters`.
pub(super) fn case(
    name: &str,
    input: &Frame,
    action: u32,
    output: Option<&Frame>,
    counters: &[GlobalCounter],
) -> Case {
    Case {
        name: name.into(),
        frame: input.bytes(),
        action,
        output: output.map(Frame::bytes),
        counters: counters.to_vec(),
        ingress: None,
    }
}

/// The reverse entry a request to `vip` forwarded to `real_addr` must leave.
pub(super) fn expected_reply_entry(
    request: &Frame,
    real_id: u32,
    real_addr: &str,
) -> (FlowKey, NatReply) {
    let real_addr = sa(real_addr);
    let key = FlowKey {
        src: Addr::from(real_addr.ip()),
        dst: Addr::from(request.src.ip()),
        src_port: real_addr.port().to_be(),
        dst_port: request.src.port().to_be(),
        protocol: request.protocol(),
        family: Family::of(&real_addr.ip()) as u8,
        _pad: [0; 2],
    };
    let value = NatReply {
        vip: Addr::from(request.dst.ip()),
        vip_port_be: request.dst.port().to_be(),
        _pad: [0; 2],
        real_id,
        forward: request.key(),
    };
    (key, value)
}
