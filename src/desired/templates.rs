//! The template engine: minijinja, strict about undefined values, with our filters
//! (`yaml`, `env_name`) and function (`fail`), and engine errors turned into
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
    fn filters() {
        let mut t = Templates::new();
        t.add(
            "f",
            "{{ 'a: b' | yaml }} {{ 'adminPrincipalName' | env_name }}".into(),
        )
        .unwrap();
        assert_eq!(
            t.render("f", &Value::UNDEFINED).unwrap(),
            "\"a: b\" ADMIN_PRINCIPAL_NAME"
        );
    }
}
