//! Servers whose health the tests control: an HTTP health endpoint that
//! can answer well, badly, slowly, every other time or not at all, and
//! UDP and DNS responders for the datagram checkers.

use std::{
    io::{BufRead as _, BufReader, Write as _},
    net::{SocketAddr, TcpListener, TcpStream, UdpSocket},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use anyhow::{Context as _, Result};

use crate::netns::Netns;

/// How the health endpoint answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// 200 with body `ok`.
    Healthy,
    /// This status, body `ok`.
    Status(u16),
    /// 200 with this body.
    Body(String),
    /// 200 `ok` after this long.
    Slow(Duration),
    /// Alternately 200 and 503, starting with 200.
    EveryOther,
}

/// An HTTP health endpoint on `[::]:port` in a namespace. `kill` closes the
/// listening socket (probes are refused); `restart` opens it again.
pub struct HealthEndpoint {
    port: u16,
    answer: Arc<Mutex<Answer>>,
    requests: Arc<AtomicU64>,
    listener: Option<(TcpListener, JoinHandle<()>)>,
}

impl HealthEndpoint {
    pub fn start(netns: &Netns, port: u16) -> Result<Self> {
        let mut endpoint = Self {
            port,
            answer: Arc::new(Mutex::new(Answer::Healthy)),
            requests: Arc::new(AtomicU64::new(0)),
            listener: None,
        };
        endpoint.listen(netns)?;
        Ok(endpoint)
    }

    fn listen(&mut self, netns: &Netns) -> Result<()> {
        let port = self.port;
        let listener = netns.enter(|| {
            let socket = socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::STREAM, None)?;
            // Restarted at once on the same port: TIME_WAIT must not stop it.
            socket.set_reuse_address(true)?;
            socket.set_only_v6(false)?;
            socket.bind(&SocketAddr::from(([0u16; 8], port)).into())?;
            socket.listen(128)?;
            Ok(TcpListener::from(socket))
        })?;
        let accept_from = listener.try_clone()?;
        let (answer, requests) = (self.answer.clone(), self.requests.clone());
        let thread = std::thread::spawn(move || {
            for stream in accept_from.incoming() {
                let Ok(stream) = stream else { break };
                let n = requests.fetch_add(1, Ordering::Relaxed);
                let answer = answer.lock().map(|a| a.clone()).unwrap_or(Answer::Healthy);
                std::thread::spawn(move || respond(stream, &answer, n));
            }
        });
        self.listener = Some((listener, thread));
        Ok(())
    }

    pub fn set(&self, answer: Answer) {
        if let Ok(mut current) = self.answer.lock() {
            *current = answer;
        }
    }

    /// Requests seen so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Stops listening: new probes are refused.
    pub fn kill(&mut self) {
        if let Some((listener, thread)) = self.listener.take() {
            stop(&listener, thread);
        }
    }

    /// Listens again (in the namespace it started in).
    pub fn restart(&mut self, netns: &Netns) -> Result<()> {
        anyhow::ensure!(self.listener.is_none(), "the endpoint is running");
        self.listen(netns)
    }
}

impl Drop for HealthEndpoint {
    fn drop(&mut self) {
        self.kill();
    }
}

fn stop(socket: &impl std::os::fd::AsRawFd, thread: JoinHandle<()>) {
    // SAFETY: the fd belongs to `socket`, which outlives this call.
    unsafe { libc::shutdown(socket.as_raw_fd(), libc::SHUT_RDWR) };
    let _ = thread.join();
}

fn respond(mut stream: TcpStream, answer: &Answer, n: u64) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(3)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    while reader.read_line(&mut line)? > 0 && line != "\r\n" {
        line.clear();
    }
    let (status, body) = match answer {
        Answer::Healthy => (200, "ok".to_owned()),
        Answer::Status(status) => (*status, "ok".to_owned()),
        Answer::Body(body) => (200, body.clone()),
        Answer::Slow(delay) => {
            std::thread::sleep(*delay);
            (200, "ok".to_owned())
        }
        Answer::EveryOther if n.is_multiple_of(2) => (200, "ok".to_owned()),
        Answer::EveryOther => (503, "ok".to_owned()),
    };
    write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    stream.flush()
}

/// A UDP responder answering every datagram with the current `reply`.
pub struct UdpResponder {
    socket: UdpSocket,
    reply: Arc<Mutex<Vec<u8>>>,
    thread: Option<JoinHandle<()>>,
}

impl UdpResponder {
    /// `answer` builds the reply to a request from the current setting.
    fn start(
        netns: &Netns,
        port: u16,
        initial: Vec<u8>,
        answer: fn(&[u8], &[u8]) -> Vec<u8>,
    ) -> Result<Self> {
        let socket = netns.enter(|| {
            UdpSocket::bind(SocketAddr::from(([0u16; 8], port)))
                .with_context(|| format!("binding UDP [::]:{port}"))
        })?;
        let receiver = socket.try_clone()?;
        let reply = Arc::new(Mutex::new(initial));
        let setting = reply.clone();
        let thread = std::thread::spawn(move || {
            let mut buffer = [0u8; 2048];
            while let Ok((n, peer)) = receiver.recv_from(&mut buffer) {
                if n == 0 {
                    break;
                }
                let current = setting.lock().map(|r| r.clone()).unwrap_or_default();
                let _ = receiver.send_to(&answer(&buffer[..n], &current), peer);
            }
        });
        Ok(Self {
            socket,
            reply,
            thread: Some(thread),
        })
    }

    /// Answers every datagram with `reply`.
    pub fn text(netns: &Netns, port: u16, reply: &str) -> Result<Self> {
        Self::start(netns, port, reply.as_bytes().to_vec(), |_, reply| {
            reply.to_vec()
        })
    }

    /// A DNS server answering every query for an A record with
    /// `198.18.9.9`, with the response code in the setting (0 = NOERROR).
    pub fn dns(netns: &Netns, port: u16) -> Result<Self> {
        Self::start(netns, port, vec![0], dns_answer)
    }

    pub fn set_text(&self, reply: &str) {
        if let Ok(mut current) = self.reply.lock() {
            *current = reply.as_bytes().to_vec();
        }
    }

    /// For a DNS responder: the response code to answer with.
    pub fn set_dns_rcode(&self, rcode: u8) {
        if let Ok(mut current) = self.reply.lock() {
            *current = vec![rcode];
        }
    }
}

impl Drop for UdpResponder {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            stop(&self.socket, thread);
        }
    }
}

fn dns_answer(request: &[u8], setting: &[u8]) -> Vec<u8> {
    use hickory_proto::{
        op::{Message, ResponseCode},
        rr::{RData, Record, rdata::A},
    };
    let Ok(query) = Message::from_vec(request) else {
        return Vec::new();
    };
    let rcode = setting.first().copied().unwrap_or(0);
    let mut response = Message::error_msg(
        query.metadata.id,
        query.metadata.op_code,
        ResponseCode::from_low(rcode),
    );
    response.metadata.recursion_desired = query.metadata.recursion_desired;
    response.add_queries(query.queries.iter().cloned());
    if rcode == 0
        && let Some(question) = query.queries.first()
    {
        response.add_answer(Record::from_rdata(
            question.name().clone(),
            60,
            RData::A(A::new(198, 18, 9, 9)),
        ));
    }
    response.to_vec().unwrap_or_default()
}
