//! sys
pub mod init;
