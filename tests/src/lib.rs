//! End-to-end tests of pathmq with real clients; the tests are in `tests/`.
