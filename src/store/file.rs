//! A directory of snapshots, one file per source: the embedded default.
//!
//! - a save writes a temporary file in the same directory, syncs it, and
//!   renames it over the snapshot: a reader (another process included)
//!   sees the old file or the new one, never a torn one;
//! - a read takes at most `max_bytes + 1` bytes;
//! - the file name is the source id with every character outside
//!   `[A-Za-z0-9._-]` turned into `_`, a `-` and 16 hex digits of its
//!   SHA-256 (two ids never share a file), then `.snapshot`.
//!
//! No lock: processes sharing a directory share snapshots (warm starts,
//! fewer fetches), not a single flight.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_lc_rs::digest;

use super::{random_u64, Store, StoreError};

pub(crate) struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The file holding `source`'s snapshot.
    pub(crate) fn path(&self, source: &str) -> PathBuf {
        self.dir.join(file_name(source))
    }
}

pub(crate) fn file_name(source: &str) -> String {
    let readable: String = source
        .chars()
        .take(80)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let hash = digest::digest(&digest::SHA256, source.as_bytes());
    let short: String = hash.as_ref()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{readable}-{short}.snapshot")
}

fn io_error(path: &Path, e: std::io::Error) -> StoreError {
    StoreError(format!("{}: {e}", path.display()))
}

impl Store for FileStore {
    fn load(&self, source: &str, max_bytes: usize) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path(source);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(&path, e)),
        };
        let mut bytes = Vec::new();
        let cap = u64::try_from(max_bytes).unwrap_or(u64::MAX);
        file.take(cap.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| io_error(&path, e))?;
        Ok(Some(bytes))
    }

    fn save(&self, source: &str, bytes: &[u8], _ttl: Duration) -> Result<(), StoreError> {
        fs::create_dir_all(&self.dir).map_err(|e| io_error(&self.dir, e))?;
        let path = self.path(source);
        let n = random_u64();
        let temp = self.dir.join(format!(
            ".{}.{}.{n:016x}.tmp",
            file_name(source),
            std::process::id()
        ));
        let written = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            fs::rename(&temp, &path)
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(io_error(&path, e));
        }
        // The rename itself is durable once the directory is synced; best
        // effort (not every platform opens directories).
        if let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("directory {}", self.dir.display())
    }
}
