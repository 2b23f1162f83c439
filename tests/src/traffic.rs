//! Servers and clients made of plain sockets created inside namespaces.

use std::{
    collections::BTreeMap,
    io::{BufRead as _, BufReader, Read as _, Write as _},
    net::{Shutdown, SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::netns::Netns;

const IO_TIMEOUT: Duration = Duration::from_secs(3);

/// A listening server; its accept loop ends when this is dropped.
pub struct Server {
    listener: TcpListener,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        stop_serving(&self.listener, self.thread.take());
    }
}

/// Wakes a thread blocked in accept()/recv() on `socket` with an error,
/// which ends its loop, and waits for it.
fn stop_serving(socket: &impl std::os::fd::AsRawFd, thread: Option<JoinHandle<()>>) {
    // SAFETY: the fd belongs to `socket`, which outlives this call.
    unsafe { libc::shutdown(socket.as_raw_fd(), libc::SHUT_RDWR) };
    if let Some(thread) = thread {
        let _ = thread.join();
    }
}

/// What a server does with each accepted connection.
#[derive(Clone, Copy)]
pub enum Behaviour {
    /// Answers one HTTP/1.0 request with `name` as the body.
    Http,
    /// Sends `name` and a newline, then echoes everything back.
    Echo,
}

/// Listens on `[::]:port` (IPv4 and IPv6) inside `netns`.
pub fn serve(netns: &Netns, port: u16, name: &str, behaviour: Behaviour) -> Result<Server> {
    let listener = netns.enter(|| {
        TcpListener::bind(SocketAddr::from(([0u16; 8], port)))
            .with_context(|| format!("binding [::]:{port}"))
    })?;
    let accept_from = listener.try_clone()?;
    let name = name.to_owned();
    let thread = std::thread::spawn(move || {
        for stream in accept_from.incoming() {
            let Ok(stream) = stream else { break };
            let name = name.clone();
            std::thread::spawn(move || {
                let _ = match behaviour {
                    Behaviour::Http => answer_http(stream, &name),
                    Behaviour::Echo => echo(stream, &name),
                };
            });
        }
    });
    Ok(Server {
        listener,
        thread: Some(thread),
    })
}

fn answer_http(mut stream: TcpStream, name: &str) -> std::io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    // Read the request head up to its blank line.
    while reader.read_line(&mut line)? > 0 && line != "\r\n" {
        line.clear();
    }
    let body = format!("{name}\n");
    write!(
        stream,
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

fn echo(mut stream: TcpStream, name: &str) -> std::io::Result<()> {
    writeln!(stream, "{name}")?;
    let mut buffer = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut buffer)?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buffer[..n])?;
    }
}

/// One HTTP GET; returns the body's first line (the server's name).
pub fn http_get(target: SocketAddr) -> Result<String> {
    read_http_response(connect(target)?, target)
}

fn connect(target: SocketAddr) -> Result<TcpStream> {
    TcpStream::connect_timeout(&target, IO_TIMEOUT)
        .with_context(|| format!("connecting to {target}"))
}

/// The wildcard address of `target`'s family, with `port`.
fn any_address_like(target: SocketAddr, port: u16) -> SocketAddr {
    match target {
        SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, port).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, port).into(),
    }
}

/// Asks once per item, inside `netns`; how many times each server answered.
fn tally<I>(
    netns: &Netns,
    items: I,
    ask: impl Fn(I::Item) -> Result<String> + Sync,
) -> Result<BTreeMap<String, usize>>
where
    I: IntoIterator + Send,
{
    netns.enter(|| {
        let mut answered = BTreeMap::new();
        for item in items {
            *answered.entry(ask(item)?).or_insert(0) += 1;
        }
        Ok(answered)
    })
}

/// An HTTP GET from a chosen source port: the 5-tuple, and so the Maglev
/// decision, is then the same on every run.
pub fn http_get_from_port(target: SocketAddr, source_port: u16) -> Result<String> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(target), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&any_address_like(target, source_port).into())?;
    socket
        .connect_timeout(&target.into(), IO_TIMEOUT)
        .with_context(|| format!("connecting to {target} from port {source_port}"))?;
    read_http_response(socket.into(), target)
}

fn read_http_response(mut stream: TcpStream, target: SocketAddr) -> Result<String> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    write!(stream, "GET / HTTP/1.0\r\nHost: {target}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let Some((head, body)) = response.split_once("\r\n\r\n") else {
        bail!("malformed response from {target}: {response:?}");
    };
    if !head.starts_with("HTTP/1.0 200") {
        bail!("unexpected status from {target}: {head}");
    }
    Ok(body.trim().to_owned())
}

/// `count` HTTP GETs from inside `netns`, each on a new connection (so a
/// new source port and a new Maglev decision); how many each server answered.
pub fn http_get_many(
    netns: &Netns,
    target: SocketAddr,
    count: usize,
) -> Result<BTreeMap<String, usize>> {
    tally(netns, 0..count, |_| http_get(target))
}

/// One GET from each source port in `ports`; how many each server answered.
pub fn http_get_from_ports(
    netns: &Netns,
    target: SocketAddr,
    ports: std::ops::Range<u16>,
) -> Result<BTreeMap<String, usize>> {
    tally(netns, ports, |port| http_get_from_port(target, port))
}

/// A long-lived connection that keeps sending and checks that the echo keeps
/// coming back: both directions must keep flowing through the balancer.
pub struct EchoStream {
    pub server: String,
    stop: Arc<AtomicBool>,
    echoed: Arc<AtomicU64>,
    thread: Option<JoinHandle<Result<StreamReport>>>,
}

#[derive(Debug)]
pub struct StreamReport {
    pub bytes_echoed: u64,
    /// The longest time without any echoed byte arriving.
    pub longest_stall: Duration,
}

const CHUNK: usize = 1024;
const CHUNK_INTERVAL: Duration = Duration::from_millis(5);

impl EchoStream {
    pub fn open(netns: &Netns, target: SocketAddr) -> Result<Self> {
        let stream = netns.enter(|| connect(target))?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut server = String::new();
        reader.read_line(&mut server)?;
        let stop = Arc::new(AtomicBool::new(false));
        let echoed = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, echoed) = (stop.clone(), echoed.clone());
            std::thread::spawn(move || pump(stream, reader, &stop, &echoed))
        };
        Ok(Self {
            server: server.trim().to_owned(),
            stop,
            echoed,
            thread: Some(thread),
        })
    }

    pub fn bytes_echoed(&self) -> u64 {
        self.echoed.load(Ordering::Relaxed)
    }

    /// Waits until at least `bytes` more have come back, or fails.
    pub fn expect_progress(&self, bytes: u64, within: Duration) -> Result<()> {
        let start = self.bytes_echoed();
        let deadline = Instant::now() + within;
        while self.bytes_echoed() < start + bytes {
            if Instant::now() > deadline || self.thread.as_ref().is_none_or(|t| t.is_finished()) {
                bail!(
                    "the stream to {} stalled: {} of {bytes} bytes echoed in {within:?}",
                    self.server,
                    self.bytes_echoed() - start
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Stops sending and reports; fails if the connection broke.
    pub fn finish(mut self) -> Result<StreamReport> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .expect("finish consumes the stream")
            .join()
            .map_err(|_| anyhow::anyhow!("stream thread panicked"))?
    }
}

fn pump(
    stream: TcpStream,
    mut reader: BufReader<TcpStream>,
    stop: &AtomicBool,
    echoed: &AtomicU64,
) -> Result<StreamReport> {
    let mut writer = stream.try_clone()?;
    let chunk = [0x5au8; CHUNK];
    let mut sent = 0u64;
    let mut received = 0u64;
    let mut buffer = [0u8; 64 * 1024];
    let mut last_progress = Instant::now();
    let mut longest_stall = Duration::ZERO;
    while !stop.load(Ordering::Relaxed) {
        writer
            .write_all(&chunk)
            .context("sending on the long-lived stream")?;
        sent += CHUNK as u64;
        // Read whatever has come back, without letting the window fill up.
        while received + (16 * CHUNK as u64) < sent {
            let n = reader.read(&mut buffer).context("reading the echo")?;
            if n == 0 {
                bail!("the server closed the long-lived stream");
            }
            received += n as u64;
            echoed.store(received, Ordering::Relaxed);
            longest_stall = longest_stall.max(last_progress.elapsed());
            last_progress = Instant::now();
        }
        std::thread::sleep(CHUNK_INTERVAL);
    }
    stream.shutdown(Shutdown::Write)?;
    loop {
        let n = reader.read(&mut buffer).context("draining the echo")?;
        if n == 0 {
            break;
        }
        received += n as u64;
    }
    if received != sent {
        bail!("sent {sent} bytes but {received} came back");
    }
    echoed.store(received, Ordering::Relaxed);
    Ok(StreamReport {
        bytes_echoed: received,
        longest_stall,
    })
}

/// A UDP server answering every datagram with its name; it ends when
/// dropped. Bind it to the VIP (on `lo`) for DR/TUN, where the reply must
/// come from the VIP, and to the wildcard for NAT, where the balancer
/// rewrites the real's address.
pub struct UdpServer {
    socket: std::net::UdpSocket,
    thread: Option<JoinHandle<()>>,
}

impl Drop for UdpServer {
    fn drop(&mut self) {
        stop_serving(&self.socket, self.thread.take());
    }
}

pub fn serve_udp(netns: &Netns, address: SocketAddr, name: &str) -> Result<UdpServer> {
    let socket = netns.enter(|| {
        // An address added a moment ago can still be settling (IPv6).
        let mut attempts = 0;
        loop {
            match std::net::UdpSocket::bind(address) {
                Ok(socket) => return Ok(socket),
                Err(error)
                    if error.kind() == std::io::ErrorKind::AddrNotAvailable && attempts < 50 =>
                {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(error) => return Err(error).with_context(|| format!("binding UDP {address}")),
            }
        }
    })?;
    let receiver = socket.try_clone()?;
    let name = name.to_owned();
    let thread = std::thread::spawn(move || {
        let mut buffer = [0u8; 2048];
        while let Ok((n, peer)) = receiver.recv_from(&mut buffer) {
            if n == 0 {
                break;
            }
            let _ = receiver.send_to(name.as_bytes(), peer);
        }
    });
    Ok(UdpServer {
        socket,
        thread: Some(thread),
    })
}

/// One request per source port in `ports`, each from a fresh socket; how
/// many each server answered. The reply must come from `target` itself.
pub fn udp_ask_from_ports(
    netns: &Netns,
    target: SocketAddr,
    ports: std::ops::Range<u16>,
) -> Result<BTreeMap<String, usize>> {
    tally(netns, ports, |port| udp_ask_from_port(target, port))
}

fn udp_ask_from_port(target: SocketAddr, port: u16) -> Result<String> {
    let socket = std::net::UdpSocket::bind(any_address_like(target, port))?;
    // connect(): replies from any other address are filtered out.
    socket.connect(target)?;
    socket.set_read_timeout(Some(Duration::from_millis(500)))?;
    let mut buffer = [0u8; 256];
    for _ in 0..4 {
        socket.send(b"who are you?")?;
        if let Ok(n) = socket.recv(&mut buffer) {
            return Ok(String::from_utf8_lossy(&buffer[..n]).into_owned());
        }
    }
    bail!("no UDP answer from {target} to port {port}")
}

/// Sends `bytes` of a deterministic pseudo-random pattern to an echo
/// server through `target` and checks every byte that comes back.
pub fn bulk_echo(netns: &Netns, target: SocketAddr, bytes: usize) -> Result<()> {
    let stream = netns.enter(|| connect(target))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut greeting = String::new();
    reader.read_line(&mut greeting)?;
    let pattern: Vec<u8> = (0..bytes as u64)
        .map(|i| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8)
        .collect();
    let mut writer = stream.try_clone()?;
    let to_send = pattern.clone();
    let sender = std::thread::spawn(move || -> std::io::Result<()> {
        writer.write_all(&to_send)?;
        writer.shutdown(Shutdown::Write)
    });
    let mut received = Vec::with_capacity(bytes);
    reader
        .read_to_end(&mut received)
        .with_context(|| format!("reading the echo after {} of {bytes} bytes", received.len()))?;
    sender
        .join()
        .map_err(|_| anyhow::anyhow!("sender panicked"))?
        .context("sending the bulk data")?;
    if received != pattern {
        let first_difference = received
            .iter()
            .zip(&pattern)
            .position(|(a, b)| a != b)
            .unwrap_or(received.len().min(pattern.len()));
        bail!(
            "bulk transfer through {target} not byte-exact: got {} of {bytes} bytes, first difference at {first_difference}",
            received.len()
        );
    }
    Ok(())
}
