//! Fleet nodes as real processes: the test binary runs itself again with
//! `JWKS_FLEET_NODE=1` and one test selected (`node_main` below), builds
//! a cache from the `NODE_*` variables, and answers commands on stdin:
//!
//! | command | answer |
//! |---|---|
//! | `stats` | `node:stats origin used warm locks waits timeouts errors saved generation rejected` |
//! | `refresh` | `node:ok` at once; a thread calls `refresh_now` |
//! | `refresh-sync` | `node:refreshed ok` or `node:refreshed <error>` after `refresh_now` |
//! | `refresh-loop N` | `node:ok` at once; later `node:looped <failures>` after N `refresh_now` |
//! | `flood MS` | `node:ok` at once; a thread looks up unknown kids for MS ms |
//! | `quit` | exits |

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use jwks_sync::{Fleet, JwksCache};

use super::PATIENCE;

const ENV: &str = "JWKS_FLEET_NODE";
/// The nodes' fleet key.
pub const SECRET: &[u8] = b"fleet test secret";

fn env_ms(name: &str) -> Option<Duration> {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
}

/// The node's side; returns at once in an ordinary test run.
pub fn node_main() {
    if std::env::var(ENV).is_err() {
        return;
    }
    let var = |name: &str| std::env::var(name).ok();
    let url = var("NODE_URL").expect("NODE_URL");
    let ca = std::fs::read(var("NODE_CA").expect("NODE_CA")).expect("CA file");
    let interval = env_ms("NODE_INTERVAL_MS").unwrap_or(Duration::from_secs(30));
    let cooldown = env_ms("NODE_COOLDOWN_MS").unwrap_or(Duration::from_secs(1));
    let mut builder = JwksCache::builder(url)
        .add_root_certificate_pem(ca)
        .interval(interval)
        .background_threshold(0.9)
        .use_cache_headers(false)
        .min_refresh_interval(interval.min(Duration::from_millis(500)))
        .unknown_kid_cooldown(cooldown);
    let fleet = match (var("NODE_REDIS"), var("NODE_DIR")) {
        #[cfg(feature = "redis")]
        (Some(url), _) => Some(Fleet::redis(url)),
        (_, Some(dir)) => Some(Fleet::directory(dir)),
        _ => None,
    };
    let fleet = fleet.map(|f| {
        let mut f = f
            .hmac_key(SECRET)
            .lock_ttl(env_ms("NODE_LOCK_TTL_MS").unwrap_or(Duration::from_secs(3)));
        if let Some(guard) = env_ms("NODE_GUARD_MS") {
            f = f.guard(guard);
        }
        f
    });
    if let Some(f) = &fleet {
        builder = builder.fleet(f.clone());
    }
    let cache = builder.build().expect("node settings");
    cache.wait_ready(PATIENCE).expect("node ready");
    let cache = std::sync::Arc::new(cache);
    let say = |line: String| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "node:{line}");
        let _ = out.flush();
    };
    say("ready".to_owned());
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let mut words = line.split_whitespace();
        match words.next() {
            Some("stats") => {
                let s = fleet.as_ref().map(Fleet::stats).unwrap_or_default();
                say(format!(
                    "stats {} {} {} {} {} {} {} {} {} {}",
                    s.origin_fetches,
                    s.snapshots_used,
                    s.warm_starts,
                    s.locks_taken,
                    s.lock_waits,
                    s.lock_timeouts,
                    s.store_errors,
                    s.snapshots_saved,
                    cache.snapshot().generation(),
                    s.rejected_total(),
                ));
            }
            Some("refresh") => {
                let cache = std::sync::Arc::clone(&cache);
                std::thread::spawn(move || {
                    let _ = cache.refresh_now();
                });
                say("ok".to_owned());
            }
            Some("refresh-sync") => {
                let outcome = match cache.refresh_now() {
                    Ok(()) => "ok".to_owned(),
                    Err(e) => e.to_string().replace('\n', " "),
                };
                say(format!("refreshed {outcome}"));
            }
            Some("refresh-loop") => {
                let n: u64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(10);
                let cache = std::sync::Arc::clone(&cache);
                std::thread::spawn(move || {
                    let failed = (0..n).filter(|_| cache.refresh_now().is_err()).count();
                    say(format!("looped {failed}"));
                });
                say("ok".to_owned());
            }
            Some("flood") => {
                let ms = words.next().and_then(|w| w.parse().ok()).unwrap_or(1000);
                let cache = std::sync::Arc::clone(&cache);
                std::thread::spawn(move || {
                    let end = Instant::now() + Duration::from_millis(ms);
                    let mut n = 0u64;
                    while Instant::now() < end {
                        n += 1;
                        let _ = cache.get(&format!("attacker-{}-{n}", std::process::id()));
                        std::thread::sleep(Duration::from_millis(5));
                    }
                });
                say("ok".to_owned());
            }
            _ => break,
        }
    }
    std::process::exit(0);
}

/// A node's counters, as printed by `stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeStats {
    pub origin: u64,
    pub used: u64,
    pub warm: u64,
    pub locks: u64,
    pub waits: u64,
    pub timeouts: u64,
    pub errors: u64,
    pub saved: u64,
    pub generation: u64,
    pub rejected: u64,
}

/// The parent's handle on a node; killed on drop.
pub struct Node {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl Node {
    /// Starts `test` (the name of the test calling `node_main`) of this
    /// binary as a node with `vars`, and waits until it is ready.
    pub fn start(test: &str, vars: &[(&str, String)]) -> Self {
        let exe = std::env::current_exe().expect("test binary path");
        let mut child = Command::new(exe)
            .args([test, "--exact", "--nocapture", "--test-threads=1"])
            .env(ENV, "1")
            .envs(vars.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn a node");
        let stdout = child.stdout.take().expect("node stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // libtest may have printed "test NAME ... " on this line.
                if let Some(at) = line.find("node:") {
                    if tx.send(line[at + 5..].to_owned()).is_err() {
                        break;
                    }
                }
            }
        });
        let stdin = child.stdin.take();
        let node = Self {
            child,
            stdin,
            lines,
        };
        node.expect("ready");
        node
    }

    /// Waits for the next answer starting with `prefix`; panics after
    /// `PATIENCE`.
    pub fn expect(&self, prefix: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => continue,
                Err(e) => panic!("node {}: no {prefix:?} answer ({e})", self.child.id()),
            }
        }
    }

    /// The next pending answer starting with `prefix`, without waiting
    /// (other pending answers are dropped).
    pub fn try_expect(&self, prefix: &str) -> Option<String> {
        while let Ok(line) = self.lines.try_recv() {
            if line.starts_with(prefix) {
                return Some(line);
            }
        }
        None
    }

    pub fn send(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().expect("node stdin");
        writeln!(stdin, "{command}").expect("write to node");
        stdin.flush().expect("flush node stdin");
    }

    pub fn stats(&mut self) -> NodeStats {
        self.send("stats");
        let line = self.expect("stats");
        let n: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map(|w| w.parse().expect("number"))
            .collect();
        NodeStats {
            origin: n[0],
            used: n[1],
            warm: n[2],
            locks: n[3],
            waits: n[4],
            timeouts: n[5],
            errors: n[6],
            saved: n[7],
            generation: n[8],
            rejected: n[9],
        }
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Asks the node to exit and reaps it.
    pub fn quit(mut self) {
        self.stdin.take();
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}
