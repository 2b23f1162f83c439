//! Traffic from an AF_PACKET socket: frames go out of an interface as if
//! they came off the wire on the far end of its veth, so the XDP program
//! there runs in the driver's receive path (real traffic, unlike a test run).
//! One thread, `sendmmsg` in batches, the qdisc bypassed: about as fast as
//! trafgen, and each packet can be a new flow.

use std::{
    io,
    os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result};

use lb_tests::frames::make_new_flow;

const BATCH: usize = 64;

/// What the frames repeat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flows {
    /// The given frames round and round: after the first pass every
    /// packet belongs to a known flow.
    Known,
    /// Every packet a flow never seen before (the first frame's shape),
    /// numbered from `first` (see `frames::make_new_flow`).
    NewEachPacket { ipv6: bool, first: u64 },
}

impl Flows {
    /// The same flows for a blast that follows one of `sent` packets: new
    /// flows carry on where it stopped instead of repeating its flows.
    pub fn after(self, sent: u64) -> Self {
        match self {
            Self::Known => Self::Known,
            Self::NewEachPacket { ipv6, first } => Self::NewEachPacket {
                ipv6,
                first: first + sent,
            },
        }
    }
}

/// Sends `frames` out of `interface` (in the calling thread's network
/// namespace) for `duration`; returns how many were sent.
pub fn blast(interface: &str, frames: &[Vec<u8>], flows: Flows, duration: Duration) -> Result<u64> {
    anyhow::ensure!(!frames.is_empty(), "nothing to send");
    let socket = PacketSocket::bound_to(interface)?;
    let mut batch: Vec<Vec<u8>> = (0..BATCH)
        .map(|i| frames[i % frames.len()].clone())
        .collect();
    let mut sent: u64 = 0;
    let mut next_flow = match flows {
        Flows::Known => 0,
        Flows::NewEachPacket { first, .. } => first,
    };
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline {
        match flows {
            Flows::Known => {
                for (slot, frame) in batch.iter_mut().enumerate() {
                    let source = &frames[(sent as usize + slot) % frames.len()];
                    frame.copy_from_slice(source);
                }
            }
            Flows::NewEachPacket { ipv6, .. } => {
                for frame in &mut batch {
                    make_new_flow(frame, ipv6, next_flow);
                    next_flow += 1;
                }
            }
        }
        sent += socket.send_batch(&batch)? as u64;
    }
    Ok(sent)
}

struct PacketSocket {
    fd: OwnedFd,
}

impl PacketSocket {
    fn bound_to(interface: &str) -> Result<Self> {
        let ifindex = lb_userspace::dataplane::ifindex(interface)?;
        // SAFETY: plain socket(2); the fd is owned right away.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error()).context("AF_PACKET socket");
        }
        // SAFETY: a fresh fd nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let one: libc::c_int = 1;
        // SAFETY: a c_int option value of the right size. Bypassing the
        // qdisc: the generator measures the receiver, not tc.
        let status = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_QDISC_BYPASS,
                (&one as *const libc::c_int).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if status != 0 {
            return Err(io::Error::last_os_error()).context("PACKET_QDISC_BYPASS");
        }
        // SAFETY: zeroed sockaddr_ll is valid; we fill family and ifindex.
        let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        address.sll_family = libc::AF_PACKET as u16;
        address.sll_ifindex = ifindex as i32;
        // SAFETY: a sockaddr_ll of the right size.
        let status = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&address as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if status != 0 {
            return Err(io::Error::last_os_error())
                .with_context(|| format!("binding to {interface}"));
        }
        Ok(Self { fd })
    }

    /// Sends as many of `frames` as the kernel takes in one call.
    fn send_batch(&self, frames: &[Vec<u8>]) -> Result<usize> {
        let mut iovecs: Vec<libc::iovec> = frames
            .iter()
            .map(|frame| libc::iovec {
                iov_base: frame.as_ptr() as *mut libc::c_void,
                iov_len: frame.len(),
            })
            .collect();
        let mut messages: Vec<libc::mmsghdr> = iovecs
            .iter_mut()
            .map(|iovec| {
                // SAFETY: zeroed msghdr is valid; the socket is bound, so no
                // destination address is needed.
                let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
                header.msg_hdr.msg_iov = iovec;
                header.msg_hdr.msg_iovlen = 1;
                header
            })
            .collect();
        // SAFETY: every message points at a live iovec over a live frame.
        let sent = unsafe {
            libc::sendmmsg(
                self.fd.as_raw_fd(),
                messages.as_mut_ptr(),
                messages.len() as libc::c_uint,
                0,
            )
        };
        if sent < 0 {
            let error = io::Error::last_os_error();
            // A full veth ring: the receiver is behind, which is the point.
            if matches!(error.raw_os_error(), Some(libc::ENOBUFS | libc::EAGAIN)) {
                return Ok(0);
            }
            return Err(error).context("sendmmsg");
        }
        Ok(sent as usize)
    }
}
