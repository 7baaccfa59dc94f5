//! The rules of a Margo `ApplicationDeployment` document, as the specification's normative
//! desired-state page ("ApplicationDeployment YAML Definition") sets them.
//!
//! Required: `apiVersion`, `kind`, `metadata.name`, `metadata.namespace`,
//! `metadata.annotations.id` (the deployment's UUID, which the State Manifest's
//! `deploymentId` repeats) and `.applicationId`, `spec.deploymentProfile` (type and
//! components) and `spec.parameters` (a map, empty when there are none). Profile types
//! `compose`, `helm.v3` and `helm`, and `docker-compose` (an old spelling, with a warning).
//! Compose components by `repository` (`oci://…`) and `revision` (SemVer), or by the
//! `packageLocation` and `keyLocation` URLs the page's standalone example uses; component
//! properties are strings (`wait: "true"`) or scalars. A top-level `id` (an older form) is
//! accepted with a warning naming the normative place; both places disagreeing is an
//! error. Unknown fields are problems too, because a misspelt field is silently ignored by
//! a device.

use crate::margo::app::{is_semver, valid_app_id};
use crate::margo::validate::{is_component_name, join, Checker, API_VERSION, KIND};
use crate::margo::yamltree::Node;
use crate::oci::reference::LAYOUT_PREFIX;

impl Checker<'_> {
    /// Checks one ApplicationDeployment document.
    pub(crate) fn deployment(&mut self, doc: &Node) {
        if !self.mapping(doc, "", &["apiVersion", "kind", "id", "metadata", "spec"]) {
            return;
        }
        if let Some(v) = self.required(doc, "", "apiVersion") {
            if let Some(s) = self.string(v, "apiVersion") {
                if s != API_VERSION {
                    self.error(v, "apiVersion", format!("`{s}` is not {API_VERSION}"));
                }
            }
        }
        if let Some(k) = self.required(doc, "", "kind") {
            if let Some(s) = self.string(k, "kind") {
                if s != KIND {
                    self.error(k, "kind", format!("`{s}` is not {KIND}"));
                }
            }
        }
        if let Some(meta) = self.required(doc, "", "metadata") {
            self.metadata(meta);
        }
        self.deployment_id(doc);
        if let Some(spec) = self.required(doc, "", "spec") {
            self.spec(spec);
        }
    }

    /// `metadata.annotations.id`, or the top-level `id` of an older form.
    fn deployment_id(&mut self, doc: &Node) {
        const PLACE: &str = "metadata.annotations.id";
        let annotated = doc
            .get("metadata")
            .and_then(|m| m.get("annotations"))
            .and_then(|a| a.get("id"));
        match (doc.get("id"), annotated) {
            (None, Some(id)) => self.uuid(id, PLACE),
            (Some(top), None) => {
                self.uuid(top, "id");
                self.warn(
                    top,
                    "id",
                    format!("a top-level `id` is an older form: the specification puts the deployment's UUID in {PLACE}"),
                );
            }
            (Some(top), Some(id)) => {
                self.uuid(id, PLACE);
                if top.as_str() != id.as_str() {
                    self.error(
                        top,
                        "id",
                        format!("the top-level `id` differs from {PLACE}: keep only {PLACE}"),
                    );
                } else {
                    self.warn(
                        top,
                        "id",
                        format!("the top-level `id` repeats {PLACE}: drop it"),
                    );
                }
            }
            (None, None) => {
                let at = doc
                    .get("metadata")
                    .and_then(|m| m.get("annotations"))
                    .unwrap_or(doc);
                self.error(
                    at,
                    PLACE,
                    format!("`{PLACE}` is required: the deployment's UUID"),
                );
            }
        }
    }

    fn metadata(&mut self, meta: &Node) {
        if !self.mapping(
            meta,
            "metadata",
            &["name", "namespace", "annotations", "labels"],
        ) {
            return;
        }
        if let Some(name) = self.required(meta, "metadata", "name") {
            if let Some(s) = self.string(name, "metadata.name") {
                if !is_component_name(s) {
                    self.error(
                        name,
                        "metadata.name",
                        format!("`{s}` must be lower-case letters, digits and dashes (at most 63)"),
                    );
                }
            }
        }
        if let Some(ns) = self.required(meta, "metadata", "namespace") {
            self.string(ns, "metadata.namespace");
        }
        let Some(ann) = self.required(meta, "metadata", "annotations") else {
            return;
        };
        if !self.mapping(ann, "metadata.annotations", &["applicationId", "id"]) {
            return;
        }
        if let Some(app) = self.required(ann, "metadata.annotations", "applicationId") {
            if let Some(s) = self.string(app, "metadata.annotations.applicationId") {
                if !valid_app_id(s) {
                    self.error(
                        app,
                        "metadata.annotations.applicationId",
                        format!("`{s}` must match ^[-a-z0-9]{{1,200}}$"),
                    );
                }
            }
        }
    }

    fn spec(&mut self, spec: &Node) {
        if !self.mapping(spec, "spec", &["deploymentProfile", "parameters"]) {
            return;
        }
        let mut names = Vec::new();
        if let Some(profile) = self.required(spec, "spec", "deploymentProfile") {
            names = self.profile(profile);
        }
        if let Some(params) = self.required(spec, "spec", "parameters") {
            self.parameters(params, &names);
        }
    }

    /// Checks the profile; returns its component names.
    fn profile(&mut self, profile: &Node) -> Vec<String> {
        let path = "spec.deploymentProfile";
        if !self.mapping(profile, path, &["type", "components"]) {
            return Vec::new();
        }
        let kind = match self.required(profile, path, "type") {
            Some(t) => self.profile_type(t),
            None => "",
        };
        let mut names = Vec::new();
        let Some(components) = self.required(profile, path, "components") else {
            return names;
        };
        let Some(items) = self.items(components, "spec.deploymentProfile.components") else {
            return names;
        };
        if items.is_empty() {
            self.error(
                components,
                "spec.deploymentProfile.components",
                "at least one component is required",
            );
        }
        for (i, c) in items.iter().enumerate() {
            let cpath = format!("spec.deploymentProfile.components[{i}]");
            if !self.mapping(c, &cpath, &["name", "properties"]) {
                continue;
            }
            if let Some(n) = self.required(c, &cpath, "name") {
                self.component_name(n, &join(&cpath, "name"), &mut names);
            }
            if let Some(props) = self.required(c, &cpath, "properties") {
                self.properties(props, &join(&cpath, "properties"), kind);
            }
        }
        names
    }

    /// The profile type, as `compose`, `helm` or `` (unknown).
    fn profile_type(&mut self, t: &Node) -> &'static str {
        let path = "spec.deploymentProfile.type";
        let Some(s) = self.string(t, path) else {
            return "";
        };
        match s {
            "compose" => "compose",
            "helm" => "helm",
            "helm.v3" => "helm",
            "docker-compose" => {
                self.warn(t, path, "`docker-compose` is the old spelling of `compose`");
                "compose"
            }
            other => {
                self.error(
                    t,
                    path,
                    format!("`{other}` is not a profile type (compose, helm.v3, helm)"),
                );
                ""
            }
        }
    }

    fn component_name(&mut self, n: &Node, path: &str, names: &mut Vec<String>) {
        let Some(s) = self.string(n, path) else {
            return;
        };
        if !is_component_name(s) {
            self.error(
                n,
                path,
                format!("`{s}` must be lower-case letters, digits and dashes"),
            );
        } else if names.iter().any(|x| x == s) {
            self.error(n, path, format!("component `{s}` is named twice"));
        }
        names.push(s.to_string());
    }

    fn properties(&mut self, props: &Node, path: &str, kind: &str) {
        match kind {
            "compose" if props.get("packageLocation").is_some() => self.poc_properties(props, path),
            "compose" | "helm" => self.oci_properties(props, path, kind),
            _ => {}
        }
    }

    /// The PoC's compose component: the package and its key as URLs.
    fn poc_properties(&mut self, props: &Node, path: &str) {
        if !self.mapping(props, path, &["packageLocation", "keyLocation"]) {
            return;
        }
        for key in ["packageLocation", "keyLocation"] {
            let node = if key == "packageLocation" {
                self.required(props, path, key)
            } else {
                props.get(key)
            };
            let Some(n) = node else { continue };
            let Some(s) = self.string(n, &join(path, key)) else {
                continue;
            };
            if s.starts_with("file://") {
                self.warn(
                    n,
                    &join(path, key),
                    "a file:// location is only reachable on this machine",
                );
            } else if !(s.starts_with("https://") || s.starts_with("http://")) {
                self.error(n, &join(path, key), format!("`{s}` is not an http(s) URL"));
            }
        }
    }

    /// A component by `repository` and `revision` (compose), with `wait` and `timeout` (helm).
    fn oci_properties(&mut self, props: &Node, path: &str, kind: &str) {
        let known: &[&str] = if kind == "helm" {
            &["repository", "revision", "wait", "timeout"]
        } else {
            &["repository", "revision"]
        };
        if !self.mapping(props, path, known) {
            return;
        }
        let compose = kind == "compose";
        if let Some(r) = self.required(props, path, "repository") {
            if let Some(s) = self.string(r, &join(path, "repository")) {
                if compose && s.starts_with(LAYOUT_PREFIX) {
                    self.warn(
                        r,
                        &join(path, "repository"),
                        "an oci-layout: repository is only reachable on this machine",
                    );
                } else if compose && !s.starts_with("oci://") {
                    self.error(
                        r,
                        &join(path, "repository"),
                        format!("`{s}` is not an oci:// reference"),
                    );
                }
            }
        }
        if let Some(r) = self.required(props, path, "revision") {
            if let Some(s) = self.string(r, &join(path, "revision")) {
                if compose && !is_semver(s) {
                    self.error(
                        r,
                        &join(path, "revision"),
                        format!("`{s}` is not a SemVer version"),
                    );
                }
            }
        }
        if let Some(w) = props.get("wait") {
            let flag = w.as_bool().is_some() || matches!(w.as_str(), Some("true" | "false"));
            if !flag {
                self.error(w, &join(path, "wait"), "expected \"true\" or \"false\"");
            }
        }
        if let Some(t) = props.get("timeout") {
            self.string(t, &join(path, "timeout"));
        }
    }

    fn parameters(&mut self, params: &Node, components: &[String]) {
        let Some(entries) = params.entries() else {
            self.error(
                params,
                "spec.parameters",
                format!("expected a mapping, found {}", params.describe()),
            );
            return;
        };
        for (k, p) in entries {
            let name = k.as_str().unwrap_or("?");
            let path = format!("spec.parameters.{name}");
            if !self.mapping(p, &path, &["value", "targets"]) {
                continue;
            }
            if p.get("value").is_none() {
                self.error(p, &join(&path, "value"), "`value` is required");
            }
            let Some(targets) = self.required(p, &path, "targets") else {
                continue;
            };
            let Some(items) = self.items(targets, &join(&path, "targets")) else {
                continue;
            };
            for (i, t) in items.iter().enumerate() {
                let tpath = format!("{path}.targets[{i}]");
                if !self.mapping(t, &tpath, &["pointer", "components"]) {
                    continue;
                }
                if let Some(ptr) = self.required(t, &tpath, "pointer") {
                    self.string(ptr, &join(&tpath, "pointer"));
                }
                let Some(cs) = self.required(t, &tpath, "components") else {
                    continue;
                };
                let Some(list) = self.items(cs, &join(&tpath, "components")) else {
                    continue;
                };
                for (j, c) in list.iter().enumerate() {
                    let cpath = format!("{tpath}.components[{j}]");
                    if let Some(s) = self.string(c, &cpath) {
                        if !components.iter().any(|n| n == s) {
                            self.error(
                                c,
                                &cpath,
                                format!(
                                    "`{s}` names no component of the deployment profile ({})",
                                    components.join(", ")
                                ),
                            );
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
