//! A compiled rule and how a `set` is checked against the rules.

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet};

use jsonschema::Validator;
use pathmq_core::{Format, Glob, Increment, LayerContext, Path, Payload, SetOptions};
use serde_json::{Map, Value};

/// The longest schema message passed on (it can quote the payload), in bytes.
const MAX_MESSAGE: usize = 300;

/// One rule, ready to check.
#[derive(Debug)]
pub(crate) struct Rule {
    pub(crate) glob: Glob,
    pub(crate) schema: Option<Validator>,
    pub(crate) fields: Option<Fields>,
}

/// A rule's field allow-lists.
#[derive(Debug)]
pub(crate) struct Fields {
    /// The `"*"` list: everyone's.
    pub(crate) anyone: Option<FieldSet>,
    /// The lists by group name.
    pub(crate) groups: BTreeMap<String, FieldSet>,
}

/// One allow-list.
#[derive(Debug)]
pub(crate) enum FieldSet {
    /// The list holds `"*"`: every field.
    Any,
    /// These fields.
    Only(BTreeSet<String>),
}

impl FieldSet {
    fn allows(&self, field: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Only(fields) => fields.contains(field),
        }
    }
}

/// What a `set` gives, as the rules see it; its JSON is parsed once, when a rule first
/// needs it.
struct Given<'a> {
    payload: &'a Payload,
    increment: Option<&'a Increment>,
    json: OnceCell<Option<Value>>,
}

impl Given<'_> {
    /// The JSON value checked against schemas: the payload's, or for an increment the
    /// object it merges in, `{"<gauge>": {"value": <by>}}`; `None` for text and binary.
    fn json(&self) -> Option<&Value> {
        let json = self.json.get_or_init(|| match self.increment {
            Some(increment) => {
                let mut gauge = Map::new();
                gauge.insert("value".into(), Value::Number(increment.by.clone()));
                let mut object = Map::new();
                object.insert(increment.gauge.clone(), Value::Object(gauge));
                Some(Value::Object(object))
            }
            None => self.payload.as_json(),
        });
        json.as_ref()
    }

    /// The top-level fields set, as a native client sees the record (DESIGN.md §4): an
    /// object's keys, `value` for any other JSON value and for text, `value_base64` for
    /// binary.
    fn fields(&self) -> Vec<&str> {
        match (self.payload.format, self.json()) {
            (_, Some(Value::Object(object))) => object.keys().map(String::as_str).collect(),
            (Format::Binary, _) => vec!["value_base64"],
            _ => vec!["value"],
        }
    }
}

/// Checks a `set` of `payload` at `path` by the session `cx` against every rule whose
/// glob matches, in order; `Err` is the first violation, as the client is told it:
/// `<path>: <what is wrong>`.
pub(crate) fn check_set(
    rules: &[Rule],
    cx: &LayerContext<'_>,
    path: &Path,
    payload: &Payload,
    options: &SetOptions,
) -> Result<(), String> {
    let given = Given {
        payload,
        increment: options.increment.as_ref(),
        json: OnceCell::new(),
    };
    for rule in rules.iter().filter(|r| r.glob.matches(path.as_str())) {
        rule.check(cx, &given)
            .map_err(|why| format!("{path}: {why}"))?;
    }
    Ok(())
}

impl Rule {
    fn check(&self, cx: &LayerContext<'_>, given: &Given<'_>) -> Result<(), String> {
        if let Some(fields) = &self.fields {
            check_fields(fields, cx, given)?;
        }
        if let Some(schema) = &self.schema {
            let instance = given.json().ok_or("payload is not JSON")?;
            if let Err(error) = schema.validate(instance) {
                let message = shortened(error.to_string());
                return Err(match error.instance_path().as_str() {
                    "" => message,
                    at => format!("at {at}: {message}"),
                });
            }
        }
        Ok(())
    }
}

/// A user may set a field some list of theirs allows: the `"*"` list's, or one of their
/// groups'. A user none of the lists applies to may set nothing.
fn check_fields(fields: &Fields, cx: &LayerContext<'_>, given: &Given<'_>) -> Result<(), String> {
    let mut lists: Vec<&FieldSet> = fields.anyone.iter().collect();
    lists.extend(cx.groups().filter_map(|group| fields.groups.get(group)));
    if lists.is_empty() {
        return Err("no field is allowed for your groups".into());
    }
    if lists.iter().any(|list| matches!(list, FieldSet::Any)) {
        return Ok(());
    }
    match (given.fields().into_iter()).find(|field| !lists.iter().any(|list| list.allows(field))) {
        Some(field) => Err(format!(
            "field {} is not allowed for your groups",
            Value::from(field)
        )),
        None => Ok(()),
    }
}

/// `message`, cut to about [`MAX_MESSAGE`] bytes at a character boundary.
fn shortened(mut message: String) -> String {
    if message.len() > MAX_MESSAGE {
        let mut end = MAX_MESSAGE;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    message
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use pathmq_core::security::{Grants, Identity};
    use pathmq_core::{SessionId, SessionInfo};
    use serde_json::json;

    use super::*;
    use crate::config::{ValidateConfig, compile};

    /// Bytes as an MQTT PUBLISH brings them.
    fn bytes(b: &'static [u8]) -> Payload {
        Payload::detect(b.to_vec().into())
    }

    fn rules(text: &str) -> Vec<Rule> {
        compile(&toml::from_str::<ValidateConfig>(text).unwrap()).unwrap()
    }

    fn session() -> SessionInfo {
        SessionInfo {
            id: SessionId::new(),
            protocol: "mqtt",
            peer: None,
            client_id: None,
        }
    }

    fn member_of(groups: &[&str]) -> Option<Arc<Identity>> {
        Some(Arc::new(Identity {
            username: "ann".into(),
            grants: Grants::default(),
            groups: groups
                .iter()
                .map(|g| g.to_string())
                .collect::<BTreeSet<_>>(),
            login: None,
        }))
    }

    fn check(
        rules: &[Rule],
        groups: Option<&[&str]>,
        path: &str,
        payload: &Payload,
    ) -> Result<(), String> {
        check_with(rules, groups, path, payload, &SetOptions::default())
    }

    fn check_with(
        rules: &[Rule],
        groups: Option<&[&str]>,
        path: &str,
        payload: &Payload,
        options: &SetOptions,
    ) -> Result<(), String> {
        let info = session();
        let cx = LayerContext::new(&info, groups.and_then(member_of));
        check_set(rules, &cx, &Path::parse(path).unwrap(), payload, options)
    }

    const SENSORS: &str = r#"
        [[rules]]
        path = "/sensors/*"
        schema = { type = "object", properties = { temp = { type = "number" } } }
    "#;

    #[test]
    fn schemas_check_matching_paths_and_name_the_pointer() {
        let rules = rules(SENSORS);
        let ok = Payload::json(&json!({"temp": 21.5}));
        assert_eq!(check(&rules, None, "/sensors/a/temp", &ok), Ok(()));
        let hot = Payload::json(&json!({"temp": "hot"}));
        assert_eq!(
            check(&rules, None, "/sensors/a/temp", &hot),
            Err(r#"/sensors/a/temp: at /temp: "hot" is not of type "number""#.into())
        );
        assert_eq!(
            check(&rules, None, "/sensors/a", &Payload::json(&json!(5))),
            Err(r#"/sensors/a: 5 is not of type "object""#.into())
        );
        // Other paths, and the glob's parent itself, are not checked.
        assert_eq!(check(&rules, None, "/other", &hot), Ok(()));
        assert_eq!(check(&rules, None, "/sensors", &hot), Ok(()));
    }

    #[test]
    fn text_and_binary_are_not_json_under_a_schema() {
        let rules = rules(SENSORS);
        for payload in [bytes(b"hot"), bytes(&[0xff, 0x00])] {
            assert_eq!(
                check(&rules, None, "/sensors/a", &payload),
                Err("/sensors/a: payload is not JSON".into())
            );
        }
        // MQTT bytes that are JSON are checked as JSON.
        assert_eq!(
            check(&rules, None, "/sensors/a", &bytes(br#"{"temp": 1}"#)),
            Ok(())
        );
    }

    #[test]
    fn merges_and_increments_are_checked_as_given() {
        let rules = rules(
            r#"
            [[rules]]
            path = "/sensors/*"
            schema = { type = "object", required = ["id"], properties = { count = { type = "object" } } }
            "#,
        );
        let merge = SetOptions {
            merge: true,
            ..SetOptions::default()
        };
        let partial = Payload::json(&json!({"count": {}}));
        let error = check_with(&rules, None, "/sensors/a", &partial, &merge).unwrap_err();
        assert!(error.contains("\"id\" is a required property"), "{error}");
        let increment = SetOptions {
            increment: Some(Increment {
                gauge: "count".into(),
                by: 1.into(),
            }),
            ..SetOptions::default()
        };
        let gauge = Payload::json(&json!("count"));
        let error = check_with(&rules, None, "/sensors/a", &gauge, &increment).unwrap_err();
        assert!(
            error.contains("required"),
            "the merged-in object is checked: {error}"
        );
    }

    const FIELDS: &str = r#"
        [[rules]]
        path = "/sensors/*"
        fields = { devices = ["temp", "unit"], admins = ["*"], "*" = ["note"] }
    "#;

    #[test]
    fn field_lists_are_the_union_of_the_users_groups_and_everyones() {
        let rules = rules(FIELDS);
        let set = |groups: Option<&[&str]>, value: Value| {
            check(&rules, groups, "/sensors/a", &Payload::json(&value))
        };
        assert_eq!(
            set(Some(&["devices"]), json!({"temp": 1, "note": "x"})),
            Ok(())
        );
        assert_eq!(
            set(Some(&["devices", "other"]), json!({"temp": 1, "secret": 2})),
            Err(r#"/sensors/a: field "secret" is not allowed for your groups"#.into())
        );
        assert_eq!(
            set(Some(&["devices", "admins"]), json!({"secret": 2})),
            Ok(())
        );
        // Everyone, logged in or not, has the "*" list.
        assert_eq!(set(None, json!({"note": "x"})), Ok(()));
        assert!(set(None, json!({"temp": 1})).is_err());
        // A non-object is the field "value", as a native client reads it.
        assert!(
            set(Some(&["devices"]), json!(21.5))
                .unwrap_err()
                .contains("\"value\"")
        );
    }

    #[test]
    fn users_no_list_applies_to_may_set_nothing() {
        let rules = rules("[[rules]]\npath = \"/s/*\"\nfields = { devices = [\"temp\"] }");
        for groups in [None, Some(&["others"][..])] {
            assert_eq!(
                check(&rules, groups, "/s/a", &Payload::json(&json!({}))),
                Err("/s/a: no field is allowed for your groups".into())
            );
        }
    }

    #[test]
    fn every_matching_rule_applies_in_order() {
        let text = format!("{FIELDS}\n{SENSORS}");
        let rules = rules(&text);
        let payload = Payload::json(&json!({"temp": "hot"}));
        let error = check(&rules, None, "/sensors/a", &payload).unwrap_err();
        assert!(error.contains("field \"temp\""), "fields first: {error}");
        let error = check(&rules, Some(&["devices"]), "/sensors/a", &payload).unwrap_err();
        assert!(error.contains("is not of type"), "then the schema: {error}");
    }

    #[test]
    fn long_messages_are_shortened() {
        let rules = rules(SENSORS);
        let big = Payload::json(&json!({"temp": "x".repeat(10_000)}));
        let error = check(&rules, None, "/sensors/a", &big).unwrap_err();
        assert!(
            error.len() < MAX_MESSAGE + 40 && error.ends_with('…'),
            "{error}"
        );
    }
}
