//! Authentication: the GitHub HMAC signature and the allowed source range.

pub mod github;
pub(crate) mod ip;
