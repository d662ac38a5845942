//! pathmq protocol plugin: the length-prefixed token protocol of token-server (4-byte length + payload frames, TLS with client certificates).
