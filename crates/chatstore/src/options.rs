//! Store options: durability, cache size and the endpoint rendering settings.

use serde_json::Value;
use time::UtcOffset;

use crate::backend::Backend;
use crate::error::{Error, Result};

/// When a write becomes durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// A write returns once applied in memory; a background flush makes it
    /// durable within `flush_every_ms`. A crash loses at most that window.
    Buffered {
        /// Background flush interval in milliseconds.
        flush_every_ms: u64,
    },
    /// A write returns only once durable. Concurrent writers share one
    /// flush (group commit).
    Sync,
}

/// How endpoint responses are rendered (CONTRACT §2, §7). Belongs to a
/// handle: two handles on one store may render differently.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RenderSettings {
    /// Prefix of media paths, e.g. `http://localhost:82` (no trailing slash
    /// needed; one is removed).
    pub media_base: String,
    /// `avatar_image` of members with an empty avatar.
    pub default_avatar: String,
    /// Offset in which `last_updated_at` is rendered.
    #[serde(with = "offset_seconds")]
    pub utc_offset: UtcOffset,
}

impl Default for RenderSettings {
    fn default() -> Self {
        RenderSettings {
            media_base: String::new(),
            default_avatar: String::new(),
            utc_offset: UtcOffset::from_hms(8, 0, 0).expect("valid offset"),
        }
    }
}

/// A `UtcOffset` on the wire: its whole seconds.
mod offset_seconds {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::UtcOffset;

    pub(super) fn serialize<S: Serializer>(o: &UtcOffset, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i32(o.whole_seconds())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<UtcOffset, D::Error> {
        UtcOffset::from_whole_seconds(i32::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl RenderSettings {
    /// Sets the offset from text such as `+08:00` or `-05:30`.
    pub fn set_utc_offset(&mut self, text: &str) -> Result<()> {
        self.utc_offset = parse_utc_offset(text)?;
        Ok(())
    }
}

/// Parses `+HH:MM` / `-HH:MM` (also `Z`).
pub fn parse_utc_offset(text: &str) -> Result<UtcOffset> {
    if text == "Z" || text == "z" {
        return Ok(UtcOffset::UTC);
    }
    let fmt = time::macros::format_description!("[offset_hour sign:mandatory]:[offset_minute]");
    UtcOffset::parse(text, &fmt)
        .map_err(|_| Error::invalid("utc_offset", format!("{text:?} is not of the form +08:00")))
}

/// Options for [`crate::Store::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Durability of writes.
    pub durability: Durability,
    /// sled's page cache in bytes (default 64 MiB; sled's own default of
    /// 1 GiB is far too large for an embedded store).
    pub cache_capacity: u64,
    /// Endpoint rendering settings.
    pub render: RenderSettings,
    /// Compress pages on disk with zstd (sled's `use_compression`; sled
    /// stores only, refused for LMDB). Fixed when a store is created; needs
    /// the crate feature `compression`.
    pub compression: bool,
    /// How long a store stays open in this process after its last handle
    /// closed (default 30 s). On LMDB the environment is kept, so a process
    /// that opens the store per request (a PHP-FPM worker) finds it open
    /// (about 2 µs instead of 100); on sled the process that owns the store
    /// keeps serving the others, counted from the last request. 0 releases
    /// the store as soon as nobody uses it (`chatstore compact` needs the
    /// store to itself: it waits for no linger and fails while one lasts).
    /// See ARCHITECTURE.md, "Many processes".
    pub linger_ms: u64,
    /// How long `Store::open` keeps trying to take the store or reach its
    /// owner before it fails with `Error::Locked` (default 10 s).
    pub attach_timeout_ms: u64,
    /// Whether a new store keeps the message-text index that answers
    /// `search_messages` (default true). Without it (medium scale,
    /// BENCHMARKS.md) a bulk import costs about a fifth, an append about a
    /// third and the disk about a quarter, and `search_messages` searches
    /// one session at a time (otherwise `Error::Conflict`). Fixed when a store is created; opening an
    /// existing store keeps the choice it was created with.
    pub text_index: bool,
    /// The engine a new store is made of (default LMDB, or what the
    /// environment variable `CHATSTORE_BACKEND` names: `lmdb` or `sled`;
    /// the test suites run once per backend that way). An existing store
    /// opens with the engine it was made with, whatever this says (its
    /// files say which: ARCHITECTURE.md, "Storage").
    pub backend: Backend,
    /// LMDB: the largest the store may grow, in bytes (default 256 GiB). The
    /// memory map starts at twice the file (at least 64 MiB) and doubles as
    /// the store grows, up to this. A write that would pass it fails naming
    /// this option and changes nothing.
    pub map_size: u64,
    /// Create a new store's directory and files for its group too (0770 and
    /// 0660 instead of 0700 and 0600), so that, say, a PHP-FPM pool running
    /// as another user of the group can open it. A store so made stays
    /// shared: every process opening it (of one of the directory's groups)
    /// gives the files it makes 0660, whatever this option says.
    pub group_access: bool,
    /// The most bytes of recent messages' text postings a tenant keeps in
    /// its pending list before a write moves them into the posting blocks
    /// (default 8 KiB, at most 1 MiB; 0: every write puts them into blocks
    /// at once). A larger list makes an append cheaper and every message
    /// search read more (ARCHITECTURE.md, "Message-text postings"), as
    /// PostgreSQL's `gin_pending_list_limit` does. A setting of each
    /// handle, not of the store.
    pub text_pending_bytes: usize,
    /// Create the store when `path` holds none (default true). False: such
    /// an open fails with `Error::NotFound` naming the path and creates
    /// nothing (the command line's commands that read do so, so that a
    /// mistyped path is an error, not a new empty store).
    pub create_if_missing: bool,
}

/// The largest [`Options::text_pending_bytes`].
pub const MAX_TEXT_PENDING_BYTES: usize = 1 << 20;

impl Default for Options {
    fn default() -> Self {
        Options {
            durability: Durability::Buffered {
                flush_every_ms: 500,
            },
            cache_capacity: 64 * 1024 * 1024,
            render: RenderSettings::default(),
            compression: false,
            linger_ms: 30_000,
            attach_timeout_ms: 10_000,
            text_index: true,
            backend: Backend::default_for_new_stores(),
            map_size: 256 << 30,
            group_access: false,
            text_pending_bytes: 8 << 10,
            create_if_missing: true,
        }
    }
}

impl Options {
    /// Reads options from a JSON object, as the C ABI, PHP and Python pass
    /// them: `durability` (`"buffered"`/`"sync"`), `flush_every_ms`,
    /// `cache_capacity`, `media_base`, `default_avatar`, `utc_offset`,
    /// `compression`, `linger_ms`, `attach_timeout_ms`, `text_index`,
    /// `backend` (`"lmdb"`/`"sled"`), `map_size`, `group_access`,
    /// `text_pending_bytes`, `create_if_missing`.
    /// Unknown keys are refused so typos do not pass silently.
    pub fn from_json(v: &Value) -> Result<Options> {
        let mut o = Options::default();
        let obj = match v {
            Value::Null => return Ok(o),
            Value::Object(m) => m,
            _ => return Err(Error::invalid("options", "must be a JSON object")),
        };
        let mut flush_ms = None;
        let mut sync = false;
        for (k, val) in obj {
            let as_str = || {
                val.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| Error::invalid(k.as_str(), "must be a string"))
            };
            let as_bool = || {
                val.as_bool()
                    .ok_or_else(|| Error::invalid(k.as_str(), "must be true or false"))
            };
            let as_u64 = || {
                val.as_u64()
                    .ok_or_else(|| Error::invalid(k.as_str(), "must be a non-negative integer"))
            };
            match k.as_str() {
                "durability" => match as_str()?.as_str() {
                    "buffered" => sync = false,
                    "sync" => sync = true,
                    other => {
                        return Err(Error::invalid(
                            "durability",
                            format!("{other:?} is neither \"buffered\" nor \"sync\""),
                        ))
                    }
                },
                "flush_every_ms" => flush_ms = Some(as_u64()?),
                "cache_capacity" => o.cache_capacity = as_u64()?,
                "linger_ms" => o.linger_ms = as_u64()?,
                "attach_timeout_ms" => o.attach_timeout_ms = as_u64()?,
                "media_base" => o.render.media_base = as_str()?,
                "default_avatar" => o.render.default_avatar = as_str()?,
                "utc_offset" => o.render.set_utc_offset(&as_str()?)?,
                "compression" => o.compression = as_bool()?,
                "text_index" => o.text_index = as_bool()?,
                "backend" => o.backend = Backend::parse(&as_str()?)?,
                "map_size" => o.map_size = as_u64()?,
                "group_access" => o.group_access = as_bool()?,
                "create_if_missing" => o.create_if_missing = as_bool()?,
                "text_pending_bytes" => {
                    o.text_pending_bytes = usize::try_from(as_u64()?).unwrap_or(usize::MAX)
                }
                // The PHP binding's own option; the core ignores it.
                "lib" => {}
                other => {
                    return Err(Error::invalid(
                        "options",
                        format!("unknown option {other:?}"),
                    ))
                }
            }
        }
        o.check()?;
        o.durability = if sync {
            Durability::Sync
        } else {
            Durability::Buffered {
                flush_every_ms: flush_ms.unwrap_or(500),
            }
        };
        Ok(o)
    }
}

impl Options {
    /// Refuses settings out of their range, naming the option.
    pub fn check(&self) -> Result<()> {
        if self.text_pending_bytes > MAX_TEXT_PENDING_BYTES {
            return Err(Error::invalid(
                "text_pending_bytes",
                format!(
                    "{} is over the most, {MAX_TEXT_PENDING_BYTES} bytes",
                    self.text_pending_bytes
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_from_json() {
        let o = Options::from_json(&serde_json::json!({
            "durability": "sync", "media_base": "http://localhost:82", "utc_offset": "-05:30"
        }))
        .unwrap();
        assert_eq!(o.durability, Durability::Sync);
        assert_eq!(o.render.utc_offset.whole_seconds(), -(5 * 3600 + 1800));
        let e = Options::from_json(&serde_json::json!({"medya_base": "x"})).unwrap_err();
        assert!(e.to_string().contains("medya_base"));
        assert!(Options::from_json(&serde_json::json!({"utc_offset": "8"})).is_err());
    }

    #[test]
    fn storage_options_from_json() {
        let o = Options::from_json(&serde_json::json!({
            "backend": "sled", "map_size": 1u64 << 30, "group_access": true
        }))
        .unwrap();
        assert_eq!(
            (o.backend, o.map_size, o.group_access),
            (Backend::Sled, 1 << 30, true)
        );
        let e = Options::from_json(&serde_json::json!({"backend": "rocksdb"})).unwrap_err();
        assert!(
            e.to_string().contains("backend") && e.to_string().contains("rocksdb"),
            "{e}"
        );
        let e =
            Options::from_json(&serde_json::json!({"text_pending_bytes": 2u64 << 20})).unwrap_err();
        assert!(e.to_string().contains("text_pending_bytes"), "{e}");
        let e = Options::from_json(&serde_json::json!({"map_size": "big"})).unwrap_err();
        assert!(e.to_string().contains("map_size"), "{e}");
        let e = Options::from_json(&serde_json::json!({"group_access": 1})).unwrap_err();
        assert!(e.to_string().contains("group_access"), "{e}");
    }
}
