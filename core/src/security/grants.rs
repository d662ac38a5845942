//! The permission engine: what one session may do, compiled once at login from its user,
//! the user's groups and the session's facts (`reference/happn-3.md` USER PERMISSIONS,
//! NESTED PERMISSIONS FOR GET AND SET, TEMPLATED PERMISSIONS; DESIGN.md §3, §7). Pure code:
//! no I/O, no locks.
//!
//! # Compiling
//! [`Grants::compile`] renders every permission glob ([`Template`]) and merges the user's
//! permissions with every group's. Two entries on the same glob *merge*: the union of
//! their actions and the union of their prohibits (the reference replaces one group's
//! entry by another's; issue 5 fixes that). A templated entry whose values void it
//! ([`VoidReason`]) loses its allows; its prohibits are kept on the *widened* glob, with
//! every variable replaced by `*` ([`Template::widened`]). Why widened rather than dropped:
//! dropping a prohibit can only widen access (the allows elsewhere would then reach the
//! paths it guarded), and a user controls their custom data, so a user could lift a
//! prohibit by blanking a field. Why not "the whole session": the widened glob already
//! covers every path any value could have named, which is all the prohibit could ever
//! guard, and nothing else is lost. `/data/{{user.custom_data.team}}/private` with no team
//! prohibits `/data/*/private`.
//!
//! # Deciding
//! Actions are [`Right`]s; `count` is authorised as [`Right::Get`], MQTT PUBLISH as
//! [`Right::Set`], SUBSCRIBE as [`Right::On`]. `*` (`Right::All`) in actions or prohibit
//! stands for every right. Asking a data method about `Right::All` asks whether *every*
//! data action (`get set remove on`) is allowed; asking it about an HTTP-only right
//! (`post`, …) answers no. For each right: any prohibit that matches wins over any allow;
//! otherwise some allow must match; otherwise the answer is no.
//!
//! # HTTP routes
//! A permission glob under [`HTTP_PREFIX`] (`/@HTTP/…`, reference: WEB PATH LEVEL
//! SECURITY) guards the broker's HTTP routes, with HTTP methods for actions. A glob whose
//! text starts with `/@HTTP` grants nothing on data: a group allowed `get` on `/@HTTP/reports/*` may `GET
//! /reports/x` but not read a record at `/@HTTP/reports/x` (its prohibits still apply to
//! data: refusing more is safe). HTTP requests are decided by [`Grants::allows_http`] over
//! rules of their own, built from every glob that can match some `/@HTTP/…` path: the
//! `/@HTTP` ones and wide ones such as `_ADMIN`'s `/*`.
//!
//! | request | method | allowed when |
//! |---|---|---|
//! | one record (`set`, `get`/`remove` of a path) | [`Grants::allows_path`] | an allow glob matches the path and no prohibit glob does |
//! | data glob (`get('/a/*')`, `count`, remove by glob) | [`Grants::allows_glob`] | one allow glob *covers* the request glob and no prohibit glob *overlaps* it |
//! | subscription (`on`, SUBSCRIBE) | [`Grants::allows_pattern`] | the same, with the pattern's `*` one segment and `**` (`#`) the descendants |
//!
//! *Covers* is textual: the request's wildcards are read as characters that only a
//! permission's `*` can match (`/a/*` covers `/a/*` and `/a/b/*`, not `/*` nor `/a*`). This
//! is sound: whatever covers a request allows every path it can match (the proof is on
//! `covers` below). It is not complete: two allows that cover a request only together do
//! not allow it. *Overlaps* (`overlaps` below) is exact over strings: some string is
//! matched by both. Over *valid paths* that is conservative: the subscription `$` rule
//! (MQTT 4.7.2), a `depth` option and the characters no path holds are ignored, which can
//! only find more overlaps, hence more refusals. An MQTT `a/#` also matches `a` itself,
//! so it needs both `/a` and `/a/…` to be allowed (the reference's templated example
//! grants both `/gauges/{{user.username}}` and `/gauges/{{user.username}}/*`).
//!
//! # Nested permissions
//! With [`Grants::with_nested`] (the reference's `allowNestedPermissions`), a `get` of a
//! data glob or an `on` of a pattern whose paths are only partly allowed is not refused:
//! [`Grants::glob_access`] and [`Grants::pattern_access`] answer [`Access::Filtered`], and
//! the caller keeps only the records (or events) for which [`Grants::allows_record`] says
//! yes. It is refused when no allow overlaps the request, or one prohibit covers all of
//! it. Other rights (`set`, `remove`) are never filtered.
//!
//! # Cost
//! Compiling allocates; deciding does not (up to 64-byte prohibit globs for patterns and
//! globs). [`Grants::allows_path`] is a glob match per permission naming the right:
//! O(permissions × glob length × path length) at worst, linear in the path in practice.
//! The overlap test is O(glob length × request length) per prohibit.

use std::collections::BTreeSet;
use std::fmt;

use super::model::{Group, HTTP_PREFIX, PermissionEntry, Permissions, Right, SessionFacts, User};
use super::template::{Template, TemplateError, VoidReason};
use crate::path::Path;
use crate::pattern::{Glob, Pattern, Segment};

/// The four data rights, each with its rules; `Right::All` asked of data stands for all
/// of them.
const RIGHTS: [Right; 4] = [Right::Get, Right::Set, Right::Remove, Right::On];

/// The HTTP methods an `@HTTP` permission can name, each with its rules; `Right::All`
/// asked of an HTTP route stands for all of them.
const HTTP_RIGHTS: [Right; 7] = [
    Right::Get,
    Right::Post,
    Right::Put,
    Right::Delete,
    Right::Patch,
    Right::Head,
    Right::Options,
];

/// What a session may do, compiled at login. [`Default`] allows nothing.
///
/// ```
/// use pathmq_core::security::{Grants, Group, PermissionEntry, Right, SessionFacts, User};
/// use pathmq_core::{Path, Pattern};
///
/// let devices = Group {
///     name: "devices".into(),
///     permissions: [(
///         "/sensors/{{user.username}}/*".to_owned(),
///         PermissionEntry { actions: [Right::Set, Right::On].into(), ..Default::default() },
///     )]
///     .into(),
///     ..Default::default()
/// };
/// let ann = User { username: "ann".into(), ..Default::default() };
/// let grants = Grants::compile(&ann, &[&devices], &SessionFacts::default()).unwrap();
///
/// assert!(grants.allows_path(Right::Set, &Path::parse("/sensors/ann/temp").unwrap()));
/// assert!(!grants.allows_path(Right::Set, &Path::parse("/sensors/bob/temp").unwrap()));
/// assert!(grants.allows_pattern(Right::On, &Pattern::mqtt("sensors/ann/+").unwrap()));
/// assert!(!grants.allows_pattern(Right::On, &Pattern::mqtt("sensors/#").unwrap()));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Grants {
    /// Per data right (index in [`RIGHTS`]), the globs allowing and prohibiting it.
    rules: [Rules; 4],
    /// Per HTTP method (index in [`HTTP_RIGHTS`]), the globs that can match an
    /// `/@HTTP/…` path allowing and prohibiting it.
    http: [Rules; 7],
    /// The merged, rendered permissions the rules were built from.
    merged: Permissions,
    voided: Vec<VoidedPermission>,
    nested: bool,
}

#[derive(Debug, Clone, Default)]
struct Rules {
    allow: Vec<Glob>,
    prohibit: Vec<Glob>,
}

/// How much of a wildcard request is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// None of it: refuse the request (403).
    Denied,
    /// Part of it (nested permissions only): run it, and keep only the records or events
    /// for which [`Grants::allows_record`] says yes.
    Filtered,
    /// All of it.
    Full,
}

/// Whose permission it is, in errors and in [`VoidedPermission`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PermissionOwner {
    /// The user's own permissions.
    User(String),
    /// A group's.
    Group(String),
}

impl fmt::Display for PermissionOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::User(name) => write!(f, "user `{name}`"),
            Self::Group(name) => write!(f, "group `{name}`"),
        }
    }
}

/// A templated permission that this session's values voided: its allows are ignored, its
/// prohibits apply to [`Template::widened`]. Worth a log line at login (it names no value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoidedPermission {
    /// Whose permission.
    pub owner: PermissionOwner,
    /// The glob as written.
    pub template: String,
    /// Why it is void.
    pub reason: VoidReason,
    /// The widened glob its prohibits now apply to, when it had any.
    pub prohibits_on: Option<Glob>,
}

/// Why [`Grants::compile`] failed: a stored permission is wrong as written. Nothing is
/// compiled; the login should be refused and the administrator told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrantsError {
    /// A permission glob of the user or of one group does not parse (an unknown variable,
    /// an unclosed `{{`, an invalid path).
    #[error("{owner}: {source}")]
    Template {
        /// Whose permission.
        owner: PermissionOwner,
        /// What is wrong with it.
        #[source]
        source: TemplateError,
    },
}

impl Grants {
    /// Renders and merges the permissions of `user` and of `groups` (the caller looks up
    /// the user's groups; membership is not checked here) for the session described by
    /// `session`. Nested permissions are off ([`Grants::with_nested`]).
    ///
    /// # Errors
    /// [`GrantsError::Template`] when any permission glob does not parse, naming its owner.
    /// Values that void a permission are not errors ([`Grants::voided`]).
    pub fn compile(
        user: &User,
        groups: &[&Group],
        session: &SessionFacts,
    ) -> Result<Self, GrantsError> {
        let mut merged = Permissions::new();
        let mut voided = Vec::new();
        let owners = std::iter::once((
            PermissionOwner::User(user.username.clone()),
            &user.permissions,
        ))
        .chain(
            groups
                .iter()
                .map(|g| (PermissionOwner::Group(g.name.clone()), &g.permissions)),
        );
        for (owner, permissions) in owners {
            for (glob, entry) in permissions {
                let template = Template::parse(glob).map_err(|source| GrantsError::Template {
                    owner: owner.clone(),
                    source,
                })?;
                match template.render(user, session) {
                    Ok(rendered) => merge(&mut merged, &rendered, &entry.actions, &entry.prohibit),
                    Err(reason) => {
                        let prohibits_on =
                            (!entry.prohibit.is_empty()).then(|| template.widened().clone());
                        if let Some(widened) = &prohibits_on {
                            merge(&mut merged, widened, &BTreeSet::new(), &entry.prohibit);
                        }
                        voided.push(VoidedPermission {
                            owner: owner.clone(),
                            template: glob.clone(),
                            reason,
                            prohibits_on,
                        });
                    }
                }
            }
        }
        let mut rules: [Rules; 4] = Default::default();
        let mut http: [Rules; 7] = Default::default();
        let any_route = GlobText(b"/@HTTP/*");
        for (glob, entry) in &merged {
            // Keys were normalised by `Glob::parse` in `render`/`widened`.
            let glob = Glob::parse(glob).expect("merged keys are valid globs");
            let http_only = is_http_glob(&glob);
            for (i, right) in RIGHTS.into_iter().enumerate() {
                if entry.prohibit.iter().any(|r| r.covers(right)) {
                    rules[i].prohibit.push(glob.clone());
                }
                if !http_only && entry.actions.iter().any(|r| r.covers(right)) {
                    rules[i].allow.push(glob.clone());
                }
            }
            if !overlaps(&glob, any_route) {
                continue;
            }
            for (i, right) in HTTP_RIGHTS.into_iter().enumerate() {
                if entry.prohibit.iter().any(|r| r.covers(right)) {
                    http[i].prohibit.push(glob.clone());
                }
                if entry.actions.iter().any(|r| r.covers(right)) {
                    http[i].allow.push(glob.clone());
                }
            }
        }
        Ok(Self {
            rules,
            http,
            merged,
            voided,
            nested: false,
        })
    }

    /// Switches nested permissions on or off (the reference's `allowNestedPermissions`).
    pub fn with_nested(mut self, on: bool) -> Self {
        self.nested = on;
        self
    }

    /// Whether nested permissions are on: wildcard `get`s and `on`s may be
    /// [`Access::Filtered`].
    pub fn nested(&self) -> bool {
        self.nested
    }

    /// The merged permissions, rendered for this session, by normalised glob (voided
    /// prohibits appear on their widened glob). For listing, not for deciding.
    pub fn permissions(&self) -> &Permissions {
        &self.merged
    }

    /// The templated permissions this session's values voided.
    pub fn voided(&self) -> &[VoidedPermission] {
        &self.voided
    }

    /// Whether the session may do `right` on exactly `path` (`set`, and `get` or `remove`
    /// of one record).
    pub fn allows_path(&self, right: Right, path: &Path) -> bool {
        let text = GlobText(path.as_str().as_bytes());
        self.each_right(right, |rules| {
            !rules.prohibit.iter().any(|g| covers(g, text))
                && rules.allow.iter().any(|g| covers(g, text))
        })
    }

    /// Whether one record found by a [`Access::Filtered`] request may be returned (or one
    /// event delivered): the same decision as [`Grants::allows_path`].
    pub fn allows_record(&self, right: Right, path: &Path) -> bool {
        self.allows_path(right, path)
    }

    /// Whether the session may do `right` on every path `glob` can match (data `get`,
    /// `count`, remove by glob). With nested permissions, also true when a `get` is
    /// [`Access::Filtered`]: see [`Grants::glob_access`].
    pub fn allows_glob(&self, right: Right, glob: &Glob) -> bool {
        self.glob_access(right, glob) != Access::Denied
    }

    /// How much of a data glob the session may reach with `right`. [`Access::Filtered`]
    /// only for [`Right::Get`] with nested permissions on.
    pub fn glob_access(&self, right: Right, glob: &Glob) -> Access {
        let nested = self.nested && glob.has_wildcard();
        self.access(
            right,
            &[GlobText(glob.as_str().as_bytes())],
            nested,
            Right::Get,
        )
    }

    /// Whether the session may subscribe with `pattern` (`right` is normally
    /// [`Right::On`]). With nested permissions, also true when it is [`Access::Filtered`]:
    /// see [`Grants::pattern_access`].
    pub fn allows_pattern(&self, right: Right, pattern: &Pattern) -> bool {
        self.pattern_access(right, pattern) != Access::Denied
    }

    /// How much of a subscription pattern the session may reach with `right`.
    /// [`Access::Filtered`] only for [`Right::On`] with nested permissions on: deliver only
    /// the events whose path passes [`Grants::allows_record`].
    pub fn pattern_access(&self, right: Right, pattern: &Pattern) -> Access {
        let nested = self.nested && !pattern.is_exact();
        let (views, n) = PatternText::views(pattern);
        self.access(right, &views[..n], nested, Right::On)
    }

    /// Whether the session may send an HTTP request with the method `right` (see
    /// [`Right::of_http_method`]) for the route `path`: `/@HTTP` followed by the request's
    /// path, e.g. `/@HTTP/secure/route/test` (reference: WEB PATH LEVEL SECURITY). Any
    /// matching prohibit wins; `Right::All` asks whether every method is allowed; a data
    /// right other than `get` is never allowed here. A `path` holding `*` is refused (the
    /// caller refuses such requests before asking).
    pub fn allows_http(&self, right: Right, path: &str) -> bool {
        let route = path.strip_prefix(HTTP_PREFIX);
        if path.contains('*') || !route.is_some_and(|r| r.starts_with('/')) {
            return false;
        }
        let text = GlobText(path.as_bytes());
        let decide = |rules: &Rules| {
            !rules.prohibit.iter().any(|g| covers(g, text))
                && rules.allow.iter().any(|g| covers(g, text))
        };
        match right {
            Right::All => self.http.iter().all(decide),
            right => (HTTP_RIGHTS.iter().position(|&r| r == right))
                .is_some_and(|i| decide(&self.http[i])),
        }
    }

    /// `decide` for `right`, or for all four data rights when it is `Right::All`; no for
    /// an HTTP-only right.
    fn each_right(&self, right: Right, decide: impl Fn(&Rules) -> bool) -> bool {
        match right_index(right) {
            Some(i) => decide(&self.rules[i]),
            None if right == Right::All => self.rules.iter().all(decide),
            None => false,
        }
    }

    /// The access to a request read as `views` (it matches what any of them matches).
    fn access<T: Tokens>(
        &self,
        right: Right,
        views: &[T],
        nested: bool,
        nestable: Right,
    ) -> Access {
        let one = |right: Right, rules: &Rules| rules.access(views, nested && right == nestable);
        match right_index(right) {
            Some(i) => one(right, &self.rules[i]),
            None if right != Right::All => Access::Denied,
            None => RIGHTS
                .into_iter()
                .zip(&self.rules)
                .map(|(r, rules)| one(r, rules))
                .min()
                .unwrap_or(Access::Denied),
        }
    }
}

impl Rules {
    fn access<T: Tokens>(&self, views: &[T], nested: bool) -> Access {
        let mut clash = false;
        for p in &self.prohibit {
            if views.iter().any(|&v| overlaps(p, v)) {
                if !nested || views.iter().all(|&v| covers(p, v)) {
                    return Access::Denied;
                }
                clash = true;
            }
        }
        let covered = |&v: &T| self.allow.iter().any(|a| covers(a, v));
        if !clash && views.iter().all(covered) {
            Access::Full
        } else if nested
            && self
                .allow
                .iter()
                .any(|a| views.iter().any(|&v| overlaps(a, v)))
        {
            Access::Filtered
        } else {
            Access::Denied
        }
    }
}

fn right_index(right: Right) -> Option<usize> {
    RIGHTS.iter().position(|&r| r == right)
}

/// Whether a permission glob is an `@HTTP` one: its text starts with `/@HTTP` (such a
/// glob grants nothing on data).
fn is_http_glob(glob: &Glob) -> bool {
    let text = glob.as_str();
    text.strip_prefix(HTTP_PREFIX)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/') || rest.starts_with('*'))
}

fn merge(
    merged: &mut Permissions,
    glob: &Glob,
    actions: &BTreeSet<Right>,
    prohibit: &BTreeSet<Right>,
) {
    let entry: &mut PermissionEntry = merged.entry(glob.as_str().to_owned()).or_default();
    entry.actions.extend(actions);
    entry.prohibit.extend(prohibit);
}

// ---------------------------------------------------------------------------------------
// Matching a permission glob against a request, both read as token strings.

/// One symbol of a request: a byte, or a wildcard standing for a set of strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    /// Itself.
    Byte(u8),
    /// Any run of bytes without `/` (a subscription's `*` / `+`).
    SegStar,
    /// Any run of bytes (a data glob's `*`, a subscription's `**` / `#` after its `/`).
    AnyStar,
}

/// A request as a sequence of [`Tok`]s, read front to back by copying cursors (no
/// allocation).
trait Tokens: Copy {
    /// The first token and the rest, or `None` at the end.
    fn split_first(self) -> Option<(Tok, Self)>;
}

/// A data glob (`*` is [`Tok::AnyStar`]) or, without `*`, a path.
#[derive(Debug, Clone, Copy)]
struct GlobText<'a>(&'a [u8]);

impl Tokens for GlobText<'_> {
    fn split_first(self) -> Option<(Tok, Self)> {
        let (&b, rest) = self.0.split_first()?;
        let tok = if b == b'*' {
            Tok::AnyStar
        } else {
            Tok::Byte(b)
        };
        Some((tok, Self(rest)))
    }
}

/// A subscription pattern: each segment is `/` then its content; a literal is its bytes,
/// `*`/`+` is [`Tok::SegStar`], `**`/`#` is [`Tok::AnyStar`]. So `/a/**` reads `/a/`Σ*,
/// exactly the paths below `/a` (a segment may be empty: `/a/` is below `/a`).
#[derive(Debug, Clone, Copy)]
struct PatternText<'a> {
    segments: &'a [Segment],
    segment: usize,
    /// 0: the `/` before the segment; k ≥ 1: its k-th content token.
    offset: usize,
}

impl<'a> PatternText<'a> {
    fn new(segments: &'a [Segment]) -> Self {
        Self {
            segments,
            segment: 0,
            offset: 0,
        }
    }

    /// The texts whose union is the pattern: an MQTT `a/#` is `/a/`Σ* and also `/a`
    /// (MQTT 4.7.1.2). `#` alone has no parent, nor has `/#` (its parent `/` is no path).
    fn views(pattern: &'a Pattern) -> ([Self; 2], usize) {
        let segments = pattern.segments();
        let full = Self::new(segments);
        if let Some((
            Segment::Many {
                include_parent: true,
            },
            parent,
        )) = segments.split_last()
        {
            let empty = |s: &Segment| matches!(s, Segment::Literal(l) if l.is_empty());
            if !(parent.is_empty() || parent.len() == 1 && empty(&parent[0])) {
                return ([full, Self::new(parent)], 2);
            }
        }
        ([full, full], 1)
    }
}

impl Tokens for PatternText<'_> {
    fn split_first(self) -> Option<(Tok, Self)> {
        let segment = self.segments.get(self.segment)?;
        let len = match segment {
            Segment::Literal(l) => l.len(),
            Segment::One | Segment::Many { .. } => 1,
        };
        let tok = match (self.offset, segment) {
            (0, _) => Tok::Byte(b'/'),
            (k, Segment::Literal(l)) => Tok::Byte(l.as_bytes()[k - 1]),
            (_, Segment::One) => Tok::SegStar,
            (_, Segment::Many { .. }) => Tok::AnyStar,
        };
        let rest = if self.offset == len {
            Self {
                segment: self.segment + 1,
                offset: 0,
                ..self
            }
        } else {
            Self {
                offset: self.offset + 1,
                ..self
            }
        };
        Some((tok, rest))
    }
}

/// Whether permission glob `glob` covers `text` *textually*: `glob` matches the token
/// string `text` where a literal byte of `glob` matches only the equal [`Tok::Byte`] and a
/// `*` of `glob` matches any run of tokens, wildcard tokens included. For a `text` without
/// wildcards this is the ordinary glob match of a path.
///
/// Soundness: if `covers(glob, text)` then every string `s` that `text` matches is matched
/// by `glob`. Proof: a successful match splits `text` into consecutive blocks, each matched
/// either by one literal byte of `glob` (the block is that one byte token) or by one `*` of
/// `glob` (the block is any run of tokens). `s` arises from `text` by replacing each
/// wildcard token by some string of its set and each byte token by itself. Apply that
/// replacement block by block: a literal block stays the same byte, still matched by the
/// same literal of `glob`; a `*` block becomes some string, and `*` matches every string.
/// The blocks' images concatenate to `s`, in order, so `glob` matches `s`. ∎
///
/// The greedy single-star backtracking of [`Glob::matches`] is exact for this token
/// alphabet (it is the classic algorithm with tokens for characters); at worst
/// O(glob length × text length), linear in practice; no allocation.
fn covers<T: Tokens>(glob: &Glob, text: T) -> bool {
    let glob = glob.as_str().as_bytes();
    let (mut p, mut t) = (0, text);
    let mut star: Option<(usize, T)> = None;
    while let Some((tok, rest)) = t.split_first() {
        if glob.get(p) == Some(&b'*') {
            star = Some((p, t));
            p += 1;
        } else if glob.get(p).is_some_and(|&c| tok == Tok::Byte(c)) {
            p += 1;
            t = rest;
        } else if let Some((sp, st)) = star {
            // Let the last `*` absorb one more token and retry after it.
            let Some((_, after)) = st.split_first() else {
                return false;
            };
            p = sp + 1;
            t = after;
            star = Some((sp, after));
        } else {
            return false;
        }
    }
    glob[p..].iter().all(|&c| c == b'*')
}

/// Whether some string is matched both by permission glob `glob` (`*`: any run of bytes)
/// and by `text`. Exact over strings.
///
/// A dynamic programme over the product of the two: a state `(i, j)` says that some
/// prefix of a common string takes `glob` to position `i` and `text` to token `j`. Moves:
/// past a `*` of either side without reading (ε); one byte read by both sides, where a
/// literal advances, a `*` of `glob` stays, a [`Tok::SegStar`] stays on any byte but `/` and
/// a [`Tok::AnyStar`] stays on any byte. Both stars reading together loop in place and are
/// never needed. The strings overlap iff `(len(glob), len(text))` is reachable. Column by
/// column over `text`, keeping the reachable `i`s: O(|glob| × |text|) time, two columns of
/// |glob| + 1 flags, on the stack up to 64-byte globs.
fn overlaps<T: Tokens>(glob: &Glob, text: T) -> bool {
    let glob = glob.as_str().as_bytes();
    // Quick refusal: the literal prefixes must agree until either side's first wildcard.
    let mut t = text;
    for &c in glob.iter().take_while(|&&c| c != b'*') {
        match t.split_first() {
            Some((Tok::Byte(d), rest)) if d == c => t = rest,
            Some((Tok::Byte(_), _)) | None => return false,
            Some(_) => break,
        }
    }
    const STACK: usize = 65;
    let n = glob.len() + 1;
    if n <= STACK {
        let (mut a, mut b) = ([false; STACK], [false; STACK]);
        overlap_columns(glob, text, &mut a[..n], &mut b[..n])
    } else {
        overlap_columns(glob, text, &mut vec![false; n], &mut vec![false; n])
    }
}

fn overlap_columns<'b, T: Tokens>(
    glob: &[u8],
    mut text: T,
    mut cur: &'b mut [bool],
    mut next: &'b mut [bool],
) -> bool {
    cur.fill(false);
    cur[0] = true;
    loop {
        let head = text.split_first();
        // Moves that keep `text` at this token: past a `*` of `glob`, or a literal of `glob`
        // read by this token's wildcard.
        for i in 0..glob.len() {
            let advance = match (glob[i], head) {
                (b'*', _) => true,
                (_, Some((Tok::AnyStar, _))) => true,
                (c, Some((Tok::SegStar, _))) => c != b'/',
                _ => false,
            };
            if cur[i] && advance {
                cur[i + 1] = true;
            }
        }
        let Some((tok, rest)) = head else {
            return cur[glob.len()];
        };
        // Moves past this token: ε past a wildcard, or one byte read by both.
        next.fill(false);
        let mut alive = false;
        for i in 0..=glob.len() {
            if !cur[i] {
                continue;
            }
            match (tok, glob.get(i)) {
                (Tok::SegStar | Tok::AnyStar, _) | (Tok::Byte(_), Some(b'*')) => next[i] = true,
                (Tok::Byte(d), Some(&c)) if c == d => next[i + 1] = true,
                _ => continue,
            }
            alive = true;
        }
        if !alive {
            return false;
        }
        std::mem::swap(&mut cur, &mut next);
        text = rest;
    }
}

#[cfg(test)]
mod tests;
