//! The template engine: minijinja, strict about undefined values, with our filters
//! (`yaml`, `scalar`, `env_name`) and function (`fail`), and engine errors turned into
//! [`Error::Invalid`] with the template's file, line and offending expression.

use minijinja::{Environment, UndefinedBehavior, Value};
use std::path::PathBuf;

use crate::error::{Error, Result};

/// Shipped templates, by the name `--template` accepts.
pub(crate) const BUILTIN: [(&str, &str, &str); 2] = [
    (
        "margo",
        "templates/margo-compose.yaml.j2",
        include_str!("../../templates/margo-compose.yaml.j2"),
    ),
    (
        "poc",
        "templates/poc-compose.yaml.j2",
        include_str!("../../templates/poc-compose.yaml.j2"),
    ),
];

/// A string as a YAML plain scalar when it reads back as that same string in YAML 1.2 and
/// 1.1 (`siteId`, `ENV.SITE_ID`, a UUID), else quoted (JSON is YAML): safe as a key or a
/// value, whatever the string holds, and readable where it is harmless.
fn scalar(s: String) -> String {
    let simple = !s.is_empty()
        && !s.starts_with(['-', '.'])
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    // Simple words only (no `:`, `/` or `@`, which values may hold but keys should not
    // show), and only those both YAML versions read back as themselves.
    if simple && crate::package::yaml::plain_everywhere(&s) {
        s
    } else {
        serde_json::to_string(&s).expect("a string is JSON")
    }
}

/// The template engine, strict, with our filters.
pub(crate) struct Templates {
    env: Environment<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    pub(crate) fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Any value as a YAML flow literal (JSON is YAML): quoting that cannot break the document.
        env.add_filter(
            "yaml",
            |v: Value| -> std::result::Result<String, minijinja::Error> {
                if v.is_undefined() {
                    return Err(minijinja::Error::new(
                        minijinja::ErrorKind::UndefinedError,
                        "the value passed to `yaml` is not defined",
                    ));
                }
                serde_json::to_string(&v).map_err(|e| {
                    minijinja::Error::new(
                        minijinja::ErrorKind::InvalidOperation,
                        format!("cannot write as YAML: {e}"),
                    )
                })
            },
        );
        // `fail("why")` stops rendering with the template's own message.
        env.add_function(
            "fail",
            |why: String| -> std::result::Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    why,
                ))
            },
        );
        // `siteId` → `SITE_ID`: the environment variable a compose parameter targets.
        env.add_filter("scalar", scalar);
        env.add_filter("env_name", |s: String| -> String {
            let mut out = String::new();
            let mut prev_lower = false;
            for c in s.chars() {
                if c.is_ascii_uppercase() && prev_lower {
                    out.push('_');
                }
                prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
                out.push(if c == '-' || c == '.' {
                    '_'
                } else {
                    c.to_ascii_uppercase()
                });
            }
            out
        });
        Templates { env }
    }

    /// Adds a template under `name` (its file, for messages).
    pub(crate) fn add(&mut self, name: &str, source: String) -> Result<()> {
        self.env
            .add_template_owned(name.to_string(), source)
            .map_err(|e| template_error(&e, name))
    }

    pub(crate) fn render(&self, name: &str, context: &Value) -> Result<String> {
        let t = self
            .env
            .get_template(name)
            .map_err(|e| template_error(&e, name))?;
        t.render(context).map_err(|e| template_error(&e, name))
    }
}

/// An engine error as `file:line: what (in `expression`)`.
fn template_error(e: &minijinja::Error, fallback: &str) -> Error {
    let name = e.name().unwrap_or(fallback).to_string();
    // `fail(...)` says what is wrong itself; for the rest, show the expression at fault.
    let expr = match (e.range(), e.template_source(), e.kind()) {
        (_, _, minijinja::ErrorKind::InvalidOperation) => None,
        (Some(r), Some(src), _) => src.get(r).map(|s| s.trim().to_string()),
        _ => None,
    };
    let what = match e.kind() {
        minijinja::ErrorKind::UndefinedError => "undefined value".to_string(),
        minijinja::ErrorKind::SyntaxError => "template syntax error".to_string(),
        minijinja::ErrorKind::InvalidOperation if e.detail().is_some() => {
            "cannot render".to_string()
        }
        k => k.to_string(),
    };
    let mut message = match e.detail() {
        Some(d) => format!("{what}: {d}"),
        None => what,
    };
    if let Some(x) = expr.filter(|x| !x.is_empty()) {
        message.push_str(&format!(" in `{x}`"));
    }
    Error::Invalid {
        file: Some(PathBuf::from(name)),
        line: e.line(),
        message,
        hint: Some(
            "the context holds app, deployment, package, git and values; see the README".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undefined_values_name_the_file_line_and_expression() {
        let mut t = Templates::new();
        t.add("t.j2", "a: 1\nb: {{ values.missing }}\n".into())
            .unwrap();
        let err = t
            .render(
                "t.j2",
                &Value::from(minijinja::value::Serde(serde_json::json!({"values": {}}))),
            )
            .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("t.j2:2: undefined value"), "{text}");
        assert!(text.contains("values.missing"), "{text}");
    }

    #[test]
    fn undefined_items_are_errors_even_through_filters() {
        let mut t = Templates::new();
        t.add("p.j2", "x: 1\nv: {{ values['siteId'] | yaml }}\n".into())
            .unwrap();
        let err = t
            .render(
                "p.j2",
                &Value::from(minijinja::value::Serde(serde_json::json!({"values": {}}))),
            )
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("p.j2:2: undefined value"), "{err}");
    }

    #[test]
    fn hostile_names_and_values_cannot_change_the_margo_documents_structure() {
        let hostile = "site: Id\n    value: pwned\n  x";
        let (_, _, source) = BUILTIN[0];
        let mut t = Templates::new();
        t.add("margo", source.to_string()).unwrap();
        let context = serde_json::json!({
            "app": {"id": "poc-app"},
            "deployment": {"id": "6f1c3c52-9d3a-4a8e-9a55-0e6a1f3c2b10", "name": "a: b", "namespace": "x\ny: z"},
            "package": {"oci": "oci://r/p", "tag": "1.0.0"},
            "values": {hostile: 1, "siteId": "{{ 7*7 }}", "note": "a: b\nnamespace: evil"},
        });
        let text = t
            .render("margo", &Value::from(minijinja::value::Serde(context)))
            .unwrap();
        let doc: serde_json::Value = serde_norway::from_str(&text).unwrap();
        let keys = |v: &serde_json::Value| {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(
            keys(&doc),
            ["apiVersion", "kind", "metadata", "spec"],
            "{text}"
        );
        assert_eq!(keys(&doc["metadata"]), ["annotations", "name", "namespace"]);
        assert_eq!(doc["metadata"]["name"], "a: b");
        assert_eq!(doc["metadata"]["namespace"], "x\ny: z");
        let params = &doc["spec"]["parameters"];
        assert_eq!(keys(params), ["note", hostile, "siteId"], "{text}");
        assert_eq!(params["siteId"]["value"], "{{ 7*7 }}");
        assert_eq!(params["note"]["value"], "a: b\nnamespace: evil");
        assert_eq!(params["note"]["targets"][0]["pointer"], "ENV.NOTE");
    }

    #[test]
    fn filters() {
        let mut t = Templates::new();
        t.add(
            "f",
            "{{ 'a: b' | yaml }} {{ 'adminPrincipalName' | env_name }} {{ 'siteId' | scalar }} {{ 'true' | scalar }} {{ '1.0' | scalar }} {{ 'a b' | scalar }}".into(),
        )
        .unwrap();
        assert_eq!(
            t.render("f", &Value::UNDEFINED).unwrap(),
            "\"a: b\" ADMIN_PRINCIPAL_NAME siteId \"true\" \"1.0\" \"a b\""
        );
    }
}
