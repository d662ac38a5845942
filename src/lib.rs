//! pathmq
