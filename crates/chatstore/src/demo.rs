//! The seeds' sample data, shared by `chatstore demo`, the tests and the
//! bindings' tests.
//!
//! Tenant 2 reproduces the first seed's history-list example (agent 2's
//! sessions 4, 3, 1, with a session of another agent beside them); tenant 218
//! holds the second seed's two conversations behind account 218.

/// The sample data as JSON Lines.
pub const SEED_JSONL: &str = include_str!("../data/seeds.jsonl");

/// The first seed's success response, verbatim.
pub const EXPECTED_HISTORY_LIST: &str = include_str!("../data/expected_history_list.json");

/// `media_base` the first seed's response was rendered with.
pub const SEED_MEDIA_BASE: &str = "http://localhost:82";

/// The account of the second seed.
pub const SEED_SSO_ID: u64 = 218;

/// Its login hash in the sample data.
pub const SEED_ACCOUNT_HASH: &str = "5f4dcc3b5aa765d61d8327deb882cf99";
