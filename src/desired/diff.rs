//! `desired-state diff`: what changed between two desired states, by meaning, not by line.
//!
//! Deployments are matched by `metadata.name`; inside one, components by name and
//! parameters by name. Each side is flattened into `(section, field) → value` and the two
//! are compared, so reordered keys or reflowed YAML make no difference, and a reviewer
//! reads `component poc-app: revision 1.0.0 → 1.1.0` rather than a text hunk.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde_norway::Value;

use crate::error::{Error, Result};

/// One side of a diff: where it came from and its YAML documents.
pub struct Side {
    pub label: String,
    pub documents: Vec<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Change {
    pub section: String,
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Added,
    Removed,
    Changed,
    Unchanged,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct DeploymentDiff {
    pub name: String,
    pub status: Status,
    pub changes: Vec<Change>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Diff {
    pub from: String,
    pub to: String,
    pub deployments: Vec<DeploymentDiff>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.deployments
            .iter()
            .all(|d| d.status == Status::Unchanged)
    }
}

type Flat = BTreeMap<(String, String), String>;

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => serde_json::to_string(&serde_json::to_value(other).unwrap_or_default())
            .unwrap_or_default(),
    }
}

/// `(section, field) → value` for one ApplicationDeployment.
fn flatten(doc: &Value) -> Flat {
    let mut f = Flat::new();
    let mut put = |section: &str, field: &str, v: &Value| {
        if !v.is_null() {
            f.insert((section.to_string(), field.to_string()), scalar(v));
        }
    };
    let id = if doc["id"].is_null() {
        &doc["metadata"]["annotations"]["id"]
    } else {
        &doc["id"]
    };
    put("deployment", "id", id);
    put("deployment", "namespace", &doc["metadata"]["namespace"]);
    put(
        "deployment",
        "applicationId",
        &doc["metadata"]["annotations"]["applicationId"],
    );
    let profile = &doc["spec"]["deploymentProfile"];
    put("deployment", "profile type", &profile["type"]);
    if let Some(components) = profile["components"].as_sequence() {
        for c in components {
            let section = format!("component {}", scalar(&c["name"]));
            if let Some(props) = c["properties"].as_mapping() {
                for (k, v) in props {
                    put(&section, &scalar(k), v);
                }
            }
        }
    }
    if let Some(params) = doc["spec"]["parameters"].as_mapping() {
        for (k, p) in params {
            let section = format!("parameter {}", scalar(k));
            put(&section, "value", &p["value"]);
            if let Some(targets) = p["targets"].as_sequence() {
                let text: Vec<String> = targets
                    .iter()
                    .map(|t| {
                        let cs: Vec<String> = t["components"]
                            .as_sequence()
                            .map(|s| s.iter().map(scalar).collect())
                            .unwrap_or_default();
                        format!("{} → {}", scalar(&t["pointer"]), cs.join(", "))
                    })
                    .collect();
                put(&section, "targets", &Value::String(text.join("; ")));
            }
        }
    }
    f
}

fn parse(side: &Side) -> Result<BTreeMap<String, Flat>> {
    let mut out = BTreeMap::new();
    for text in &side.documents {
        for de in serde_norway::Deserializer::from_str(text) {
            let doc = <Value as serde::Deserialize>::deserialize(de).map_err(|e| {
                Error::invalid_file(
                    &side.label,
                    e.location().map(|l| l.line()),
                    format!("not valid YAML: {e}"),
                )
            })?;
            if doc.is_null() {
                continue;
            }
            let name = doc["metadata"]["name"]
                .as_str()
                .unwrap_or("(unnamed)")
                .to_string();
            out.insert(name, flatten(&doc));
        }
    }
    Ok(out)
}

pub fn diff(a: &Side, b: &Side) -> Result<Diff> {
    let (old, new) = (parse(a)?, parse(b)?);
    let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    let mut deployments = Vec::new();
    for name in names {
        let empty = Flat::new();
        let (o, n) = (old.get(name), new.get(name));
        let status = match (o, n) {
            (None, Some(_)) => Status::Added,
            (Some(_), None) => Status::Removed,
            (Some(x), Some(y)) if x == y => Status::Unchanged,
            _ => Status::Changed,
        };
        let (o, n) = (o.unwrap_or(&empty), n.unwrap_or(&empty));
        let mut keys: Vec<&(String, String)> = o.keys().chain(n.keys()).collect();
        keys.sort();
        keys.dedup();
        let changes = keys
            .into_iter()
            .filter(|k| o.get(*k) != n.get(*k))
            .map(|k| Change {
                section: k.0.clone(),
                field: k.1.clone(),
                old: o.get(k).cloned(),
                new: n.get(k).cloned(),
            })
            .collect();
        deployments.push(DeploymentDiff {
            name: name.clone(),
            status,
            changes,
        });
    }
    Ok(Diff {
        from: a.label.clone(),
        to: b.label.clone(),
        deployments,
    })
}

impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "desired state: {} → {}", self.from, self.to)?;
        let mut counts = BTreeMap::new();
        for d in &self.deployments {
            *counts
                .entry(format!("{:?}", d.status).to_lowercase())
                .or_insert(0) += 1;
            let mark = match d.status {
                Status::Added => "+",
                Status::Removed => "-",
                Status::Changed => "~",
                Status::Unchanged => "=",
            };
            writeln!(
                f,
                "{mark} deployment {} ({})",
                d.name,
                format!("{:?}", d.status).to_lowercase()
            )?;
            if d.status != Status::Changed {
                continue;
            }
            let mut section = "";
            for c in &d.changes {
                if c.section != section {
                    section = &c.section;
                    writeln!(f, "    {section}")?;
                }
                match (&c.old, &c.new) {
                    (Some(o), Some(n)) => writeln!(f, "      ~ {}: {o} → {n}", c.field)?,
                    (None, Some(n)) => writeln!(f, "      + {}: {n}", c.field)?,
                    (Some(o), None) => writeln!(f, "      - {}: {o}", c.field)?,
                    (None, None) => {}
                }
            }
        }
        let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
        writeln!(f, "{}", summary.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(name: &str, revision: &str, site: &str) -> String {
        format!(
            "apiVersion: application.margo.org/v1alpha1\nkind: ApplicationDeployment\nid: 6f1c3c52-9d3a-4a8e-9a55-0e6a1f3c2b10\nmetadata:\n  name: {name}\n  annotations:\n    applicationId: poc-app\nspec:\n  deploymentProfile:\n    type: compose\n    components:\n      - name: poc-app\n        properties:\n          repository: oci://r/poc-app\n          revision: {revision}\n  parameters:\n    siteId:\n      value: {site}\n      targets:\n        - pointer: ENV.SITE_ID\n          components: [poc-app]\n"
        )
    }

    #[test]
    fn changes_are_by_component_and_parameter() {
        let a = Side {
            label: "a".into(),
            documents: vec![doc("one", "1.0.0", "s1"), doc("gone", "1.0.0", "s9")],
        };
        let b = Side {
            label: "b".into(),
            documents: vec![doc("one", "1.1.0", "s2") + "---\n" + &doc("new", "1.0.0", "s3")],
        };
        let d = diff(&a, &b).unwrap();
        let one = d.deployments.iter().find(|x| x.name == "one").unwrap();
        assert_eq!(one.status, Status::Changed);
        assert_eq!(
            one.changes,
            vec![
                Change {
                    section: "component poc-app".into(),
                    field: "revision".into(),
                    old: Some("1.0.0".into()),
                    new: Some("1.1.0".into())
                },
                Change {
                    section: "parameter siteId".into(),
                    field: "value".into(),
                    old: Some("s1".into()),
                    new: Some("s2".into())
                },
            ]
        );
        let text = d.to_string();
        assert!(text.contains("~ revision: 1.0.0 → 1.1.0"), "{text}");
        assert!(text.contains("+ deployment new (added)"), "{text}");
        assert!(text.contains("- deployment gone (removed)"), "{text}");
    }

    #[test]
    fn reordering_is_no_change() {
        let a = doc("one", "1.0.0", "s1");
        let b = a.replace(
            "  name: one\n  annotations:\n    applicationId: poc-app\n",
            "  annotations:\n    applicationId: poc-app\n  name: one\n",
        );
        let d = diff(
            &Side {
                label: "a".into(),
                documents: vec![a],
            },
            &Side {
                label: "b".into(),
                documents: vec![b],
            },
        )
        .unwrap();
        assert!(d.is_empty());
    }
}
