//! pathmq auth provider: logins checked by an HTTP endpoint (webhook), with a timeout and a cache.
