//! Many processes on one sled store: the owner's server, a client's
//! connection, and the frames between them (ARCHITECTURE.md, "Many
//! processes"). Above the engine; below the public `Store` handle. An LMDB
//! store needs none of it (every process opens it itself).

pub(crate) mod client;
pub(crate) mod frames;
pub(crate) mod server;
