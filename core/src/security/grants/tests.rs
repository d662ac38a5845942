//! Tests of the permission engine: the reference's examples, templates, merging, and
//! proptests of coverage and overlap against brute force.
use super::*;
use proptest::prelude::*;
use serde_json::{Value, json};

fn entry(actions: &[Right], prohibit: &[Right]) -> PermissionEntry {
    PermissionEntry {
        actions: actions.iter().copied().collect(),
        prohibit: prohibit.iter().copied().collect(),
    }
}

fn group(name: &str, permissions: &[(&str, PermissionEntry)]) -> Group {
    Group {
        name: name.into(),
        permissions: permissions
            .iter()
            .map(|(g, e)| ((*g).to_owned(), e.clone()))
            .collect(),
        ..Group::default()
    }
}

fn user(name: &str, custom: Value) -> User {
    User {
        username: name.into(),
        custom_data: custom.as_object().cloned().unwrap_or_default(),
        ..User::default()
    }
}

fn grants(user: &User, groups: &[Group]) -> Grants {
    let groups: Vec<&Group> = groups.iter().collect();
    Grants::compile(user, &groups, &SessionFacts::default()).unwrap()
}

fn path(s: &str) -> Path {
    Path::parse(s).unwrap()
}

fn native(s: &str) -> Pattern {
    Pattern::native(s).unwrap()
}

fn glob(s: &str) -> Glob {
    Glob::parse(s).unwrap()
}

use Right::{All, Get, On, Remove, Set};

/// The reference's group TEST (add a group; upsert a permission; remove a permission by
/// upserting a group).
#[test]
fn reference_group_example() {
    let test = group(
        "TEST",
        &[
            ("/test/path/*", entry(&[Get, Set], &[])),
            ("/test/allow/all", entry(&[All], &[])),
            ("/test/do/not/subscribe", entry(&[], &[On])),
        ],
    );
    let g = grants(&user("TEST", json!({})), std::slice::from_ref(&test));
    let cases: &[(Right, &str, bool)] = &[
        (Get, "/test/path/1", true),
        (Set, "/test/path/1/2", true),
        (Remove, "/test/path/1", false),
        (On, "/test/path/1", false),
        (Get, "/test/path", false),
        (Get, "/test/allow/all", true),
        (Set, "/test/allow/all", true),
        (Remove, "/test/allow/all", true),
        (On, "/test/allow/all", true),
        (All, "/test/allow/all", true),
        (All, "/test/path/1", false),
        (Get, "/test/allow/all/below", false),
        (On, "/test/do/not/subscribe", false),
        (Get, "/test/do/not/subscribe", false),
        (Get, "/elsewhere", false),
    ];
    for (right, p, expected) in cases {
        assert_eq!(g.allows_path(*right, &path(p)), *expected, "{right:?} {p}");
    }
    assert!(g.allows_glob(Get, &glob("/test/path/*")));
    assert!(g.allows_glob(Get, &glob("/test/path/a*")));
    assert!(!g.allows_glob(Get, &glob("/test/*")));
    assert!(!g.allows_pattern(On, &native("/test/do/not/subscribe")));
    // upsertPermission('TEST', '/test/path/*', 'on'): now it may subscribe there.
    let mut upserted = test.clone();
    upserted
        .permissions
        .get_mut("/test/path/*")
        .unwrap()
        .actions
        .insert(On);
    let g = grants(&user("TEST", json!({})), &[upserted]);
    for p in [
        "/test/path/x",
        "/test/path/*",
        "/test/path/**",
        "/test/path/*/y",
    ] {
        assert!(g.allows_pattern(On, &native(p)), "{p}");
    }
    assert!(!g.allows_pattern(On, &native("/test/*")));
}

/// Reference USER PERMISSIONS: permissions directly on the user.
#[test]
fn user_permissions_apply_without_groups() {
    let mut u = user("test_username", json!({}));
    u.permissions
        .insert("/test/path/*".into(), entry(&[On, Set], &[]));
    let g = grants(&u, &[]);
    assert!(g.allows_path(Set, &path("/test/path/a")));
    assert!(g.allows_pattern(On, &native("/test/path/*")));
    assert!(!g.allows_path(Get, &path("/test/path/a")));
    assert!(!Grants::default().allows_path(Get, &path("/test/path/a")));
}

/// Reference TEMPLATED PERMISSIONS, including its `*`-in-custom-data example.
#[test]
fn reference_templated_example() {
    let templated = group(
        "TEST GROUP",
        &[
            ("/gauges/{{user.username}}", entry(&[All], &[])),
            ("/gauges/{{user.username}}/*", entry(&[All], &[])),
            (
                "/custom/{{user.custom_data.custom_field1}}",
                entry(&[Get, Set], &[]),
            ),
            (
                "users/{{user.custom_data.test}}/gauges/*",
                entry(&[On, Set], &[]),
            ),
        ],
    );
    let name = "TEST USER@blah.com1528278832638";
    let u = user(
        name,
        json!({"custom_field1": "custom_field1_value", "test": "*"}),
    );
    let g = grants(&u, &[templated]);
    assert!(g.allows_pattern(On, &native(&format!("/gauges/{name}"))));
    assert!(g.allows_path(Set, &path(&format!("/gauges/{name}"))));
    assert!(g.allows_path(Get, &path(&format!("/gauges/{name}/logins"))));
    assert!(!g.allows_path(Get, &path("/gauges/someone else")));
    assert!(g.allows_path(Get, &path("/custom/custom_field1_value")));
    assert!(!g.allows_path(On, &path("/custom/custom_field1_value")));
    assert!(!g.allows_path(Set, &path("/users/other/gauges/x")));
    assert!(!g.allows_pattern(On, &native("/users/*/gauges/*")));
    assert_eq!(g.voided().len(), 1);
    assert_eq!(
        g.voided()[0].reason,
        VoidReason::Wildcard {
            variable: "user.custom_data.test".into()
        }
    );
    assert_eq!(g.voided()[0].prohibits_on, None);
}

#[test]
fn client_id_templates_follow_the_session() {
    let mut u = user("ann", json!({}));
    u.permissions.insert(
        "/devices/{{session.client_id}}/*".into(),
        entry(&[Set], &[]),
    );
    let session = |id: Option<&str>| SessionFacts {
        client_id: id.map(Into::into),
        ..SessionFacts::default()
    };
    let g = Grants::compile(&u, &[], &session(Some("dev-1"))).unwrap();
    assert!(g.allows_path(Set, &path("/devices/dev-1/t")));
    assert!(!g.allows_path(Set, &path("/devices/dev-2/t")));
    for id in [None, Some("#"), Some("a/b")] {
        let g = Grants::compile(&u, &[], &session(id)).unwrap();
        assert!(!g.allows_path(Set, &path("/devices/dev-1/t")), "{id:?}");
        assert!(g.permissions().is_empty(), "{id:?}");
    }
}

/// Issue 5: a voided prohibit must not become an allow; it prohibits its widened glob.
#[test]
fn voided_prohibits_widen_instead_of_vanishing() {
    let team = group(
        "team",
        &[
            ("/data/*", entry(&[Get], &[])),
            (
                "/data/{{user.custom_data.team}}/private",
                entry(&[Get], &[Get]),
            ),
        ],
    );
    let teams = [
        json!({}),
        json!({"team": "*"}),
        json!({"team": ""}),
        json!({"team": {}}),
    ];
    for custom in teams {
        let g = grants(&user("ann", custom.clone()), std::slice::from_ref(&team));
        assert!(!g.allows_path(Get, &path("/data/red/private")), "{custom}");
        assert!(g.allows_path(Get, &path("/data/red/public")), "{custom}");
        let widened = g.voided()[0].prohibits_on.as_ref().unwrap();
        assert_eq!(widened.as_str(), "/data/*/private");
        assert_eq!(g.permissions()["/data/*/private"], entry(&[], &[Get]));
    }
    let g = grants(&user("ann", json!({"team": "red"})), &[team]);
    assert!(!g.allows_path(Get, &path("/data/red/private")));
    assert!(g.allows_path(Get, &path("/data/blue/private")));
    assert!(g.voided().is_empty());
}

#[test]
fn unknown_variables_fail_compilation_naming_the_owner() {
    let bad = group("ops", &[("/x/{{user.name}}", entry(&[Get], &[]))]);
    let err =
        Grants::compile(&user("ann", json!({})), &[&bad], &SessionFacts::default()).unwrap_err();
    let GrantsError::Template { owner, source } = &err;
    assert_eq!(owner, &PermissionOwner::Group("ops".into()));
    assert!(matches!(source, TemplateError::UnknownVariable { .. }));
    assert!(err.to_string().contains("group `ops`"), "{err}");
}

/// Issue 5: the reference replaces one group's entry by another's; pathmq merges them.
#[test]
fn two_groups_on_one_path_merge() {
    let a = group(
        "a",
        &[("/m/*", entry(&[Get], &[])), ("/m/x", entry(&[], &[Get]))],
    );
    let b = group(
        "b",
        &[("m/*", entry(&[Set], &[])), ("/m/x", entry(&[], &[Set]))],
    );
    let g = grants(&user("ann", json!({})), &[a, b]);
    assert_eq!(g.permissions()["/m/*"], entry(&[Get, Set], &[]));
    assert_eq!(g.permissions()["/m/x"], entry(&[], &[Get, Set]));
    assert!(g.allows_path(Get, &path("/m/y")) && g.allows_path(Set, &path("/m/y")));
    assert!(!g.allows_path(Get, &path("/m/x")) && !g.allows_path(Set, &path("/m/x")));
    assert!(!g.allows_path(Remove, &path("/m/y")));
}

#[test]
fn a_prohibit_beats_an_allow_from_anywhere() {
    let open = group("open", &[("/p/*", entry(&[All], &[]))]);
    let closed = group("closed", &[("/p/secret", entry(&[], &[Get, On]))]);
    let mut u = user("ann", json!({}));
    u.permissions
        .insert("/p/mine".into(), entry(&[], &[Remove]));
    let g = grants(&u, &[open, closed]);
    assert!(!g.allows_path(Get, &path("/p/secret")));
    assert!(g.allows_path(Set, &path("/p/secret")));
    assert!(g.allows_path(Get, &path("/p/other")));
    assert!(!g.allows_path(Remove, &path("/p/mine")));
    assert!(!g.allows_path(All, &path("/p/mine")));
    assert!(
        !g.allows_glob(Get, &glob("/p/*")),
        "the glob reaches /p/secret"
    );
    assert!(g.allows_glob(Get, &glob("/p/other/*")));
    assert!(g.allows_glob(Remove, &glob("/p/o*")));
    assert!(!g.allows_glob(Remove, &glob("/p/m*")));
    for (pattern, expected) in [
        ("/p/*", false),
        ("/p/**", false),
        ("/**", false),
        ("/p/other", true),
        ("/p/other/**", true),
        ("/p/secret/*", true),
    ] {
        assert_eq!(
            g.allows_pattern(On, &native(pattern)),
            expected,
            "{pattern}"
        );
    }
}

/// Issue 5: "subscription to `#` by a user allowed only `sensors/{{user.username}}/#`".
#[test]
fn a_subtree_permission_does_not_reach_its_parents() {
    let devices = group(
        "devices",
        &[("/sensors/{{user.username}}/**", entry(&[On], &[]))],
    );
    let g = grants(&user("ann", json!({})), std::slice::from_ref(&devices));
    for (pattern, expected) in [
        ("/sensors/ann/temp", true),
        ("/sensors/ann/*", true),
        ("/sensors/ann/**", true),
        ("/sensors/ann/*/x", true),
        ("/sensors/**", false),
        ("/**", false),
        ("*", false),
        ("/sensors/*", false),
        ("/sensors/*/temp", false),
        ("/sensors/bob/**", false),
        ("/sensors/ann", false),
    ] {
        assert_eq!(
            g.allows_pattern(On, &native(pattern)),
            expected,
            "{pattern}"
        );
    }
    for (filter, expected) in [
        ("#", false),
        ("sensors/#", false),
        ("sensors/+", false),
        ("+/ann/temp", false),
        ("sensors/ann/+", true),
        ("sensors/ann/temp", true),
        // `#` also matches `sensors/ann` itself, which the permission does not reach.
        ("sensors/ann/#", false),
    ] {
        let pattern = Pattern::mqtt(filter).unwrap();
        assert_eq!(g.allows_pattern(On, &pattern), expected, "{filter}");
    }
    let mut with_parent = devices;
    with_parent
        .permissions
        .insert("/sensors/{{user.username}}".into(), entry(&[On], &[]));
    let g = grants(&user("ann", json!({})), &[with_parent]);
    assert!(g.allows_pattern(On, &Pattern::mqtt("sensors/ann/#").unwrap()));
    assert!(!g.allows_pattern(On, &Pattern::mqtt("sensors/#").unwrap()));
}

/// Reference NESTED PERMISSIONS: the listener example, for `get` and `on`.
#[test]
fn nested_permissions_filter_partly_allowed_requests() {
    let nested = group(
        "TEST",
        &[
            ("/test/path/1", entry(&[Get, On], &[])),
            ("/test/path/2/3", entry(&[Get, On], &[])),
            ("/test/path/4/5/6", entry(&[Get, On], &[])),
            ("/test/path/4/5/6/*", entry(&[], &[On])),
            ("/test/path/7/*", entry(&[Get, On, Remove], &[])),
            ("/test/path/8/*", entry(&[], &[Get])),
        ],
    );
    let off = grants(&user("ann", json!({})), &[nested]);
    assert!(!off.nested());
    assert!(!off.allows_glob(Get, &glob("/test/path/*")));
    assert!(!off.allows_pattern(On, &native("/test/path/**")));
    let on = off.with_nested(true);
    assert!(on.nested());
    assert_eq!(on.glob_access(Get, &glob("/test/path/*")), Access::Filtered);
    assert_eq!(
        on.pattern_access(On, &native("/test/path/**")),
        Access::Filtered
    );
    assert_eq!(on.glob_access(Get, &glob("/test/path/7/*")), Access::Full);
    assert_eq!(on.glob_access(Get, &glob("/other/*")), Access::Denied);
    assert_eq!(
        on.glob_access(Get, &glob("/test/path/8/x*")),
        Access::Denied
    );
    assert_eq!(
        on.glob_access(Remove, &glob("/test/path/*")),
        Access::Denied
    );
    assert_eq!(on.glob_access(All, &glob("/test/path/*")), Access::Denied);
    assert_eq!(
        on.pattern_access(On, &native("/test/path/4/5/6/*")),
        Access::Denied
    );
    for (p, expected) in [
        ("/test/path/1", true),
        ("/test/path/2/3", true),
        ("/test/path/4/5/6", true),
        ("/test/path/9", false),
        ("/test/path/8/x", false),
    ] {
        assert_eq!(on.allows_record(Get, &path(p)), expected, "{p}");
    }
}

/// Compile once, decide many times: 100 permissions, decisions without allocation.
/// No timing assertion; `cargo test --release` shows the speed.
#[test]
fn a_hundred_permissions_decide() {
    let mut u = user("ann", json!({"team": "red"}));
    for i in 0..90 {
        let glob = format!("/tenants/{{{{user.custom_data.team}}}}/app{i}/*");
        u.permissions.insert(glob, entry(&[Get, Set, On], &[]));
    }
    for i in 0..10 {
        u.permissions
            .insert(format!("/tenants/red/app{i}/secret*"), entry(&[], &[All]));
    }
    let g = grants(&u, &[]);
    let (yes, no) = (
        path("/tenants/red/app89/x/y/z"),
        path("/tenants/red/app9/secret"),
    );
    let sub = native("/tenants/red/app42/**");
    let started = std::time::Instant::now();
    for _ in 0..1_000 {
        assert!(g.allows_path(Get, &yes));
        assert!(!g.allows_path(Get, &no));
        assert!(g.allows_pattern(On, &sub));
    }
    // Informational only (no assertion): three decisions per round.
    eprintln!("100 permissions: {:?} per round", started.elapsed() / 1_000);
}

/// The reference's WEB PATH LEVEL SECURITY example: `@HTTP` globs guard routes by HTTP
/// method, `_ADMIN`'s `*` on `/*` reaches every route, prohibits win, and an `@HTTP`
/// glob grants nothing on data (while the data rights keep their meaning).
#[test]
fn http_permissions_guard_routes_by_method_and_not_data() {
    use Right::{Delete, Head, Options, Patch, Post, Put};
    let web = group(
        "TEST GROUP",
        &[
            ("/@HTTP/secure/route/*", entry(&[Get], &[])),
            ("/@HTTP/secure/another/route/test", entry(&[Put, Post], &[])),
            ("/@HTTP/secure/route/hidden", entry(&[], &[Get])),
            ("/data/*", entry(&[Get, Set], &[])),
        ],
    );
    let g = grants(&user("ann", json!({})), &[web]);
    for (right, route, expected) in [
        (Get, "/@HTTP/secure/route/test", true),
        (Get, "/@HTTP/secure/route/a/b", true),
        (Post, "/@HTTP/secure/route/test", false),
        (Head, "/@HTTP/secure/route/test", false),
        (Get, "/@HTTP/secure/route/hidden", false),
        (Put, "/@HTTP/secure/another/route/test", true),
        (Post, "/@HTTP/secure/another/route/test", true),
        (Get, "/@HTTP/secure/another/route/test", false),
        (Delete, "/@HTTP/secure/another/route/test", false),
        (Get, "/@HTTP/data/x", false),
        (Get, "/@HTTP/secure/route", false),
        (Set, "/@HTTP/secure/route/test", false),
        (All, "/@HTTP/secure/route/test", false),
        // No wildcard in a request path, and nothing outside `/@HTTP/`.
        (Get, "/@HTTP/secure/route/*", false),
        (Get, "/secure/route/test", false),
        (Get, "/@HTTPsecure/route/test", false),
    ] {
        assert_eq!(g.allows_http(right, route), expected, "{right:?} {route}");
    }
    // The `@HTTP` globs grant nothing on data; data permissions keep their meaning.
    assert!(!g.allows_path(Get, &path("/@HTTP/secure/route/test")));
    assert!(!g.allows_glob(Get, &glob("/@HTTP/secure/route/*")));
    assert!(!g.allows_pattern(On, &native("/@HTTP/secure/route/*")));
    assert!(g.allows_path(Get, &path("/data/x")) && g.allows_path(Set, &path("/data/x")));
    assert!(
        !g.allows_path(Post, &path("/data/x")),
        "an HTTP right on data"
    );
    assert_eq!(g.glob_access(Put, &glob("/data/*")), Access::Denied);

    let admin = group("_ADMIN", &[("/*", entry(&[All], &[]))]);
    let a = grants(&user("_ADMIN", json!({})), &[admin]);
    for right in [Get, Post, Put, Delete, Patch, Head, Options, All] {
        assert!(a.allows_http(right, "/@HTTP/any/route"), "{right:?}");
    }
    assert!(a.allows_path(All, &path("/@HTTP/data/is/just/data")));
    assert!(!a.allows_http(Set, "/@HTTP/any/route"));
}

// --- The matching algorithms against brute force over paths of a, b and `/`. ---

/// Every path `/` + up to 8 characters of `a`, `b`, `/` (the empty one is no path).
fn small_paths() -> &'static [Path] {
    static PATHS: std::sync::OnceLock<Vec<Path>> = std::sync::OnceLock::new();
    PATHS.get_or_init(|| {
        let mut out = Vec::new();
        let mut level = vec![String::from("/")];
        for _ in 0..8 {
            let mut deeper = Vec::new();
            for s in &level {
                for c in ['a', 'b', '/'] {
                    deeper.push(format!("{s}{c}"));
                }
            }
            out.extend(deeper.iter().map(|s| path(s)));
            level = deeper;
        }
        out
    })
}

/// The bound on a shortest common string: each of its characters consumes a literal of
/// one side at least, and the leading `/` consumes one of each.
fn literals(text: impl Tokens) -> usize {
    let mut n = 0;
    let mut t = text;
    while let Some((tok, rest)) = t.split_first() {
        n += usize::from(matches!(tok, Tok::Byte(_)));
        t = rest;
    }
    n
}

fn permission_glob() -> impl Strategy<Value = Glob> {
    proptest::collection::vec(prop_oneof!["a", "b", "/", "\\*"], 1..4)
        .prop_map(|parts| glob(&format!("/{}", parts.concat())))
}

/// Native or MQTT patterns of at most two segments plus an optional `**`/`#`.
fn pattern() -> impl Strategy<Value = Pattern> {
    let segment = prop_oneof!["", "a", "b", "ab", "\\*"];
    (
        any::<bool>(),
        proptest::collection::vec(segment, 1..3),
        any::<bool>(),
    )
        .prop_filter_map("not a pattern", |(mqtt, segments, many)| {
            let mut levels: Vec<&str> = segments.iter().map(|s| s.as_str()).collect();
            if mqtt {
                for l in &mut levels {
                    if *l == "*" {
                        *l = "+";
                    }
                }
            }
            if many {
                levels.push(if mqtt { "#" } else { "**" });
            }
            let text = levels.join("/");
            if mqtt {
                Pattern::mqtt(&text).ok()
            } else {
                Pattern::native(&format!("/{text}")).ok()
            }
        })
}

fn request_views(pattern: &Pattern) -> Vec<PatternText<'_>> {
    let (views, n) = PatternText::views(pattern);
    views[..n].to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// `overlaps` finds a common path exactly when one exists.
    #[test]
    fn overlap_of_a_pattern_is_exact(p in permission_glob(), t in pattern()) {
        let views = request_views(&t);
        let fast = views.iter().any(|&v| overlaps(&p, v));
        let bound = views.iter().map(|&v| literals(v)).max().unwrap_or(0)
            + literals(GlobText(p.as_str().as_bytes())) - 1;
        prop_assume!(bound <= 9);
        let slow = small_paths()
            .iter()
            .any(|x| p.matches(x.as_str()) && t.matches(x, None));
        prop_assert_eq!(fast, slow, "glob {} pattern {}", p, t);
    }

    #[test]
    fn overlap_of_a_glob_is_exact(p in permission_glob(), r in permission_glob()) {
        let fast = overlaps(&p, GlobText(r.as_str().as_bytes()));
        let slow = small_paths()
            .iter()
            .any(|x| p.matches(x.as_str()) && r.matches(x.as_str()));
        prop_assert_eq!(fast, slow, "glob {} request {}", p, r);
    }

    /// Whatever `covers` allows, every path of the request is allowed; on a path it is
    /// the glob match.
    #[test]
    fn coverage_is_sound(a in permission_glob(), t in pattern(), r in permission_glob()) {
        if request_views(&t).iter().all(|&v| covers(&a, v)) {
            for x in small_paths().iter().filter(|x| t.matches(x, None)) {
                prop_assert!(a.matches(x.as_str()), "{} covers {} but not {}", a, t, x);
            }
        }
        if covers(&a, GlobText(r.as_str().as_bytes())) {
            for x in small_paths().iter().filter(|x| r.matches(x.as_str())) {
                prop_assert!(a.matches(x.as_str()), "{} covers {} but not {}", a, r, x);
            }
        }
        for x in small_paths().iter().take(200) {
            let text = GlobText(x.as_str().as_bytes());
            prop_assert_eq!(covers(&a, text), a.matches(x.as_str()));
            prop_assert_eq!(overlaps(&a, text), a.matches(x.as_str()));
        }
    }
}

#[test]
fn coverage_and_overlap_cases() {
    let cases: &[(&str, &str, bool, bool)] = &[
        // (permission glob, native pattern, covers, overlaps)
        ("/a/*", "/a/*", true, true),
        ("/a/*", "/a/**", true, true),
        ("/a/*", "/a/b/*/c", true, true),
        ("/a/*", "/*", false, false),
        ("/a*", "/*", false, true),
        ("/t/*/secret", "/t/a/**", false, true),
        ("/a/*", "/a", false, false),
        ("/a/*", "/b/**", false, false),
        ("/a/b*", "/a/*", false, true),
        ("/a/*/c", "/a/*/c", true, true),
        ("/a/*/c", "/a/*/d", false, false),
        ("/a/x/c", "/a/*/c", false, true),
        ("/a/x/y/c", "/a/*/c", false, false),
        ("/a/x/y/c", "/a/**", false, true),
        ("/*", "/**", true, true),
        ("/$SYS/*", "/**", false, true),
    ];
    for (a, p, cover, overlap) in cases {
        let (a, p) = (glob(a), native(p));
        let views = request_views(&p);
        assert_eq!(
            views.iter().all(|&v| covers(&a, v)),
            *cover,
            "covers {a} {p}"
        );
        assert_eq!(
            views.iter().any(|&v| overlaps(&a, v)),
            *overlap,
            "overlaps {a} {p}"
        );
    }
    let long = glob(&format!("/{}*/x", "a".repeat(100)));
    assert!(overlaps(
        &long,
        PatternText::new(native(&format!("/{}/*", "a".repeat(100))).segments())
    ));
}
