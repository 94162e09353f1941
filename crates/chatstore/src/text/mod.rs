//! Text: normalization and grams for member and message search
//! ([`search`]), and the compact message-text posting blocks and pending
//! list ([`postings`]). Below storage's users; imports only low modules and
//! the storage boundary.

pub(crate) mod postings;
pub mod search;
