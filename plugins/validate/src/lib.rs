//! pathmq middleware: request validation with JSON Schema and per-group field allow-lists.
