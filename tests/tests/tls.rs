//! TLS on every transport (issue 7), with certificates made by rcgen in the test
//! (`support::pki`):
//!
//! * [`mqtt`]: MQTT over TLS with rumqttc; client certificates (mTLS) verified against the
//!   CA, the certificate's CN as the username (`use_identity_as_username`), and a
//!   certificate from another CA, an expired one and none refused;
//! * [`https`]: HTTPS and WSS on the HTTP listener (the native protocol over WSS, MQTT over
//!   WSS, `/ping` over HTTPS) and the native TCP listener over TLS;
//! * [`reload`]: new certificates served after a reload, while open connections go on.
//!
//! The binary's SIGHUP and its self-signed certificate at first start are tested in
//! `tests/cli/tls.rs`.

mod support;

mod tls {
    mod https;
    mod mqtt;
    mod reload;
}
