//! pathmq middleware: token-bucket rate limits per session, per user and per action.
