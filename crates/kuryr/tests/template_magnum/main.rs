//! `kuryr template validate` against Magnum's own validator.
//!
//! The template validator says it applies Magnum's rules. This test holds
//! it to that: a corpus of templates (tests/template_magnum/corpus.rs) goes
//! to Magnum's code as Debian ships it (python3-magnum 15, Zed: WSME
//! parsing, the create decorators, `attr_validator`, called directly by
//! lab/magnum-validate.py with only the cloud look-ups faked) and to ours
//! (the library's `ClusterTemplate::from_json`, which is what the
//! subcommand runs). For every template the two must agree:
//! - both accept, and what Magnum would store (network driver filled in,
//!   labels as strings, booleans, ...) is what ours prints as the effective
//!   template;
//! - or both refuse, and the attribute Magnum refused first is among the
//!   problems ours reports (ours reports every problem; a problem on
//!   `labels/x` matches Magnum's `labels`);
//! - or Magnum fails with a 500 (it crashes on some values) and ours
//!   refuses with a clear problem.
//!
//! Except where the case is tagged with one of [`DIFFERENCES`], the
//! deliberate differences, each a row of the table in docs/user-guide.md
//! (checked here too). Both verdicts are printed for every template.

// A test binary in a folder finds the shared tree one level up.
#[path = "../common/mod.rs"]
mod common;
mod corpus;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

use common::env::repo_root;
use kuryr::cluster::{ClusterTemplate, NetworkDriverPolicy};
use serde_json::{Value, json};

const PYTHON: &str = "/usr/bin/python3";

/// What the deliberately different verdicts look like.
#[derive(Clone, Copy)]
enum Side {
    Accept,
    /// Refuses, with a problem on a field starting with one of these.
    RefuseOn(&'static [&'static str]),
    /// Whatever it says.
    Any,
}

/// A deliberate difference: the id of its row in the user guide's table,
/// and the verdicts expected from Magnum and from ours.
struct Difference {
    id: &'static str,
    magnum: Side,
    ours: Side,
}

const SHOW_ONLY: &[&str] = &[
    "links",
    "created_at",
    "updated_at",
    "project_id",
    "user_id",
    "id",
    "driver",
];

const DIFFERENCES: &[Difference] = &[
    Difference {
        id: "kuryr-labels",
        magnum: Side::Accept,
        ours: Side::RefuseOn(&["labels/kuryr_", "labels/Kuryr_"]),
    },
    Difference {
        id: "coe-kubernetes",
        magnum: Side::Any,
        ours: Side::RefuseOn(&["coe"]),
    },
    Difference {
        id: "name-control-characters",
        magnum: Side::Accept,
        ours: Side::RefuseOn(&["name"]),
    },
    Difference {
        id: "image-id-optional",
        magnum: Side::RefuseOn(&["image_id"]),
        ours: Side::Accept,
    },
    Difference {
        id: "labels-cli-string",
        magnum: Side::RefuseOn(&["labels"]),
        ours: Side::Accept,
    },
    Difference {
        id: "show-output-fields",
        magnum: Side::RefuseOn(SHOW_ONLY),
        ours: Side::Accept,
    },
];

/// One validator's verdict on one template.
#[derive(Debug)]
struct Verdict {
    /// `accept`, `refuse` or (Magnum only) `crash`.
    kind: String,
    /// (field, message) of every problem; Magnum reports one.
    problems: Vec<(String, String)>,
    /// Accepted: what would be stored / the effective template.
    stored: Value,
}

impl Verdict {
    fn show(&self) -> String {
        match self.kind.as_str() {
            "accept" => "accept".to_string(),
            kind => {
                let p: Vec<String> = self
                    .problems
                    .iter()
                    .map(|(f, m)| format!("{}: {}", if f.is_empty() { "-" } else { f }, short(m)))
                    .collect();
                format!("{kind} [{}]", p.join(" | "))
            }
        }
    }

    fn fields(&self) -> impl Iterator<Item = &str> {
        self.problems.iter().map(|(f, _)| f.as_str())
    }

    fn matches(&self, side: Side) -> bool {
        match side {
            Side::Any => true,
            Side::Accept => self.kind == "accept",
            Side::RefuseOn(prefixes) => {
                self.kind != "accept"
                    && self
                        .fields()
                        .any(|f| prefixes.iter().any(|p| f.starts_with(p)))
            }
        }
    }
}

fn short(m: &str) -> String {
    let m = m.replace('\n', "\\n");
    if m.chars().count() > 160 {
        format!("{}...", m.chars().take(160).collect::<String>())
    } else {
        m
    }
}

/// Run Magnum's validation on every case.
fn magnum_verdicts(cases: &[corpus::Case]) -> Vec<Verdict> {
    let input: Vec<Value> = cases
        .iter()
        .map(|c| {
            json!({"name": c.name, "body": c.body,
                   "policy": {"allowed": c.policy.0, "default": c.policy.1}})
        })
        .collect();
    let script = repo_root().join("lab/magnum-validate.py");
    let install = "install Debian's python3-magnum (`sudo apt-get install --no-install-recommends \
                   python3-magnum`; lab/up, run by ./run-tests, installs it)";
    let mut child = Command::new(PYTHON)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {PYTHON} {}: {e}; {install}", script.display()));
    let body = serde_json::to_vec(&input).expect("corpus as JSON");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&body)
        .expect("write the corpus");
    let out = child.wait_with_output().expect("magnum-validate.py");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "lab/magnum-validate.py failed ({}): {stderr}\nIf Magnum is missing: {install}",
        out.status
    );
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(
        lines.len(),
        cases.len(),
        "one verdict per case; stderr: {stderr}"
    );
    lines
        .into_iter()
        .map(|v| {
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            let kind = s("verdict");
            let problems = if kind == "accept" {
                Vec::new()
            } else {
                vec![(s("field"), s("message"))]
            };
            Verdict {
                kind,
                problems,
                stored: v["stored"].clone(),
            }
        })
        .collect()
}

fn our_verdict(case: &corpus::Case) -> Verdict {
    let policy = NetworkDriverPolicy {
        allowed: case.policy.0.clone(),
        default: case.policy.1.clone(),
    };
    match ClusterTemplate::from_json(&case.body, &policy) {
        Ok(t) => Verdict {
            kind: "accept".into(),
            problems: Vec::new(),
            stored: t.to_json(),
        },
        Err(problems) => Verdict {
            kind: "refuse".into(),
            problems: problems.into_iter().map(|p| (p.field, p.message)).collect(),
            stored: Value::Null,
        },
    }
}

/// A DNS list as addresses, whatever the spacing.
fn dns(v: &Value) -> Value {
    match v.as_str() {
        Some(s) => json!(s.split(',').map(str::trim).collect::<Vec<_>>()),
        None => Value::Null,
    }
}

/// Differences between what Magnum would store and our effective template.
fn stored_differences(magnum: &Value, ours: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut check = |key: &str, m: Value, o: Value| {
        if m != o {
            out.push(format!("{key}: Magnum stores {m}, ours gives {o}"));
        }
    };
    for key in [
        "coe",
        "network_driver",
        "fixed_network",
        "fixed_subnet",
        "external_network_id",
        "tls_disabled",
    ] {
        check(key, magnum[key].clone(), ours[key].clone());
    }
    let labels = |v: &Value| match v {
        Value::Null => json!({}),
        other => other.clone(),
    };
    check("labels", labels(&magnum["labels"]), labels(&ours["labels"]));
    check(
        "dns_nameserver",
        dns(&magnum["dns_nameserver"]),
        dns(&ours["dns_nameserver"]),
    );
    // Magnum names an unnamed template itself.
    if !ours["name"].is_null() {
        check("name", magnum["name"].clone(), ours["name"].clone());
    }
    out
}

/// Whether the two agree; `Err` says how they do not.
fn agreement(magnum: &Verdict, ours: &Verdict) -> Result<&'static str, String> {
    match (magnum.kind.as_str(), ours.kind.as_str()) {
        ("accept", "accept") => {
            let diffs = stored_differences(&magnum.stored, &ours.stored);
            if diffs.is_empty() {
                Ok("both accept")
            } else {
                Err(format!("both accept, but {}", diffs.join("; ")))
            }
        }
        (kind @ ("crash" | "refuse"), "refuse") => {
            let first = &magnum.problems[0].0;
            let how = if kind == "crash" {
                "Magnum fails (500), ours refuses"
            } else {
                "both refuse"
            };
            // Magnum's crash in the stored object names no attribute.
            if first.is_empty() && kind == "crash" {
                return Ok(how);
            }
            let found = ours
                .fields()
                .any(|f| f == first || f.starts_with(&format!("{first}/")));
            if found {
                Ok(how)
            } else {
                Err(format!(
                    "both refuse, but ours reports nothing on {first:?}"
                ))
            }
        }
        (m, o) => Err(format!("Magnum: {m}, ours: {o}")),
    }
}

/// The ids in the first column of the user guide's table of deliberate
/// differences (the table after the heading naming them).
fn documented_differences() -> BTreeSet<String> {
    let guide =
        std::fs::read_to_string(repo_root().join("docs/user-guide.md")).expect("user guide");
    let start = guide
        .find("### Where kuryr differs from Magnum")
        .expect("docs/user-guide.md has a section \"### Where kuryr differs from Magnum\"");
    guide[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .filter_map(|l| {
            let cell = l.split('|').nth(1)?.trim();
            Some(cell.trim_matches('`').to_string())
        })
        .collect()
}

#[test]
fn template_validation_agrees_with_magnum() {
    let started = Instant::now();
    let cases = corpus::cases(&repo_root());
    let magnum = magnum_verdicts(&cases);
    let magnum_time = started.elapsed();
    let by_id: BTreeMap<&str, &Difference> = DIFFERENCES.iter().map(|d| (d.id, d)).collect();

    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for (case, m) in cases.iter().zip(&magnum) {
        let o = our_verdict(case);
        let outcome = match (case.differs, agreement(m, &o)) {
            (None, Ok(how)) => Ok(how.to_string()),
            (None, Err(why)) => Err(why),
            (Some(id), Ok(how)) => Err(format!(
                "tagged as difference {id}, but they agree ({how}): remove the tag"
            )),
            (Some(id), Err(_)) => {
                let d = by_id
                    .get(id)
                    .unwrap_or_else(|| panic!("unknown difference {id}"));
                if m.matches(d.magnum) && o.matches(d.ours) {
                    Ok(format!("differs by design: {id}"))
                } else {
                    Err(format!("tagged {id}, but not the documented difference"))
                }
            }
        };
        let label = match &outcome {
            Ok(how) => how.clone(),
            Err(why) => format!("MISMATCH: {why}"),
        };
        println!("{} :: {label}", case.name);
        println!("    magnum: {}", m.show());
        println!("    kuryr:  {}", o.show());
        match outcome {
            Ok(how) => *counts.entry(how).or_default() += 1,
            Err(why) => failures.push(format!("{}: {why}", case.name)),
        }
    }

    println!(
        "\n{} templates in {:.1?} (Magnum's side {magnum_time:.1?}):",
        cases.len(),
        started.elapsed()
    );
    for (how, n) in &counts {
        println!("  {n:4}  {how}");
    }
    assert!(
        failures.is_empty(),
        "{} of {} templates disagree:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );

    // Every difference is documented, shown by the corpus, and nothing else
    // is in the guide's table.
    let ids: BTreeSet<String> = DIFFERENCES.iter().map(|d| d.id.to_string()).collect();
    assert_eq!(
        documented_differences(),
        ids,
        "the user guide's table of differences and this test's list differ"
    );
    let used: BTreeSet<String> = cases
        .iter()
        .filter_map(|c| c.differs.map(str::to_string))
        .collect();
    assert_eq!(
        used, ids,
        "every difference is shown by at least one template"
    );
}
