//! The subscription index (DESIGN.md §3): which subscriptions match a path.
//!
//! A segment trie. Lookup walks the path's segments once, following the literal child,
//! the one-segment wildcard child and collecting multi-level wildcards on the way, so its
//! cost depends on the path's depth and the subscriptions that match it, not on how many
//! subscriptions exist on other paths.
//!
//! Concurrency: no global lock on the publish path. Patterns that start with a literal
//! live in one of [`SHARDS`] tries chosen by their first segment; patterns that start with
//! a wildcard live in one more trie. A lookup takes two read locks (never across
//! `.await`); subscribing to one subtree does not block publishing to another.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::RwLock;

use crate::path::Path;
use crate::pattern::{Pattern, Segment};
use crate::request::OnOptions;
use crate::session::{SessionId, SessionQueue};

/// How many tries literal-first patterns are spread over.
pub const SHARDS: usize = 16;

/// A subscription's id, unique in this broker process (the reference's `referenceId`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriptionId(pub u64);

impl std::fmt::Display for SubscriptionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// One subscription of one session.
#[derive(Debug)]
pub struct Subscription {
    /// Its id.
    pub id: SubscriptionId,
    /// The subscribing session.
    pub session: SessionId,
    /// What it matches.
    pub pattern: Pattern,
    /// How it was made.
    pub options: OnOptions,
    /// Where matching events go: the session's outbound queue.
    pub(crate) queue: SessionQueue,
}

#[derive(Default)]
struct Node {
    children: HashMap<Box<str>, Node>,
    one: Option<Box<Node>>,
    /// Subscriptions whose pattern ends exactly here.
    here: Vec<Arc<Subscription>>,
    /// Subscriptions whose pattern ends here with `**` / `#`.
    many: Vec<Arc<Subscription>>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty()
            && self.one.is_none()
            && self.here.is_empty()
            && self.many.is_empty()
    }

    fn insert(&mut self, segments: &[Segment], sub: Arc<Subscription>) {
        match segments.split_first() {
            None => self.here.push(sub),
            Some((Segment::Many { .. }, _)) => self.many.push(sub),
            Some((Segment::One, rest)) => self
                .one
                .get_or_insert_with(Default::default)
                .insert(rest, sub),
            Some((Segment::Literal(l), rest)) => self
                .children
                .entry(l.clone())
                .or_default()
                .insert(rest, sub),
        }
    }

    /// Removes the subscription `id`; returns whether it was found.
    fn remove(&mut self, segments: &[Segment], id: SubscriptionId) -> bool {
        match segments.split_first() {
            None => remove_from(&mut self.here, id),
            Some((Segment::Many { .. }, _)) => remove_from(&mut self.many, id),
            Some((Segment::One, rest)) => match &mut self.one {
                Some(child) => {
                    let found = child.remove(rest, id);
                    if child.is_empty() {
                        self.one = None;
                    }
                    found
                }
                None => false,
            },
            Some((Segment::Literal(l), rest)) => match self.children.get_mut(l) {
                Some(child) => {
                    let found = child.remove(rest, id);
                    if child.is_empty() {
                        self.children.remove(l);
                    }
                    found
                }
                None => false,
            },
        }
    }

    fn collect(&self, segments: &[&str], out: &mut Vec<Arc<Subscription>>) {
        let below = segments.len();
        for sub in &self.many {
            let include_parent = matches!(
                sub.pattern.segments().last(),
                Some(Segment::Many {
                    include_parent: true
                })
            );
            if (below >= 1 || include_parent) && sub.options.depth.is_none_or(|d| below <= d) {
                out.push(sub.clone());
            }
        }
        let Some((first, rest)) = segments.split_first() else {
            out.extend(self.here.iter().cloned());
            return;
        };
        if let Some(child) = self.children.get(*first) {
            child.collect(rest, out);
        }
        if let Some(one) = &self.one {
            one.collect(rest, out);
        }
    }
}

fn remove_from(list: &mut Vec<Arc<Subscription>>, id: SubscriptionId) -> bool {
    match list.iter().position(|s| s.id == id) {
        Some(i) => {
            list.swap_remove(i);
            true
        }
        None => false,
    }
}

/// The subscription index. See the module docs.
pub struct Router {
    shards: Box<[RwLock<Node>]>,
    wild: RwLock<Node>,
    hasher: std::collections::hash_map::RandomState,
    next_id: AtomicU64,
    len: AtomicUsize,
}

impl Default for Router {
    fn default() -> Self {
        Self::new()
    }
}

impl Router {
    /// An empty index.
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::new(Node::default())).collect(),
            wild: RwLock::new(Node::default()),
            hasher: Default::default(),
            next_id: AtomicU64::new(1),
            len: AtomicUsize::new(0),
        }
    }

    /// A fresh subscription id.
    pub(crate) fn next_id(&self) -> SubscriptionId {
        SubscriptionId(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    fn root_for(&self, first: &str) -> &RwLock<Node> {
        &self.shards[(self.hasher.hash_one(first) as usize) % SHARDS]
    }

    fn root_of(&self, pattern: &Pattern) -> &RwLock<Node> {
        match pattern.segments().first() {
            Some(Segment::Literal(l)) => self.root_for(l),
            _ => &self.wild,
        }
    }

    /// Adds a subscription.
    pub fn insert(&self, sub: Arc<Subscription>) {
        let root = self.root_of(&sub.pattern);
        let segments = sub.pattern.segments().to_vec();
        root.write().insert(&segments, sub);
        self.len.fetch_add(1, Ordering::Relaxed);
    }

    /// Removes a subscription; returns whether it was there.
    pub fn remove(&self, sub: &Subscription) -> bool {
        let found = self
            .root_of(&sub.pattern)
            .write()
            .remove(sub.pattern.segments(), sub.id);
        if found {
            self.len.fetch_sub(1, Ordering::Relaxed);
        }
        found
    }

    /// Appends every subscription matching `path` to `out` (in no particular order; a
    /// session with several matching subscriptions appears once per subscription).
    pub fn lookup(&self, path: &Path, out: &mut Vec<Arc<Subscription>>) {
        let segments: Vec<&str> = path.segments().collect();
        self.root_for(segments[0]).read().collect(&segments, out);
        // MQTT 4.7.2: wildcards at the first level do not match `$` topics.
        if !segments[0].starts_with('$') {
            self.wild.read().collect(&segments, out);
        }
    }

    /// How many subscriptions the index holds.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether the index holds no subscription.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::SessionQueue;

    fn sub(router: &Router, pattern: Pattern, depth: Option<usize>) -> Arc<Subscription> {
        let (queue, _rx) = SessionQueue::new(1);
        let sub = Arc::new(Subscription {
            id: router.next_id(),
            session: SessionId::new(),
            pattern,
            options: OnOptions {
                depth,
                ..Default::default()
            },
            queue,
        });
        router.insert(sub.clone());
        sub
    }

    fn matched(router: &Router, path: &str) -> Vec<SubscriptionId> {
        let mut out = Vec::new();
        router.lookup(&Path::from_topic(path).unwrap(), &mut out);
        let mut ids: Vec<_> = out.iter().map(|s| s.id).collect();
        ids.sort();
        ids
    }

    /// The trie must agree with `Pattern::matches` (the reference model) on every pair.
    #[test]
    fn lookup_agrees_with_pattern_matching() {
        let router = Router::new();
        let filters = [
            "a/b", "a/+", "a/#", "+/b", "#", "+/+/c", "$SYS/#", "a/b/c", "/a", "+/#", "a//b",
        ];
        let subs: Vec<_> = filters
            .iter()
            .map(|f| sub(&router, Pattern::mqtt(f).unwrap(), None))
            .collect();
        let native = ["/a/**", "/a/*", "*", "/a/*/c"];
        let mut all = subs.clone();
        all.extend(
            native
                .iter()
                .map(|p| sub(&router, Pattern::native(p).unwrap(), None)),
        );
        all.push(sub(&router, Pattern::native("/a/**").unwrap(), Some(1)));
        let topics = [
            "a", "a/b", "a/b/c", "a/b/c/d", "x/b", "$SYS/x", "/a", "//a", "a//b", "q/r/c", "a/",
        ];
        for t in topics {
            let path = Path::from_topic(t).unwrap();
            let mut expected: Vec<_> = all
                .iter()
                .filter(|s| s.pattern.matches(&path, s.options.depth))
                .map(|s| s.id)
                .collect();
            expected.sort();
            assert_eq!(matched(&router, t), expected, "topic {t}");
        }
    }

    #[test]
    fn removal_prunes_and_only_removes_its_own_subscription() {
        let router = Router::new();
        let a = sub(&router, Pattern::mqtt("a/+/c").unwrap(), None);
        let b = sub(&router, Pattern::mqtt("a/+/c").unwrap(), None);
        assert_eq!(router.len(), 2);
        assert!(router.remove(&a));
        assert!(!router.remove(&a));
        assert_eq!(matched(&router, "a/b/c"), vec![b.id]);
        assert!(router.remove(&b));
        assert!(router.is_empty());
        assert!(matched(&router, "a/b/c").is_empty());
    }
}
