use crate::margo::validate::validate_text;
use std::path::Path;

/// The normative form, as the shipped `margo` template writes it.
pub(crate) const GOOD: &str = "apiVersion: application.margo.org/v1alpha1
kind: ApplicationDeployment
metadata:
  annotations:
    id: 6f1c3c52-9d3a-4a8e-9a55-0e6a1f3c2b10
    applicationId: poc-app
  name: poc-app-site-0001
  namespace: margo
spec:
  deploymentProfile:
    type: compose
    components:
      - name: poc-app
        properties:
          repository: oci://ghcr.io/acme/poc-app
          revision: 1.0.0
  parameters:
    siteId:
      value: site-0001
      targets:
        - pointer: ENV.SITE_ID
          components: [poc-app]
";

/// (line, path, message, warning) of every problem.
fn all(text: &str) -> Vec<(usize, String, String, bool)> {
    validate_text(Path::new("d.yaml"), text)
        .problems
        .iter()
        .map(|p| (p.line, p.path.clone(), p.message.clone(), p.warning))
        .collect()
}

fn problems(text: &str) -> Vec<(usize, String, String)> {
    all(text)
        .into_iter()
        .filter(|p| !p.3)
        .map(|(l, p, m, _)| (l, p, m))
        .collect()
}

fn has(found: &[(usize, String, String)], line: usize, message: &str) -> bool {
    found
        .iter()
        .any(|(l, _, m)| *l == line && m.contains(message))
}

#[test]
fn a_good_document_passes_without_a_warning() {
    assert_eq!(all(GOOD), vec![]);
}

#[test]
fn each_broken_document_fails_for_its_own_reason_at_its_line() {
    let cases: &[(&str, &str, usize, &str)] = &[
        (
            "id: 6f1c3c52-9d3a-4a8e-9a55-0e6a1f3c2b10",
            "id: 42",
            5,
            "is not a UUID",
        ),
        (
            "applicationId: poc-app",
            "applicationId: PoC_App",
            6,
            "must match",
        ),
        (
            "type: compose",
            "type: kubernetes",
            11,
            "not a profile type",
        ),
        ("- name: poc-app", "- name: PoC", 13, "lower-case"),
        (
            "components: [poc-app]",
            "components: [web]",
            22,
            "names no component",
        ),
        (
            "revision: 1.0.0",
            "revison: 1.0.0",
            16,
            "unknown field `revison`",
        ),
        (
            "kind: ApplicationDeployment",
            "kind: Deployment",
            2,
            "is not ApplicationDeployment",
        ),
        (
            "  namespace: margo\n",
            "  namespace: margo\n  owner: me\n",
            9,
            "unknown field `owner`",
        ),
    ];
    for (from, to, line, message) in cases {
        let found = problems(&GOOD.replacen(from, to, 1));
        assert!(
            has(&found, *line, message),
            "{to}: expected `{message}` at line {line}, got {found:?}"
        );
    }
    assert!(problems("a: [unclosed\n")[0]
        .2
        .starts_with("not valid YAML"));
}

#[test]
fn every_required_field_is_an_error_at_its_parent_when_missing() {
    // (the line removed, the line of the error, the field named)
    let cases: &[(&str, usize, &str)] = &[
        (
            "apiVersion: application.margo.org/v1alpha1\n",
            1,
            "apiVersion",
        ),
        ("kind: ApplicationDeployment\n", 1, "kind"),
        (
            "    id: 6f1c3c52-9d3a-4a8e-9a55-0e6a1f3c2b10\n",
            5,
            "metadata.annotations.id",
        ),
        ("    applicationId: poc-app\n", 5, "applicationId"),
        ("  name: poc-app-site-0001\n", 4, "name"),
        ("  namespace: margo\n", 4, "namespace"),
        ("    type: compose\n", 11, "type"),
    ];
    for (line, at, field) in cases {
        let found = problems(&GOOD.replacen(line, "", 1));
        assert!(
            has(&found, *at, field),
            "without {line:?}: expected `{field}` at line {at}, got {found:?}"
        );
    }
    let no_parameters = GOOD[..GOOD.find("  parameters:").unwrap()].to_string();
    assert!(has(&problems(&no_parameters), 10, "parameters"));
    let no_profile = GOOD.replacen("  deploymentProfile:", "  deploymentProfil:", 1);
    assert!(has(&problems(&no_profile), 10, "deploymentProfile"));
    let empty = no_parameters + "  parameters: {}\n";
    assert_eq!(all(&empty), vec![], "an empty parameters map is fine");
}

#[test]
fn the_top_level_id_is_an_older_form_and_must_agree() {
    let id = "    id: 6f1c3c52-9d3a-4a8e-9a55-0e6a1f3c2b10\n";
    let top = GOOD.replacen(id, "", 1).replacen(
        "kind: ApplicationDeployment\n",
        "kind: ApplicationDeployment\nid: 6f1c3c52-9d3a-4a8e-9a55-0e6a1f3c2b10\n",
        1,
    );
    let found = all(&top);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].3 && found[0].2.contains("metadata.annotations.id"),
        "{found:?}"
    );
    let both = GOOD.replacen(
        "kind: ApplicationDeployment\n",
        "kind: ApplicationDeployment\nid: 0b9d7c1e-1111-4a8e-9a55-0e6a1f3c2b10\n",
        1,
    );
    assert!(has(
        &problems(&both),
        3,
        "differs from metadata.annotations.id"
    ));
}

#[test]
fn every_profile_type_of_the_specification_is_accepted() {
    for (t, warnings) in [
        ("compose", 0),
        ("docker-compose", 1),
        ("helm.v3", 0),
        ("helm", 0),
    ] {
        let text = GOOD.replacen("type: compose", &format!("type: {t}"), 1);
        let found = all(&text);
        assert!(found.iter().all(|p| p.3), "{t}: {found:?}");
        assert_eq!(found.len(), warnings, "{t}: {found:?}");
    }
    let helm = GOOD.replacen("type: compose", "type: helm.v3", 1).replacen(
        "revision: 1.0.0",
        "revision: 1.0.0\n          wait: \"true\"\n          timeout: 8m30s",
        1,
    );
    assert_eq!(all(&helm), vec![]);
    let wrong = helm.replacen("\"true\"", "sometimes", 1);
    assert!(has(&problems(&wrong), 17, "expected \"true\" or \"false\""));
}

#[test]
fn the_poc_form_passes_with_one_warning() {
    let poc = GOOD.replace("type: compose", "type: docker-compose").replace(
            "repository: oci://ghcr.io/acme/poc-app\n          revision: 1.0.0",
            "packageLocation: https://ghcr.io/v2/acme/poc-app/blobs/sha256:00\n          keyLocation: https://ghcr.io/v2/acme/key/blobs/sha256:01",
        );
    let report = validate_text(Path::new("poc.yaml"), &poc);
    assert_eq!(report.errors().count(), 0, "{report}");
    assert_eq!(
        report.problems.iter().filter(|p| p.warning).count(),
        1,
        "{report}"
    );
}
