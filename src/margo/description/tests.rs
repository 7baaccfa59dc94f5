use crate::margo::validate::{validate_description, validate_text};
use std::path::Path;

const GOOD: &str = "apiVersion: margo.org/v1-alpha1
kind: ApplicationDescription
metadata:
  id: poc-app
  name: PoC
  version: 1.0.0
  catalog:
    application:
      icon: ./icon.svg
    organization:
      - name: Acme
deploymentProfiles:
  - type: compose
    id: poc-app-compose
    components:
      - name: poc-app
        properties:
          packageLocation: oci://ghcr.io/acme/poc-app
parameters:
  siteId:
    value: s1
    targets:
      - pointer: ENV.SITE_ID
        components: [poc-app]
configuration:
  sections:
    - name: General
      settings:
        - parameter: siteId
          name: Site
          schema: text
  schema:
    - name: text
      dataType: string
";

fn errors(text: &str) -> Vec<(usize, String)> {
    validate_text(Path::new("margo.yaml"), text)
        .problems
        .iter()
        .map(|p| (p.line, format!("{}: {}", p.path, p.message)))
        .collect()
}

#[test]
fn a_good_description_passes_and_each_broken_one_fails_at_its_line() {
    assert_eq!(errors(GOOD), vec![]);
    let cases: &[(&str, &str, usize, &str)] = &[
        (
            "kind: ApplicationDescription",
            "kind: ApplicationDescriptio",
            2,
            "is not ApplicationDescription",
        ),
        (
            "apiVersion: margo.org/v1-alpha1",
            "apiVersion: margo.org/v1",
            1,
            "is not margo.org/v1-alpha1",
        ),
        ("  id: poc-app\n", "  id: PoC_App\n", 4, "must match"),
        (
            "      - name: Acme\n",
            "      - site: x\n",
            11,
            "`name` is required",
        ),
        (
            "  - type: compose",
            "  - type: kubernetes",
            13,
            "not a profile type",
        ),
        (
            "components: [poc-app]",
            "components: [web]",
            24,
            "names no component",
        ),
        (
            "        - parameter: siteId",
            "        - parameter: site",
            29,
            "names no parameter",
        ),
        (
            "          schema: text",
            "          schema: texts",
            31,
            "names no schema",
        ),
        (
            "      dataType: string",
            "      dataType: text",
            34,
            "is not one of",
        ),
        (
            "  name: PoC\n",
            "  name: PoC\n  owner: me\n",
            6,
            "unknown field `owner`",
        ),
    ];
    for (from, to, line, message) in cases {
        let found = errors(&GOOD.replacen(from, to, 1));
        assert!(
            found.iter().any(|(l, m)| l == line && m.contains(message)),
            "{to}: expected `{message}` at line {line}, got {found:?}"
        );
    }
    let no_org = GOOD.replacen("    organization:\n      - name: Acme\n", "", 1);
    assert!(errors(&no_org)
        .iter()
        .any(|(_, m)| m.contains("organization")));
    let no_profiles = GOOD[..GOOD.find("deploymentProfiles").unwrap()].to_string();
    assert!(errors(&no_profiles)
        .iter()
        .any(|(l, m)| *l == 1 && m.contains("deploymentProfiles")));
}

#[test]
fn resource_files_must_be_in_the_app_folder() {
    let dir = tempfile::tempdir().unwrap();
    let check = |d: &Path| validate_description(Path::new("margo.yaml"), GOOD, d);
    let missing = check(dir.path());
    assert_eq!(missing.errors().count(), 1, "{missing}");
    assert!(
        missing.to_string().contains("margo.yaml:9: error: metadata.catalog.application.icon: `./icon.svg` is not a file of the app folder"),
        "{missing}"
    );
    std::fs::write(dir.path().join("icon.svg"), "<svg/>").unwrap();
    assert_eq!(check(dir.path()).problems.len(), 0);
}
