//! The test PKI (`tests/pki`, crate `pathmq-test-pki`): a CA made with rcgen, the server
//! and client certificates it signs (valid or expired), and rustls client configurations.
#![allow(unused_imports, unreachable_pub)]

pub use pathmq_test_pki::{Ca, Identity, client_config, connect};
