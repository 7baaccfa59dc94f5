//! YAML that every compose reads the same way. Compose files we write (the package's
//! pinned one, the one a device runs) are read by YAML 1.2 parsers (compose v2) and by
//! YAML 1.1 ones (docker-compose v1, PyYAML), which take a plain `yes`, `on`, `0755`,
//! `1_000` or `22:22` for a boolean or a number. So a string is written plain only when
//! both read it back as that same string, else double-quoted (with JSON's escapes, which
//! YAML shares); numbers, booleans and null stay plain. Block style, two spaces.

use std::fmt::Write as _;

use serde_norway::Value;

/// `value` as a YAML document (ending with a newline).
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Mapping(m) if !m.is_empty() => mapping(m, 0, &mut out),
        Value::Sequence(s) if !s.is_empty() => sequence(s, 0, &mut out),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

fn mapping(m: &serde_norway::Mapping, indent: usize, out: &mut String) {
    for (k, v) in m {
        let _ = write!(out, "{:indent$}{}:", "", key(k));
        nested(v, indent, out);
    }
}

fn sequence(s: &[Value], indent: usize, out: &mut String) {
    for v in s {
        match v {
            Value::Mapping(m) if !m.is_empty() => {
                // The item's first key on the dash's line.
                let mut inner = String::new();
                mapping(m, indent + 2, &mut inner);
                let _ = write!(out, "{:indent$}- {}", "", &inner[indent + 2..]);
            }
            _ => {
                let _ = write!(out, "{:indent$}-", "");
                nested(v, indent, out);
            }
        }
    }
}

/// What follows `key:` or `-`: a scalar on the same line, a collection below it.
fn nested(v: &Value, indent: usize, out: &mut String) {
    match v {
        Value::Mapping(m) if !m.is_empty() => {
            out.push('\n');
            mapping(m, indent + 2, out);
        }
        Value::Sequence(s) if !s.is_empty() => {
            out.push('\n');
            sequence(s, indent + 2, out);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

/// A value as the text a reader of it means: a string as it is, a number or boolean as
/// written, null empty, a collection as (trimmed) YAML. What a diff shows and what an
/// environment variable is set to.
pub(crate) fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        other => serde_norway::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quoted(s),
        Value::Mapping(_) => "{}".into(),
        Value::Sequence(_) => "[]".into(),
        Value::Tagged(t) => {
            let inner = serde_json::to_string(&t.value).unwrap_or_else(|_| "null".into());
            format!("{} {inner}", t.tag)
        }
    }
}

fn quoted(s: &str) -> String {
    if plain_everywhere(s) {
        s.to_string()
    } else {
        serde_json::to_string(s).expect("a string is JSON")
    }
}

/// True when `s`, written plain, reads back as the string `s` in YAML 1.2 and in YAML 1.1.
pub fn plain_everywhere(s: &str) -> bool {
    let safe_chars = s.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '/')
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ':' | '@' | '+' | '=')
        })
        && !s.ends_with(':');
    safe_chars
        && !yaml_1_1_reads_otherwise(s)
        && matches!(
            serde_norway::from_str::<Value>(s),
            Ok(Value::String(ref t)) if t == s
        )
}

/// YAML 1.1's implicit types that YAML 1.2 reads as strings: booleans (`yes`, `on`, …),
/// null, integers in base 2, 8 or 16 or with `_`, base 60 (`22:22`), floats with `_` or
/// without digits before the point, and dates.
fn yaml_1_1_reads_otherwise(s: &str) -> bool {
    use std::sync::OnceLock;
    static RE: OnceLock<regex_lite::Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        regex_lite::Regex::new(concat!(
            r"^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE",
            r"|on|On|ON|off|Off|OFF|null|Null|NULL|~|<<|=",
            r"|[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+",
            r"|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+",
            r"|[-+]?(?:[0-9][0-9_]*)?\.[0-9.]*(?:[eE][-+][0-9]+)?",
            r"|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*",
            r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)",
            r"|[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}.*)$"
        ))
        .expect("a valid pattern")
    });
    re.is_match(s)
}

/// A key plain when no YAML reader takes it for anything but that string.
fn key(k: &Value) -> String {
    match k {
        Value::String(s) => quoted(s),
        other => scalar(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_that_yaml_1_1_would_take_for_something_else_stay_strings() {
        let text = "name: demo\nservices:\n  web:\n    image: \"busybox:1\"\n    environment:\n      FIXED: \"yes\"\n      MODE: \"0755\"\n      N: 1_000\n      'on': \"off\"\n    command: [sleep, \"3600\"]\n    ports:\n      - target: 80\n        published: 8080\n    labels: {}\n    healthcheck:\n      disable: true\n";
        let doc: Value = serde_norway::from_str(text).unwrap();
        let out = to_string(&doc);
        assert!(out.contains("image: busybox:1\n"), "{out}");
        assert!(out.contains("FIXED: \"yes\"\n"), "{out}");
        assert!(out.contains("MODE: \"0755\"\n"), "{out}");
        assert!(out.contains("\"on\": \"off\"\n"), "{out}");
        assert!(
            out.contains("    ports:\n      - target: 80\n        published: 8080\n"),
            "{out}"
        );
        assert!(out.contains("labels: {}\n"), "{out}");
        let back: Value = serde_norway::from_str(&out).unwrap();
        assert_eq!(back, doc, "{out}");
    }

    #[test]
    fn plain_only_where_both_yaml_versions_agree() {
        for s in [
            "redis:alpine@sha256:00ff",
            "5000:5000",
            "web",
            "ENV.SITE_ID",
            "a/b:1.2.3",
        ] {
            assert!(plain_everywhere(s), "{s}");
        }
        for s in [
            "yes",
            "Off",
            "22:22",
            "1.0",
            "0755",
            "1_000",
            "2024-01-02",
            "",
            "-x",
            "a: b",
            "3600",
            "x:",
        ] {
            assert!(!plain_everywhere(s), "{s}");
        }
    }

    #[test]
    fn escapes_round_trip() {
        let doc = Value::from(serde_norway::Mapping::from_iter([(
            Value::from("k"),
            Value::from("a \"b\"\n\tc\\ é: #x"),
        )]));
        let back: Value = serde_norway::from_str(&to_string(&doc)).unwrap();
        assert_eq!(back, doc);
    }
}
