//! A real `redis-server` on 127.0.0.1, a free port and a temp dir; killed
//! on drop. If the binary is missing the test fails, loudly: `.ci/run`
//! installs the Debian package `redis-server`.

use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};

use super::{eventually, TempDir, PATIENCE};

pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

impl RedisServer {
    pub fn start() -> Self {
        let mut server = Self {
            child: None,
            port: free_port(),
            dir: TempDir::new("redis"),
        };
        server.restart();
        server
    }

    /// Starts (again) on the same port, with an empty data set.
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start redis-server ({e}): these tests need a real one \
                     (Debian: apt-get install -y redis-server; .ci/run does it)"
                )
            });
        self.child = Some(child);
        let up = eventually(PATIENCE, || {
            self.cli(&["PING"])
                .is_some_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "PONG")
        });
        assert!(up, "redis-server on port {} did not answer PING", self.port);
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `kill -9`, and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP: the server keeps its socket open and answers nothing.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT.
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.pid().expect("redis-server running");
        let ok = Command::new("kill")
            .args([sig, &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} {pid}");
    }

    /// `redis-cli -p PORT args…` (None if it cannot run).
    pub fn cli(&self, args: &[&str]) -> Option<Output> {
        Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .ok()
    }

    /// `GET key`, raw bytes (redis-cli --raw adds a trailing newline).
    pub fn get(&self, key: &str) -> Vec<u8> {
        let mut out = self.cli(&["--raw", "GET", key]).expect("redis-cli").stdout;
        if out.last() == Some(&b'\n') {
            out.pop();
        }
        out
    }

    /// `SET key <value>` with the value from stdin (binary safe).
    pub fn set(&self, key: &str, value: &[u8]) {
        use std::io::Write;
        let mut child = Command::new("redis-cli")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-x",
                "SET",
                key,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("redis-cli");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(value)
            .expect("write to redis-cli");
        let out = child.wait_with_output().expect("redis-cli");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A paused server would not die of SIGKILL any slower, but
            // resume it so nothing lingers stopped.
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
        }
        self.kill();
    }
}
