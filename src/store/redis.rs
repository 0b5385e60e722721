//! Redis: snapshots, a change counter and the fleet lock (feature `redis`).
//! The only file naming the `redis` crate; synchronous, no async runtime.
//!
//! ## Keys (for `<prefix>` = `jwks-sync:` and a source id `<id>`)
//!
//! | key | value |
//! |---|---|
//! | `<prefix><id>:snapshot` | the snapshot (`store/snapshot.rs`), expiring at its hard expiry |
//! | `<prefix><id>:version` | a counter bumped with every snapshot, in the same `MULTI` |
//! | `<prefix><id>:lock` | the fleet lock: a random token, `SET NX PX <lock ttl>` |
//!
//! The lock is released by a compare-and-delete script, so a holder whose
//! lock expired never deletes its successor's.
//!
//! Every call has the connect, read and write timeout given at open; any
//! failure drops the connection (the next call reconnects) and is returned
//! as a `StoreError`, never a panic.

use std::time::Duration;

use redis::{Client, Connection, RedisError};

use super::{Lock, Store, StoreError};
use crate::sync::Mutex;

const UNLOCK: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

pub(crate) struct RedisStore {
    client: Client,
    prefix: String,
    timeout: Duration,
    /// The connection, reopened after any failure.
    conn: Mutex<Option<Connection>>,
    described: String,
}

fn err(e: RedisError) -> StoreError {
    StoreError(format!("redis: {e}"))
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl RedisStore {
    /// Checks the URL; connects on first use.
    pub(crate) fn open(url: &str, prefix: &str, timeout: Duration) -> Result<Self, StoreError> {
        let client = Client::open(url).map_err(err)?;
        let info = client.get_connection_info();
        let described = format!("redis {}", info.addr());
        Ok(Self {
            client,
            prefix: prefix.to_owned(),
            timeout,
            conn: Mutex::new(None),
            described,
        })
    }

    fn key(&self, source: &str, what: &str) -> String {
        format!("{}{source}:{what}", self.prefix)
    }

    /// Runs `f` on the connection (opened if needed); drops it on failure.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, RedisError>,
    ) -> Result<T, StoreError> {
        let mut slot = self.conn.lock();
        if slot.is_none() {
            let conn = self
                .client
                .get_connection_with_timeout(self.timeout)
                .map_err(err)?;
            conn.set_read_timeout(Some(self.timeout)).map_err(err)?;
            conn.set_write_timeout(Some(self.timeout)).map_err(err)?;
            *slot = Some(conn);
        }
        let Some(conn) = slot.as_mut() else {
            return Err(StoreError("redis: no connection".to_owned()));
        };
        let result = f(conn);
        if result.is_err() {
            *slot = None;
        }
        result.map_err(err)
    }
}

impl Store for RedisStore {
    fn load(&self, source: &str, max_bytes: usize) -> Result<Option<Vec<u8>>, StoreError> {
        let key = self.key(source, "snapshot");
        // GETRANGE caps the reply at max_bytes + 1 bytes; a missing key
        // reads as empty.
        let bytes: Vec<u8> = self.with(|c| {
            redis::cmd("GETRANGE")
                .arg(&key)
                .arg(0)
                .arg(max_bytes)
                .query(c)
        })?;
        Ok((!bytes.is_empty()).then_some(bytes))
    }

    fn save(&self, source: &str, bytes: &[u8], ttl: Duration) -> Result<(), StoreError> {
        let (snapshot, version) = (self.key(source, "snapshot"), self.key(source, "version"));
        self.with(|c| {
            redis::pipe()
                .atomic()
                .cmd("SET")
                .arg(&snapshot)
                .arg(bytes)
                .arg("PX")
                .arg(ms(ttl))
                .ignore()
                .cmd("INCR")
                .arg(&version)
                .ignore()
                .query::<()>(c)
        })
    }

    fn version(&self, source: &str) -> Result<Option<u64>, StoreError> {
        let key = self.key(source, "version");
        self.with(|c| redis::cmd("GET").arg(&key).query::<Option<u64>>(c))
            .map(|v| Some(v.unwrap_or(0)))
    }

    fn try_lock(&self, source: &str, token: &str, ttl: Duration) -> Result<Lock, StoreError> {
        let key = self.key(source, "lock");
        let reply: Option<String> = self.with(|c| {
            redis::cmd("SET")
                .arg(&key)
                .arg(token)
                .arg("NX")
                .arg("PX")
                .arg(ms(ttl))
                .query(c)
        })?;
        match reply.as_deref() {
            Some("OK") => Ok(Lock::Taken),
            None => Ok(Lock::Busy),
            Some(other) => Err(StoreError(format!(
                "redis: unexpected reply to SET NX: {:?}",
                other.chars().take(40).collect::<String>()
            ))),
        }
    }

    fn unlock(&self, source: &str, token: &str) -> Result<(), StoreError> {
        let key = self.key(source, "lock");
        self.with(|c| {
            redis::cmd("EVAL")
                .arg(UNLOCK)
                .arg(1)
                .arg(&key)
                .arg(token)
                .query::<i64>(c)
        })
        .map(|_| ())
    }

    fn describe(&self) -> String {
        self.described.clone()
    }
}
