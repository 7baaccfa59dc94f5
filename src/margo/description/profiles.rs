//! The deployment profiles of an ApplicationDescription: their types and unique ids, their
//! components with the properties of their type, and the resources they require, from the
//! vocabularies of the application-description page.

use std::collections::BTreeSet;

use crate::margo::validate::{is_component_name, join, Checker};
use crate::margo::yamltree::Node;

impl Checker<'_> {
    pub(super) fn profiles(&mut self, profiles: &Node) -> Vec<String> {
        let Some(items) = profiles.items() else {
            self.error(
                profiles,
                "deploymentProfiles",
                "expected a list of profiles",
            );
            return Vec::new();
        };
        if items.is_empty() {
            self.error(
                profiles,
                "deploymentProfiles",
                "at least one profile is required",
            );
        }
        let mut ids = BTreeSet::new();
        let mut names = Vec::new();
        for (i, p) in items.iter().enumerate() {
            let path = format!("deploymentProfiles[{i}]");
            let known = [
                "type",
                "id",
                "components",
                "description",
                "requiredResources",
            ];
            if !self.mapping(p, &path, &known) {
                continue;
            }
            let kind = match self.required(p, &path, "type") {
                Some(t) => self.app_profile_type(t, &join(&path, "type")),
                None => "",
            };
            if let Some(id) = self.required(p, &path, "id") {
                if let Some(s) = self.string(id, &join(&path, "id")) {
                    if !ids.insert(s.to_string()) {
                        self.error(
                            id,
                            &join(&path, "id"),
                            format!("profile id `{s}` is used twice"),
                        );
                    }
                }
            }
            if let Some(d) = p.get("description") {
                self.string(d, &join(&path, "description"));
            }
            if let Some(r) = p.get("requiredResources") {
                self.resources(r, &join(&path, "requiredResources"));
            }
            for (j, c) in self.list(p, &path, "components").iter().enumerate() {
                let cpath = format!("{path}.components[{j}]");
                if !self.mapping(c, &cpath, &["name", "properties"]) {
                    continue;
                }
                if let Some(n) = self.required(c, &cpath, "name") {
                    if let Some(s) = self.string(n, &join(&cpath, "name")) {
                        if !is_component_name(s) {
                            let msg =
                                format!("`{s}` must be lower-case letters, digits and dashes");
                            self.error(n, &join(&cpath, "name"), msg);
                        }
                        names.push(s.to_string());
                    }
                }
                if let Some(props) = self.required(c, &cpath, "properties") {
                    self.app_properties(props, &join(&cpath, "properties"), kind);
                }
            }
        }
        names
    }

    fn app_profile_type(&mut self, t: &Node, path: &str) -> &'static str {
        match self.string(t, path) {
            Some("compose") => "compose",
            Some("helm.v3") => "helm",
            Some(other) => {
                self.error(
                    t,
                    path,
                    format!("`{other}` is not a profile type (compose, helm.v3)"),
                );
                ""
            }
            None => "",
        }
    }

    /// Component properties: helm.v3 by repository and revision; compose by
    /// packageLocation (and keyLocation), or by repository and revision (the OCI way).
    fn app_properties(&mut self, props: &Node, path: &str, kind: &str) {
        let known: &[&str] = match kind {
            "helm" => &["repository", "revision", "wait", "timeout"],
            "compose" => &[
                "packageLocation",
                "keyLocation",
                "repository",
                "revision",
                "wait",
                "timeout",
            ],
            _ => return,
        };
        if !self.mapping(props, path, known) {
            return;
        }
        let by_location = kind == "compose" && props.get("repository").is_none();
        let required: &[&str] = match by_location {
            true => &["packageLocation"],
            false => &["repository", "revision"],
        };
        for key in required {
            if let Some(n) = self.required(props, path, key) {
                self.string(n, &join(path, key));
            }
        }
        for key in ["keyLocation", "timeout"] {
            if let Some(n) = props.get(key) {
                self.string(n, &join(path, key));
            }
        }
        if let Some(w) = props.get("wait") {
            if w.as_bool().is_none() && !matches!(w.as_str(), Some("true" | "false")) {
                self.error(w, &join(path, "wait"), "expected true or false");
            }
        }
    }

    fn resources(&mut self, r: &Node, path: &str) {
        let known = ["cpu", "memory", "storage", "peripherals", "interfaces"];
        if !self.mapping(r, path, &known) {
            return;
        }
        if let Some(cpu) = r.get("cpu") {
            let p = join(path, "cpu");
            if self.mapping(cpu, &p, &["cores", "architectures"]) {
                if let Some(c) = self.required(cpu, &p, "cores") {
                    if c.as_str().and_then(|s| s.parse::<f64>().ok()).is_none() {
                        self.error(c, &join(&p, "cores"), "expected a number of cores");
                    }
                }
                if let Some(a) = cpu.get("architectures") {
                    let arch = ["amd64", "x86_64", "arm64", "arm"];
                    self.vocabulary(a, &join(&p, "architectures"), &arch);
                }
            }
        }
        for key in ["memory", "storage"] {
            if let Some(n) = r.get(key) {
                self.string(n, &join(path, key));
            }
        }
        let peripherals = ["gpu", "display", "camera", "microphone", "speaker"];
        let interfaces = [
            "ethernet",
            "wifi",
            "cellular",
            "bluetooth",
            "usb",
            "canbus",
            "rs232",
        ];
        for (key, words, extra) in [
            (
                "peripherals",
                &peripherals[..],
                &["manufacturer", "model"][..],
            ),
            ("interfaces", &interfaces[..], &[][..]),
        ] {
            let Some(list) = r.get(key) else { continue };
            let p = join(path, key);
            let Some(items) = list.items() else {
                self.error(list, &p, "expected a list");
                continue;
            };
            for (i, item) in items.iter().enumerate() {
                let ip = format!("{p}[{i}]");
                let known = [&["type"][..], extra].concat();
                if !self.mapping(item, &ip, &known) {
                    continue;
                }
                let t = match key {
                    "peripherals" => self.required(item, &ip, "type"),
                    _ => item.get("type"),
                };
                if let Some(t) = t {
                    self.word(t, &join(&ip, "type"), words);
                }
            }
        }
    }

    /// A list of words from `words`.
    fn vocabulary(&mut self, node: &Node, path: &str, words: &[&str]) {
        match node.items() {
            Some(items) => {
                for (i, w) in items.iter().enumerate() {
                    self.word(w, &format!("{path}[{i}]"), words);
                }
            }
            None => self.error(node, path, "expected a list"),
        }
    }

    pub(super) fn word(&mut self, node: &Node, path: &str, words: &[&str]) {
        if let Some(s) = self.string(node, path) {
            if !words.contains(&s) {
                self.error(
                    node,
                    path,
                    format!("`{s}` is not one of {}", words.join(", ")),
                );
            }
        }
    }
}
