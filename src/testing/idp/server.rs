//! The test IdP's wire side: accept loop, one thread per connection, request
//! parsing, response writing. Every loop is bounded by a byte cap, a socket
//! timeout or the stop flag.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::routes::{Plan, Shared};
use super::{RecordedRequest, IO_TIMEOUT, MAX_CONNECTIONS, MAX_HEAD_BYTES};

/// Clones of live sockets, so `Drop` can shut them down and unblock their
/// threads. A connection removes its entry before closing, so the clone
/// never keeps a closed connection open.
#[derive(Default)]
pub(super) struct Registry {
    live: Mutex<HashMap<u64, TcpStream>>,
    next: Mutex<u64>,
}

impl Registry {
    fn add(&self, stream: &TcpStream) -> Option<u64> {
        let clone = stream.try_clone().ok()?;
        let id = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            *next += 1;
            *next
        };
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, clone);
        Some(id)
    }

    fn remove(&self, id: u64) {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    pub(super) fn shutdown_all(&self) {
        for stream in self.live.lock().unwrap_or_else(|e| e.into_inner()).values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// Accepts until the IdP stops, then joins every connection thread.
pub(super) fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    registry: Arc<Registry>,
    tls: Option<Arc<ServerConfig>>,
) {
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    while !shared.is_stopping() {
        let Ok((stream, _)) = listener.accept() else {
            // Out of descriptors or similar: do not spin.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        if shared.is_stopping() {
            break;
        }
        shared.count_connection();
        workers.retain(|w| !w.is_finished());
        if workers.len() >= MAX_CONNECTIONS {
            continue; // dropping `stream` closes it
        }
        let (shared, registry, tls) = (Arc::clone(&shared), Arc::clone(&registry), tls.clone());
        let spawned = std::thread::Builder::new()
            .name("test-idp-conn".to_owned())
            .spawn(move || serve(stream, &shared, &registry, tls));
        if let Ok(handle) = spawned {
            workers.push(handle);
        }
    }
    registry.shutdown_all();
    for worker in workers {
        let _ = worker.join();
    }
}

/// A connection, TLS or not.
enum Conn {
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
    Plain(TcpStream),
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Tls(s) => &s.sock,
            Conn::Plain(s) => s,
        }
    }

    /// Ends the response: TLS close_notify, then FIN.
    fn finish(&mut self) {
        if let Conn::Tls(s) = self {
            s.conn.send_close_notify();
            let _ = s.flush();
        }
        let _ = self.tcp().shutdown(Shutdown::Write);
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Tls(s) => s.read(buf),
            Conn::Plain(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Tls(s) => s.write(buf),
            Conn::Plain(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Tls(s) => s.flush(),
            Conn::Plain(s) => s.flush(),
        }
    }
}

fn serve(stream: TcpStream, shared: &Shared, registry: &Registry, tls: Option<Arc<ServerConfig>>) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_nodelay(true);
    let Some(id) = registry.add(&stream) else {
        return;
    };
    let conn = match tls {
        Some(config) => match ServerConnection::new(config) {
            Ok(c) => Some(Conn::Tls(Box::new(StreamOwned::new(c, stream)))),
            Err(_) => None,
        },
        None => Some(Conn::Plain(stream)),
    };
    if let Some(mut conn) = conn {
        let reset = respond(&mut conn, shared);
        // Remove the clone first: closing must close the socket.
        registry.remove(id);
        if reset {
            // SO_LINGER 0: closing sends RST instead of FIN.
            let _ = socket2::SockRef::from(conn.tcp()).set_linger(Some(Duration::ZERO));
        } else {
            conn.finish();
        }
        drop(conn);
    } else {
        registry.remove(id);
    }
}

/// Reads one request and answers it; returns whether to reset.
fn respond(conn: &mut Conn, shared: &Shared) -> bool {
    let Some(request) = read_head(conn) else {
        return false;
    };
    let target = request.target.clone();
    let head_only = request.method == "HEAD";
    match shared.plan(request) {
        Plan::Respond {
            status,
            headers,
            body,
        } => {
            let len = body.len().to_string();
            let body = if head_only || status == 304 {
                &[][..]
            } else {
                &body[..]
            };
            let length = (status != 304).then_some(len);
            if write_head(conn, status, &headers, length.as_deref()).is_ok()
                && conn.write_all(body).is_ok()
            {
                shared.count_body_bytes(&target, body.len());
            }
        }
        Plan::Drip {
            headers,
            body,
            interval,
        } => {
            if write_head(conn, 200, &headers, Some(&body.len().to_string())).is_ok() {
                for byte in body {
                    if conn.write_all(&[byte]).and_then(|()| conn.flush()).is_err() {
                        break;
                    }
                    shared.count_body_bytes(&target, 1);
                    if shared.pause(interval) {
                        break;
                    }
                }
            }
        }
        Plan::Truncated { headers, body } => {
            let declared = (body.len() + 100).to_string();
            if write_head(conn, 200, &headers, Some(&declared)).is_ok()
                && conn.write_all(&body).is_ok()
            {
                shared.count_body_bytes(&target, body.len());
            }
        }
        Plan::Oversize { bytes, declared } => {
            let headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
            let len = bytes.to_string();
            if write_head(conn, 200, &headers, declared.then_some(len.as_str())).is_ok() {
                stream_padding(conn, shared, &target, bytes);
            }
        }
        Plan::Hang(d) => {
            shared.pause(d);
        }
        Plan::Reset => return true,
    }
    let _ = conn.flush();
    false
}

/// Writes `{"keys":[],"pad":"xxx…"}` of exactly `bytes` bytes (at least the
/// 20 bytes of its frame), in chunks, until done or the peer goes away.
fn stream_padding(conn: &mut Conn, shared: &Shared, target: &str, bytes: usize) {
    const OPEN: &[u8] = br#"{"keys":[],"pad":""#;
    const CLOSE: &[u8] = br#""}"#;
    let pad = bytes.saturating_sub(OPEN.len() + CLOSE.len());
    if conn.write_all(OPEN).is_err() {
        return;
    }
    shared.count_body_bytes(target, OPEN.len());
    let chunk = [b'x'; 16 * 1024];
    let mut left = pad;
    while left > 0 && !shared.is_stopping() {
        let n = left.min(chunk.len());
        if conn.write_all(&chunk[..n]).is_err() {
            return;
        }
        shared.count_body_bytes(target, n);
        left -= n;
    }
    if conn.write_all(CLOSE).is_ok() {
        shared.count_body_bytes(target, CLOSE.len());
    }
}

fn write_head(
    conn: &mut Conn,
    status: u16,
    headers: &[(String, String)],
    content_length: Option<&str>,
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(len) = content_length {
        head.push_str(&format!("Content-Length: {len}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    conn.write_all(head.as_bytes())?;
    conn.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Reads a request line and headers (at most [`MAX_HEAD_BYTES`]); `None`
/// when the client goes away, times out or sends garbage.
fn read_head(conn: &mut Conn) -> Option<RecordedRequest> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() >= MAX_HEAD_BYTES {
            return None;
        }
        let n = conn.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, target) = (first.next()?.to_owned(), first.next()?.to_owned());
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Some(RecordedRequest {
        method,
        target,
        headers,
    })
}
