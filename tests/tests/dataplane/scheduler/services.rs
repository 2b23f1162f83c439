//! The services, reals and rows the scheduler cases write, and the packets
//! they send.

use lb_common::GlobalCounter::*;
use lb_common::{Addr, Scheduler, proto};
use lb_tests::frames::{Packet, ip};
use lb_userspace::rows::RowReal;

use super::{CLIENT_IP, WEB};
use crate::harness::{Case, Lb, MAGLEV_TABLE_SIZE};

/// `CLIENT_IP` from source port 40000 + `n`.
pub(super) fn client(n: u16) -> String {
    format!("{CLIENT_IP}:{}", 40_000 + n)
}

pub(super) fn syn(client: &str) -> Packet {
    Packet::tcp_syn(client, WEB)
}

/// Service 1 on `WEB` with reals 1..=weights.len() (198.18.1.id, weights
/// as given), `scheduler` with `flags`, and the row `slots` (the first
/// `row_len` of them in use).
pub(super) fn service(
    lb: &mut Lb,
    scheduler: Scheduler,
    flags: u8,
    weights: &[u32],
    slots: &[u32],
) {
    service_on(lb, WEB, 1, scheduler, flags, weights, slots, 1);
}

#[allow(clippy::too_many_arguments)]
pub(super) fn service_on(
    lb: &mut Lb,
    vip: &str,
    service_id: u32,
    scheduler: Scheduler,
    flags: u8,
    weights: &[u32],
    slots: &[u32],
    first_real: u32,
) {
    lb.service(vip, proto::TCP, service_id);
    for (id, &weight) in (first_real..).zip(weights) {
        let mut entry = crate::harness::real(id, service_id, ip(&format!("198.18.1.{id}")));
        entry.weight = weight;
        lb.set_real(id, entry);
    }
    let row_len = if slots.len() == MAGLEV_TABLE_SIZE as usize {
        MAGLEV_TABLE_SIZE
    } else {
        slots.len() as u32
    };
    lb.set_row(service_id, slots);
    lb.configure_service(vip, proto::TCP, |service| {
        service.scheduler = scheduler as u8;
        service.sched_flags = flags;
        service.row_len = row_len;
    });
}

/// Every slot of a 13-slot row: reals 1, 2, 3, 1, 2, 3, ...
fn three_real_row() -> Vec<u32> {
    (0..MAGLEV_TABLE_SIZE).map(|slot| 1 + slot % 3).collect()
}

/// The web service on three equal reals (ids 1-3) laid out by
/// [`three_real_row`]; returns the row.
pub(super) fn three_reals(lb: &mut Lb, scheduler: Scheduler, flags: u8) -> Vec<u32> {
    let row = three_real_row();
    service(lb, scheduler, flags, &[1, 1, 1], &row);
    row
}

/// A new connection forwarded to `real_id`.
pub(super) fn new_to(lb: &Lb, name: impl Into<String>, packet: &Packet, real_id: u32) -> Case {
    Case::tx(name, packet, lb.real(real_id)).counts(FlowNew)
}

pub(super) fn set_flags(lb: &mut Lb, real_id: u32, set: u8, clear: u8) {
    let mut entry = *lb.real(real_id);
    entry.flags = (entry.flags | set) & !clear;
    lb.set_real(real_id, entry);
}

pub(super) fn set_weight(lb: &mut Lb, real_id: u32, weight: u32) {
    let mut entry = *lb.real(real_id);
    entry.weight = weight;
    lb.set_real(real_id, entry);
}

pub(super) fn row_reals(weights: &[u32]) -> Vec<RowReal> {
    (1..)
        .zip(weights)
        .map(|(id, &weight)| RowReal {
            id,
            identity: lb_userspace::config::identity::identity_bytes(
                ip(&format!("198.18.1.{id}")),
                0,
            ),
            weight,
        })
        .collect()
}

/// The real a 13-slot `row` holds at `hash`'s slot.
pub(super) fn at(row: &[u32], hash: u32) -> u32 {
    row[(hash % MAGLEV_TABLE_SIZE) as usize]
}

pub(super) fn client_addr(text: &str) -> Addr {
    Addr::from(ip(text))
}
