//! The listening side: accepts root clients, reads request lines and hands
//! each to the daemon's main loop, which owns all state and answers them in
//! order.

use std::{
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result, bail};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader},
    net::{UnixListener, UnixStream},
    sync::{mpsc, oneshot},
};
use tracing::{debug, warn};

use super::{API_VERSION, Request, RequestLine, Response, ResponseLine};

/// A request waiting for the main loop, with where its answer goes.
pub type Pending = (Request, oneshot::Sender<Response>);

/// ipvsadm's words for a caller without privileges.
pub const NOT_ROOT: &str = "Permission denied (you must be root)";
/// A request line longer than this is refused (a restore of thousands of
/// services is still far below it).
const MAX_REQUEST_BYTES: usize = 16 << 20;

/// The bound socket; removes its path when dropped.
pub struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds `path` (mode 0600), replacing a stale socket a dead daemon left.
pub fn bind(path: &Path) -> Result<ControlSocket> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        bail!(
            "{} is in use: another lbd is running with this control socket",
            path.display()
        );
    }
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => {
            return Err(error).with_context(|| format!("removing the stale {}", path.display()));
        }
    }
    let listener = UnixListener::bind(path)
        .with_context(|| format!("binding the control socket {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("restricting {} to root", path.display()))?;
    Ok(ControlSocket {
        listener,
        path: path.to_owned(),
    })
}

/// Accepts connections until the task is dropped.
pub async fn serve(socket: ControlSocket, requests: mpsc::Sender<Pending>) {
    loop {
        match socket.listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(connection(stream, requests.clone()));
            }
            Err(error) => {
                warn!("control socket accept failed: {error}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn connection(stream: UnixStream, requests: mpsc::Sender<Pending>) {
    let is_root = stream.peer_cred().is_ok_and(|cred| cred.uid() == 0);
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mut line = String::new();
    loop {
        line.clear();
        match (&mut lines)
            .take(MAX_REQUEST_BYTES as u64 + 1)
            .read_line(&mut line)
            .await
        {
            Ok(0) => return,
            Ok(_) => {}
            Err(error) => {
                debug!("control connection read failed: {error}");
                return;
            }
        }
        let response = if !is_root {
            Response::error(NOT_ROOT, 1)
        } else if line.len() > MAX_REQUEST_BYTES {
            Response::error(format!("request longer than {MAX_REQUEST_BYTES} bytes"), 1)
        } else {
            answer(&line, &requests).await
        };
        let mut text = match serde_json::to_string(&ResponseLine {
            api: API_VERSION,
            response,
        }) {
            Ok(text) => text,
            Err(error) => {
                warn!("cannot encode a control response: {error}");
                return;
            }
        };
        text.push('\n');
        if write.write_all(text.as_bytes()).await.is_err() || !is_root {
            return;
        }
    }
}

async fn answer(line: &str, requests: &mpsc::Sender<Pending>) -> Response {
    let request = match decode(line) {
        Ok(request) => request,
        Err(message) => return Response::error(message, 1),
    };
    let (reply, answer) = oneshot::channel();
    if requests.send((request, reply)).await.is_err() {
        return Response::error("lbd is shutting down", 1);
    }
    answer
        .await
        .unwrap_or_else(|_| Response::error("lbd dropped the request", 1))
}

fn decode(line: &str) -> Result<Request, String> {
    let value: serde_json::Value =
        serde_json::from_str(line).map_err(|error| format!("not a JSON request: {error}"))?;
    match value.get("api").and_then(serde_json::Value::as_u64) {
        Some(version) if version == u64::from(API_VERSION) => {}
        Some(version) => {
            return Err(format!(
                "control API version {version} is not supported; this lbd speaks {API_VERSION}"
            ));
        }
        None => return Err("a request needs `api` (the control API version)".to_owned()),
    }
    serde_json::from_value::<RequestLine>(value)
        .map(|line| line.request)
        .map_err(|error| format!("invalid request: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_need_the_supported_version() {
        assert_eq!(decode(r#"{"api": 1, "op": "status"}"#), Ok(Request::Status));
        assert!(
            decode(r#"{"api": 2, "op": "status"}"#)
                .unwrap_err()
                .contains("version 2 is not supported")
        );
        assert!(
            decode(r#"{"op": "status"}"#)
                .unwrap_err()
                .contains("needs `api`")
        );
        assert!(
            decode(r#"{"api": 1, "op": "format_disk"}"#)
                .unwrap_err()
                .starts_with("invalid request")
        );
    }
}
