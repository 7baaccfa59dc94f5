//! The rules of a Margo `ApplicationDescription` (the app's `margo.yaml`), as the
//! specification's application-description page sets them: `apiVersion`, `kind`, the
//! required `metadata` (id, name, version, catalog with at least one organization),
//! `deploymentProfiles` (type, a unique id, components with the properties of their type,
//! required resources from the page's vocabularies), `parameters` whose targets name
//! components of the profiles, and `configuration` sections whose settings name existing
//! parameters and schemas. With the app folder at hand, the resource files the catalog
//! names must exist in it. Unknown fields are problems, as in deployments.
//!
//! This file holds the document, its metadata, parameters and configuration;
//! [`profiles`] the deployment profiles, their components and required resources.

mod profiles;

use std::path::Path;

use crate::margo::app::valid_app_id;
use crate::margo::validate::{join, Checker, DESCRIPTION_API_VERSION, DESCRIPTION_KIND};
use crate::margo::yamltree::Node;

const RESOURCES: [&str; 4] = ["icon", "descriptionFile", "releaseNotes", "licenseFile"];
const DATA_TYPES: [&str; 8] = [
    "string",
    "integer",
    "double",
    "boolean",
    "array[string]",
    "array[integer]",
    "array[double]",
    "array[boolean]",
];

impl Checker<'_> {
    /// Checks one ApplicationDescription; `app_dir`, when given, must hold its resources.
    pub(crate) fn description(&mut self, doc: &Node, app_dir: Option<&Path>) {
        let top = [
            "apiVersion",
            "kind",
            "metadata",
            "deploymentProfiles",
            "parameters",
            "configuration",
        ];
        if !self.mapping(doc, "", &top) {
            return;
        }
        self.constant(doc, "apiVersion", DESCRIPTION_API_VERSION);
        self.constant(doc, "kind", DESCRIPTION_KIND);
        if let Some(meta) = self.required(doc, "", "metadata") {
            self.app_metadata(meta, app_dir);
        }
        let components = match self.required(doc, "", "deploymentProfiles") {
            Some(p) => self.profiles(p),
            None => Vec::new(),
        };
        let parameters: Vec<String> = match doc.get("parameters") {
            Some(p) => self.app_parameters(p, &components),
            None => Vec::new(),
        };
        if let Some(c) = doc.get("configuration") {
            self.configuration(c, &parameters);
        }
    }

    /// A required string field that must equal `want`.
    fn constant(&mut self, doc: &Node, key: &str, want: &str) {
        if let Some(n) = self.required(doc, "", key) {
            if let Some(s) = self.string(n, key) {
                if s != want {
                    self.error(n, key, format!("`{s}` is not {want}"));
                }
            }
        }
    }

    /// Items of a required non-empty list at `parent.key`.
    pub(super) fn list<'n>(&mut self, parent: &'n Node, path: &str, key: &str) -> &'n [Node] {
        let Some(n) = self.required(parent, path, key) else {
            return &[];
        };
        match n.items() {
            Some([]) => {
                self.error(n, &join(path, key), "at least one entry is required");
                &[]
            }
            Some(items) => items,
            None => self.items(n, &join(path, key)).unwrap_or(&[]),
        }
    }

    fn app_metadata(&mut self, meta: &Node, app_dir: Option<&Path>) {
        let path = "metadata";
        if !self.mapping(
            meta,
            path,
            &["id", "name", "description", "version", "catalog"],
        ) {
            return;
        }
        if let Some(id) = self.required(meta, path, "id") {
            if let Some(s) = self.string(id, "metadata.id") {
                if !valid_app_id(s) {
                    self.error(
                        id,
                        "metadata.id",
                        format!("`{s}` must match ^[-a-z0-9]{{1,200}}$"),
                    );
                }
            }
        }
        for key in ["name", "version"] {
            if let Some(n) = self.required(meta, path, key) {
                self.string(n, &join(path, key));
            }
        }
        if let Some(d) = meta.get("description") {
            self.string(d, "metadata.description");
        }
        let Some(catalog) = self.required(meta, path, "catalog") else {
            return;
        };
        let path = "metadata.catalog";
        if !self.mapping(catalog, path, &["application", "author", "organization"]) {
            return;
        }
        if let Some(app) = catalog.get("application") {
            self.catalog_application(app, app_dir);
        }
        if let Some(authors) = catalog.get("author") {
            self.records(authors, "metadata.catalog.author", &["name", "email"], &[]);
        }
        let organizations = self.list(catalog, path, "organization");
        for (i, o) in organizations.iter().enumerate() {
            let p = format!("{path}.organization[{i}]");
            if self.mapping(o, &p, &["name", "site"]) {
                if let Some(n) = self.required(o, &p, "name") {
                    self.string(n, &join(&p, "name"));
                }
            }
        }
    }

    fn catalog_application(&mut self, app: &Node, app_dir: Option<&Path>) {
        let path = "metadata.catalog.application";
        let known = [&RESOURCES[..], &["site", "tagline", "tags"]].concat();
        if !self.mapping(app, path, &known) {
            return;
        }
        for key in RESOURCES {
            let Some(n) = app.get(key) else { continue };
            let at = join(path, key);
            let Some(file) = self.string(n, &at) else {
                continue;
            };
            let remote = file.contains("://");
            if let (Some(dir), false) = (app_dir, remote) {
                if !dir.join(file).is_file() {
                    self.error(n, &at, format!("`{file}` is not a file of the app folder"));
                }
            }
        }
        for key in ["site", "tagline"] {
            if let Some(n) = app.get(key) {
                self.string(n, &join(path, key));
            }
        }
        if let Some(tags) = app.get("tags") {
            match tags.items() {
                Some(items) => {
                    for (i, t) in items.iter().enumerate() {
                        self.string(t, &format!("{path}.tags[{i}]"));
                    }
                }
                None => self.error(tags, &join(path, "tags"), "expected a list of strings"),
            }
        }
    }

    /// A list of mappings with string fields `known`, of which `required` must be present.
    fn records(&mut self, node: &Node, path: &str, known: &[&str], required: &[&str]) {
        let Some(items) = self.items(node, path) else {
            return;
        };
        for (i, item) in items.iter().enumerate() {
            let p = format!("{path}[{i}]");
            if !self.mapping(item, &p, known) {
                continue;
            }
            for key in known {
                let value = match required.contains(key) {
                    true => self.required(item, &p, key),
                    false => item.get(key),
                };
                if let Some(v) = value {
                    self.string(v, &join(&p, key));
                }
            }
        }
    }

    /// Checks the profiles; returns every component name.
    /// Checks the parameters; returns their names.
    fn app_parameters(&mut self, params: &Node, components: &[String]) -> Vec<String> {
        let Some(entries) = params.entries() else {
            self.error(
                params,
                "parameters",
                format!("expected a mapping, found {}", params.describe()),
            );
            return Vec::new();
        };
        let mut names = Vec::new();
        for (k, p) in entries {
            let name = k.as_str().unwrap_or("?");
            names.push(name.to_string());
            let path = format!("parameters.{name}");
            if !self.mapping(p, &path, &["value", "targets"]) {
                continue;
            }
            for (i, t) in self.list(p, &path, "targets").iter().enumerate() {
                let tpath = format!("{path}.targets[{i}]");
                if !self.mapping(t, &tpath, &["pointer", "components"]) {
                    continue;
                }
                if let Some(ptr) = self.required(t, &tpath, "pointer") {
                    self.string(ptr, &join(&tpath, "pointer"));
                }
                for (j, c) in self.list(t, &tpath, "components").iter().enumerate() {
                    let cpath = format!("{tpath}.components[{j}]");
                    if let Some(s) = self.string(c, &cpath) {
                        if !components.iter().any(|n| n == s) {
                            let msg = format!(
                                "`{s}` names no component of the deployment profiles ({})",
                                components.join(", ")
                            );
                            self.error(c, &cpath, msg);
                        }
                    }
                }
            }
        }
        names
    }

    fn configuration(&mut self, c: &Node, parameters: &[String]) {
        let path = "configuration";
        if !self.mapping(c, path, &["sections", "schema"]) {
            return;
        }
        let mut schemas = Vec::new();
        for (i, s) in self.list(c, path, "schema").iter().enumerate() {
            let p = format!("configuration.schema[{i}]");
            let rules = [
                "name",
                "dataType",
                "allowEmpty",
                "minLength",
                "maxLength",
                "regexMatch",
                "minValue",
                "maxValue",
                "minPrecision",
                "maxPrecision",
                "multiselect",
                "options",
            ];
            if !self.mapping(s, &p, &rules) {
                continue;
            }
            if let Some(n) = self.required(s, &p, "name") {
                schemas.extend(self.string(n, &join(&p, "name")).map(str::to_string));
            }
            if let Some(t) = self.required(s, &p, "dataType") {
                self.word(t, &join(&p, "dataType"), &DATA_TYPES);
            }
        }
        for (i, section) in self.list(c, path, "sections").iter().enumerate() {
            let p = format!("configuration.sections[{i}]");
            if !self.mapping(section, &p, &["name", "settings"]) {
                continue;
            }
            if let Some(n) = self.required(section, &p, "name") {
                self.string(n, &join(&p, "name"));
            }
            for (j, setting) in self.list(section, &p, "settings").iter().enumerate() {
                let sp = format!("{p}.settings[{j}]");
                let known = ["parameter", "name", "description", "immutable", "schema"];
                if !self.mapping(setting, &sp, &known) {
                    continue;
                }
                for (key, names, what) in [
                    ("parameter", parameters, "parameter"),
                    ("schema", &schemas[..], "schema"),
                ] {
                    let Some(n) = self.required(setting, &sp, key) else {
                        continue;
                    };
                    if let Some(s) = self.string(n, &join(&sp, key)) {
                        if !names.iter().any(|x| x == s) {
                            self.error(n, &join(&sp, key), format!("`{s}` names no {what}"));
                        }
                    }
                }
                if let Some(n) = self.required(setting, &sp, "name") {
                    self.string(n, &join(&sp, "name"));
                }
                if let Some(im) = setting.get("immutable") {
                    if im.as_bool().is_none() {
                        self.error(im, &join(&sp, "immutable"), "expected true or false");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
