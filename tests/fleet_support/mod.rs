//! Shared by the fleet and store tests: a real `redis-server` per test, and
//! fleet nodes as real processes (this test binary, re-executed).
#![allow(dead_code)]

pub mod node;
pub mod redis;

use std::path::PathBuf;
use std::time::Duration;

/// A generous bound for waits that should finish in well under a second.
pub const PATIENCE: Duration = Duration::from_secs(20);

#[path = "../common/mod.rs"]
mod common;
pub use common::eventually;

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!("jwks-sync-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).expect("temp dir");
        Self(path)
    }

    /// The one `*.snapshot` file in the directory, if any.
    pub fn snapshot_file(&self) -> Option<PathBuf> {
        std::fs::read_dir(&self.0)
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "snapshot"))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
