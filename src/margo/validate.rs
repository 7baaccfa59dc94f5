//! Validation of Margo documents on the line-aware YAML tree: the [`Report`] of a file,
//! and the [`Checker`] that the rules of each document kind use ([`crate::margo::deployment`]
//! for `ApplicationDeployment`, [`crate::margo::description`] for `ApplicationDescription`,
//! told apart by `kind`).
//!
//! The rules of the ApplicationDeployment follow the specification's normative
//! desired-state page (see [`crate::margo::deployment`]). Every problem carries its line and
//! YAML path; unknown fields are problems too, because a misspelt field is silently ignored
//! by a device. This module checks documents; it does not render or publish them.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::margo::yamltree::{self, Kind, Node};

pub(crate) const API_VERSION: &str = "application.margo.org/v1alpha1";
pub(crate) const KIND: &str = "ApplicationDeployment";
pub(crate) const DESCRIPTION_API_VERSION: &str = "margo.org/v1-alpha1";
pub(crate) const DESCRIPTION_KIND: &str = "ApplicationDescription";

/// One thing wrong (or, for a warning, old-fashioned) in a document.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub line: usize,
    /// YAML path: `spec.deploymentProfile.components[0].name`.
    pub path: String,
    pub message: String,
    pub warning: bool,
}

/// The problems of one file.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

impl Problem {
    /// `yaml.path: ` before the message, or nothing for a problem of the whole file.
    pub(crate) fn path_prefix(&self) -> String {
        if self.path.is_empty() {
            String::new()
        } else {
            format!("{}: ", self.path)
        }
    }
}

impl Report {
    pub fn errors(&self) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(|p| !p.warning)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.problems {
            let level = if p.warning { "warning" } else { "error" };
            let path = p.path_prefix();
            writeln!(
                f,
                "{}:{}: {level}: {path}{}",
                self.file.display(),
                p.line,
                p.message
            )?;
        }
        Ok(())
    }
}

/// Validates a file's text; `file` only names it in the report.
pub(crate) fn validate_text(file: &Path, text: &str) -> Report {
    validate_with(file, text, None)
}

/// Validates an app's `margo.yaml`, whose resource files must be in `app_dir`.
pub(crate) fn validate_description(file: &Path, text: &str, app_dir: &Path) -> Report {
    validate_with(file, text, Some(app_dir))
}

fn validate_with(file: &Path, text: &str, app_dir: Option<&Path>) -> Report {
    let mut problems = Vec::new();
    match yamltree::parse(text) {
        Err(e) => problems.push(Problem {
            line: e.line,
            path: String::new(),
            message: format!("not valid YAML: {}", e.message),
            warning: false,
        }),
        Ok(docs) if docs.is_empty() => problems.push(Problem {
            line: 1,
            path: String::new(),
            message: "the file holds no document".into(),
            warning: false,
        }),
        Ok(docs) => {
            for doc in &docs {
                let mut checker = Checker {
                    problems: &mut problems,
                };
                // By kind; a misspelt kind by shape (only a description has profiles).
                let kind = doc.get("kind").and_then(|k| k.as_str());
                let described = kind == Some(DESCRIPTION_KIND)
                    || (kind != Some(KIND) && doc.get("deploymentProfiles").is_some());
                if described || app_dir.is_some() {
                    checker.description(doc, app_dir);
                } else {
                    checker.deployment(doc);
                }
            }
        }
    }
    Report {
        file: file.to_path_buf(),
        problems,
    }
}

/// Validates files; an unreadable file is reported as a problem of its own.
pub fn validate_files(files: &[PathBuf]) -> Vec<Report> {
    files
        .iter()
        .map(|f| match std::fs::read_to_string(f) {
            Ok(text) => validate_text(f, &text),
            Err(e) => Report {
                file: f.clone(),
                problems: vec![Problem {
                    line: 0,
                    path: String::new(),
                    message: format!("cannot read: {e}"),
                    warning: false,
                }],
            },
        })
        .collect()
}

/// A UUID in its hyphenated `8-4-4-4-12` form (the only form Margo documents use).
pub(crate) fn is_uuid(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::try_parse(s).is_ok()
}

/// A component or deployment name: lower-case letters, digits and dashes, 1 to 63.
pub(crate) fn is_component_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Collects the problems of one document as its rules find them.
pub(crate) struct Checker<'a> {
    pub(crate) problems: &'a mut Vec<Problem>,
}

impl Checker<'_> {
    pub(crate) fn error(&mut self, node: &Node, path: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            line: node.line,
            path: path.to_string(),
            message: message.into(),
            warning: false,
        });
    }

    pub(crate) fn warn(&mut self, node: &Node, path: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            line: node.line,
            path: path.to_string(),
            message: message.into(),
            warning: true,
        });
    }

    /// Reports keys of `node` that are not in `known`; false when `node` is not a mapping.
    pub(crate) fn mapping(&mut self, node: &Node, path: &str, known: &[&str]) -> bool {
        let Some(entries) = node.entries() else {
            self.error(
                node,
                path,
                format!("expected a mapping, found {}", node.describe()),
            );
            return false;
        };
        for (k, _) in entries {
            let name = k.as_str().unwrap_or("?");
            if !known.contains(&name) {
                let at = join(path, name);
                self.error(
                    k,
                    &at,
                    format!("unknown field `{name}` (known here: {})", known.join(", ")),
                );
            }
        }
        true
    }

    pub(crate) fn required<'n>(
        &mut self,
        parent: &'n Node,
        path: &str,
        key: &str,
    ) -> Option<&'n Node> {
        match parent.get(key) {
            Some(n) if !n.is_null() => Some(n),
            _ => {
                self.error(parent, &join(path, key), format!("`{key}` is required"));
                None
            }
        }
    }

    pub(crate) fn string<'n>(&mut self, node: &'n Node, path: &str) -> Option<&'n str> {
        match &node.kind {
            Kind::Scalar { text, .. } if !node.is_null() => Some(text),
            _ => {
                self.error(
                    node,
                    path,
                    format!("expected a string, found {}", node.describe()),
                );
                None
            }
        }
    }

    /// The items of a list; anything else is an error at `path`.
    pub(crate) fn items<'n>(&mut self, node: &'n Node, path: &str) -> Option<&'n [Node]> {
        let items = node.items();
        if items.is_none() {
            self.error(
                node,
                path,
                format!("expected a list, found {}", node.describe()),
            );
        }
        items
    }

    pub(crate) fn uuid(&mut self, node: &Node, path: &str) {
        if let Some(s) = self.string(node, path) {
            if !is_uuid(s) {
                self.error(
                    node,
                    path,
                    format!("`{s}` is not a UUID (8-4-4-4-12 hex digits)"),
                );
            }
        }
    }
}

/// `path.key`, or `key` at the top.
pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}
