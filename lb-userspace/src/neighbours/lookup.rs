//! Route lookups in bulk: many `RTM_GETROUTE` requests per datagram.
//!
//! The kernel handles every message of a datagram it is sent in turn, and
//! answers each with a datagram of its own, so a batch of requests costs
//! one `send` and the reads of its replies. Through rtnetlink's handle each
//! lookup is a request future, a trip through the connection task and a
//! syscall of its own: for 65,536 reals that was about three quarters of
//! the lookup time; the kernel's own share is what remains.
//!
//! The answers are the kernel's, one lookup per address, exactly as before:
//! only the way they travel changes.

use std::{collections::HashMap, io, net::IpAddr, os::fd::AsRawFd as _, time::Duration};

use anyhow::{Context as _, Result, bail, ensure};
use netlink_packet_core::{NLM_F_REQUEST, NetlinkMessage, NetlinkPayload};
use netlink_packet_route::{RouteNetlinkMessage, route::RouteAttribute};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use rtnetlink::RouteMessageBuilder;

use super::route::{Route, Unresolved, ip_of};

/// Requests per datagram. Their replies wait in the socket's receive
/// buffer until read: each is a datagram of a few hundred bytes, charged
/// at its buffer's size (about 1 KiB once the kernel trims it, up to a
/// page and a half when it cannot).
const BATCH: usize = 128;

/// Room for a batch's replies even untrimmed ([`BATCH`] x 4.5 KiB), asked
/// past `rmem_max` where the caller may (lbd runs as root).
const RECEIVE_BUFFER: libc::c_int = 1 << 20;

/// A reply the kernel could not queue (the receive buffer overflowed) is
/// lost: the lookups then fail instead of waiting forever.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// Room for one reply datagram: one route message.
const REPLY_BUFFER: usize = 8192;

/// The kernel's route to each of `reals`, on a socket of the calling
/// thread (blocking).
pub(super) fn routes(reals: &[IpAddr]) -> Result<HashMap<IpAddr, Result<Route, Unresolved>>> {
    let socket = connect()?;
    let mut routes = HashMap::with_capacity(reals.len());
    let mut request = Vec::new();
    let mut reply = Vec::with_capacity(REPLY_BUFFER);
    for batch in reals.chunks(BATCH) {
        request.clear();
        for (sequence, &addr) in batch.iter().enumerate() {
            append_request(&mut request, addr, sequence as u32)?;
        }
        let sent = socket.send(&request, 0).context("sending route lookups")?;
        ensure!(
            sent == request.len(),
            "the kernel took {sent} of {} bytes",
            request.len()
        );
        let mut answers: Vec<Option<Result<Route, Unresolved>>> = Vec::new();
        answers.resize_with(batch.len(), || None);
        let mut pending = batch.len();
        while pending > 0 {
            reply.clear();
            socket
                .recv(&mut reply, 0)
                .context("reading route lookup replies")?;
            for message in datagram_messages(&reply)? {
                let (sequence, answer) = answer_of(message)?;
                let slot = answers
                    .get_mut(sequence as usize)
                    .with_context(|| format!("a route reply to request {sequence}, not sent"))?;
                ensure!(slot.is_none(), "two route replies to request {sequence}");
                *slot = Some(answer);
                pending -= 1;
            }
        }
        for (&addr, answer) in batch.iter().zip(answers) {
            routes.insert(addr, answer.expect("every request answered"));
        }
    }
    Ok(routes)
}

fn connect() -> Result<Socket> {
    let mut socket = Socket::new(NETLINK_ROUTE).context("opening an rtnetlink socket")?;
    socket.bind_auto().context("binding an rtnetlink socket")?;
    socket
        .connect(&SocketAddr::new(0, 0))
        .context("connecting an rtnetlink socket to the kernel")?;
    let timeout = libc::timeval {
        tv_sec: REPLY_TIMEOUT.as_secs() as libc::time_t,
        tv_usec: REPLY_TIMEOUT.subsec_micros() as libc::suseconds_t,
    };
    set_option(&socket, libc::SO_RCVTIMEO, &timeout).context("setting a receive timeout")?;
    // Without the privilege, the default buffer holds a batch of trimmed
    // replies, which is what the kernel nearly always sends.
    if set_option(&socket, libc::SO_RCVBUFFORCE, &RECEIVE_BUFFER).is_err() {
        set_option(&socket, libc::SO_RCVBUF, &RECEIVE_BUFFER)
            .context("setting the receive buffer")?;
    }
    Ok(socket)
}

/// A socket option at `SOL_SOCKET` level.
fn set_option<T>(socket: &Socket, option: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` is a valid `T` of the size passed; the options used
    // here take a `timeval` or an `int`, as the callers pass.
    let result = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            option,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Appends a lookup of `addr` (as a host route, like `ip route get`),
/// numbered `sequence`.
fn append_request(buffer: &mut Vec<u8>, addr: IpAddr, sequence: u32) -> Result<()> {
    let prefix = if addr.is_ipv4() { 32 } else { 128 };
    let route = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(addr, prefix)?
        .build();
    let mut message = NetlinkMessage::from(RouteNetlinkMessage::GetRoute(route));
    message.header.flags = NLM_F_REQUEST;
    message.header.sequence_number = sequence;
    message.finalize();
    let start = buffer.len();
    // Messages in a datagram start 4-byte aligned (NLMSG_ALIGN).
    buffer.resize(start + message.buffer_len().next_multiple_of(4), 0);
    message.serialize(&mut buffer[start..]);
    Ok(())
}

/// The netlink messages of one datagram.
fn datagram_messages(datagram: &[u8]) -> Result<Vec<&[u8]>> {
    let mut messages = Vec::new();
    let mut rest = datagram;
    while !rest.is_empty() {
        let length = rest
            .first_chunk::<4>()
            .map(|bytes| u32::from_ne_bytes(*bytes) as usize)
            .context("a truncated netlink header")?;
        ensure!(
            (16..=rest.len()).contains(&length),
            "a netlink message of {length} bytes in {} left of a datagram",
            rest.len()
        );
        messages.push(&rest[..length]);
        rest = &rest[length.next_multiple_of(4).min(rest.len())..];
    }
    Ok(messages)
}

/// Which request a reply answers, and its route: the output interface,
/// the gateway if any, and the preferred source.
fn answer_of(message: &[u8]) -> Result<(u32, Result<Route, Unresolved>)> {
    let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(message)
        .context("decoding a route lookup reply")?;
    let sequence = message.header.sequence_number;
    let route = match message.payload {
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewRoute(route)) => route,
        // ENETUNREACH and friends: no route.
        NetlinkPayload::Error(error) if error.code.is_some() => {
            return Ok((sequence, Err(Unresolved::NoRoute)));
        }
        other => bail!("an unexpected reply to a route lookup: {other:?}"),
    };
    let mut oif = None;
    let mut gateway = None;
    let mut source = None;
    for attribute in &route.attributes {
        match attribute {
            RouteAttribute::Oif(index) => oif = Some(*index),
            RouteAttribute::Gateway(address) => gateway = ip_of(address),
            RouteAttribute::PrefSource(address) => source = ip_of(address),
            _ => {}
        }
    }
    let route = oif
        .map(|ifindex| Route {
            ifindex,
            gateway,
            source,
        })
        .ok_or(Unresolved::NoRoute);
    Ok((sequence, route))
}
