//! Operating the daemon: its metrics and health check, its per-call log
//! lines and `kuryr status`, against the lab's dockerd, Neutron and the
//! daemon built by this run (`lab/kuryr-up` serves its metrics on
//! `/run/kuryr/metrics.sock`), and a private daemon of its own for the
//! JSON log, the journald priorities and metrics on a loopback port.
//!
//! The lab daemon is shared with the Docker tests: these run in the
//! `lab-docker` test group, one at a time, so the counters move only
//! with what a test does (compared as deltas of two scrapes).

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::docker_cli::*;
use common::env::{TempDir, account, eventually, id_tags, output_text, unique};
use common::lab::{self, Lab};
use common::ops::*;
use common::{http, requests};
use kuryr::names;
use kuryr_openstack::neutron::PortCreate;
use serde_json::{Value, json};

/// The lab daemon, with its metrics socket.
fn lab_daemon() -> &'static Path {
    ensure_daemon();
    if !Path::new(METRICS_SOCKET).exists() {
        // Started by an older lab/kuryr-up, without [metrics].
        restart_daemon();
    }
    Path::new(METRICS_SOCKET)
}

/// The seed scenario (`network create --subnet`, `run`, `rm`, `network
/// rm`) with a scrape before, during and after: the metrics move by what
/// happened, one log line per plugin call names its Docker and Neutron
/// IDs, and the Neutron request counts of the lines add up to the
/// metrics'.
#[tokio::test]
async fn metrics_and_log_lines_follow_the_seed_scenario() {
    lab::run(async |lab: &Lab| {
        let socket = lab_daemon();
        let (status, body) = get_unix(socket, "/health").await;
        assert_eq!(status, 200, "{body}");
        let health: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(health["keystone"]["ok"], true, "{health}");
        assert_eq!(health["neutron"]["ok"], true, "{health}");
        assert_eq!(health["driver"]["state"], "ready", "{health}");

        let log = LogWindow::start(&lab_driver_log());
        let before = scrape_unix(socket).await;
        let name = unique("ops");
        let subnet = lab.cidr4(0);
        let mut cleanup = Cleanup::new();
        cleanup.kuryr_network(&name, Some(&subnet), &[]);
        let nid = network_id(&name);
        lab.track_network(&nid);
        let net = lab.network_of(&nid).await;
        let c = format!("{name}-c");
        cleanup.container(&c, &name, &[]);
        let eid = docker_ok(&[
            "inspect",
            "-f",
            &format!("{{{{.NetworkSettings.Networks.{name}.EndpointID}}}}"),
            &c,
        ]);
        let ports = lab.kuryr_ports_in(&net.id).await;
        assert_eq!(ports.len(), 1, "{ports:#?}");
        let port = ports[0].id.clone();

        let during = scrape_unix(socket).await;
        assert_eq!(during.delta(&before, "kuryr_index_networks"), 1.0);
        assert_eq!(during.delta(&before, "kuryr_index_endpoints"), 1.0);

        docker_ok(&["rm", "-f", &c]);
        cleanup.containers.clear();
        docker_ok(&["network", "rm", &name]);
        cleanup.networks.clear();
        let after = scrape_unix(socket).await;
        assert_eq!(after.delta(&before, "kuryr_index_networks"), 0.0);
        assert_eq!(after.delta(&before, "kuryr_index_endpoints"), 0.0);

        // Plugin calls: each once where Docker makes it once, no error.
        for call in [
            "NetworkDriver.CreateNetwork",
            "NetworkDriver.CreateEndpoint",
            "NetworkDriver.Join",
            "NetworkDriver.Leave",
            "NetworkDriver.DeleteEndpoint",
            "NetworkDriver.DeleteNetwork",
        ] {
            assert_eq!(
                after.delta(&before, &calls_series(call, "ok")),
                1.0,
                "{call}"
            );
            let count = format!("kuryr_plugin_call_duration_seconds_count{{call=\"{call}\"}}");
            assert_eq!(after.delta(&before, &count), 1.0, "{count}");
        }
        let deltas: Vec<(String, f64)> = after
            .by_label("kuryr_plugin_calls_total", "call")
            .into_iter()
            .map(|(c, n)| {
                let was = before
                    .by_label("kuryr_plugin_calls_total", "call")
                    .get(&c)
                    .copied();
                (c, n - was.unwrap_or(0.0))
            })
            .filter(|(_, d)| *d > 0.0)
            .collect();
        println!("plugin calls of the seed scenario: {deltas:?}");
        assert!(after.delta(&before, &calls_series("IpamDriver.RequestAddress", "ok")) >= 1.0);
        assert_eq!(
            after.sum("kuryr_plugin_calls_total") - before.sum("kuryr_plugin_calls_total"),
            after.sum("kuryr_plugin_call_duration_seconds_count")
                - before.sum("kuryr_plugin_call_duration_seconds_count"),
        );
        let errors = after.sum("kuryr_plugin_call_errors_total")
            - before.sum("kuryr_plugin_call_errors_total");
        assert_eq!(
            errors,
            0.0,
            "{:?}",
            after.by_label("kuryr_plugin_call_errors_total", "kind")
        );

        // One log line per plugin call, with its IDs.
        let lines = call_lines(&log.lines());
        let counted = |s: &Scrape| s.by_label("kuryr_plugin_calls_total", "call");
        let (now, then) = (counted(&after), counted(&before));
        for (call, n) in &now {
            let delta = n - then.get(call).copied().unwrap_or(0.0);
            let logged = lines.get(call).map_or(0, Vec::len) as f64;
            assert_eq!(
                logged, delta,
                "{call}: {delta} calls, {logged} log lines: {lines:#?}"
            );
        }
        let one = |call: &str| -> String {
            let l = &lines[call];
            assert_eq!(l.len(), 1, "{call}: {l:#?}");
            l[0].clone()
        };
        let create = one("NetworkDriver.CreateNetwork");
        assert_eq!(
            field(&create, "network").as_deref(),
            Some(nid.as_str()),
            "{create}"
        );
        assert_eq!(
            field(&create, "neutron_network").as_deref(),
            Some(net.id.as_str()),
            "{create}"
        );
        for call in [
            "NetworkDriver.CreateEndpoint",
            "NetworkDriver.Join",
            "NetworkDriver.DeleteEndpoint",
        ] {
            let l = one(call);
            assert_eq!(field(&l, "endpoint").as_deref(), Some(eid.as_str()), "{l}");
            assert_eq!(field(&l, "network").as_deref(), Some(nid.as_str()), "{l}");
            assert_eq!(
                field(&l, "neutron_port").as_deref(),
                Some(port.as_str()),
                "{l}"
            );
            assert_eq!(
                field(&l, "neutron_network").as_deref(),
                Some(net.id.as_str()),
                "{l}"
            );
            assert!(
                field(&l, "ms").is_some() && field(&l, "neutron_calls").is_some(),
                "{l}"
            );
        }
        let delete = one("NetworkDriver.DeleteNetwork");
        assert_eq!(
            field(&delete, "neutron_network").as_deref(),
            Some(net.id.as_str()),
            "{delete}"
        );

        // Neutron requests: the lines' counts, the per-call histogram and
        // the client's counters agree.
        let logged: f64 = lines
            .values()
            .flatten()
            .filter_map(|l| field(l, "neutron_calls")?.parse::<f64>().ok())
            .sum();
        let per_call = after.sum("kuryr_plugin_call_neutron_requests_sum")
            - before.sum("kuryr_plugin_call_neutron_requests_sum");
        let sent =
            after.sum("kuryr_neutron_requests_total") - before.sum("kuryr_neutron_requests_total");
        println!("Neutron requests: {logged} in the log lines, {per_call} per call, {sent} sent");
        assert!(logged > 0.0);
        assert_eq!(per_call, logged);
        // Only background work (none in this window) could add more.
        assert!(sent >= per_call, "{sent} < {per_call}");
        let ops = |s: &Scrape| s.by_label("kuryr_neutron_requests_total", "operation");
        let (ops_now, ops_then) = (ops(&after), ops(&before));
        let op_delta = |op: &str| {
            ops_now.get(op).copied().unwrap_or(0.0) - ops_then.get(op).copied().unwrap_or(0.0)
        };
        assert_eq!(op_delta("create_network"), 1.0);
        // One DELETE, on the network's revision (If-Match) when known.
        assert_eq!(
            op_delta("delete_network") + op_delta("delete_network_if"),
            1.0
        );
        assert!(op_delta("create_port") >= 1.0);
        assert_eq!(
            after.delta(
                &before,
                "kuryr_neutron_requests_total{operation=\"create_network\",status=\"201\"}"
            ),
            1.0
        );
        assert_eq!(
            after.delta(
                &before,
                "kuryr_neutron_request_duration_seconds_count{operation=\"create_network\"}"
            ),
            1.0
        );
        assert!(after.get("kuryr_keystone_tokens_issued_total") >= 1.0);

        // Secrets never in the log.
        let password = account("kuryr").password;
        let all = log.lines().join("\n");
        assert!(!all.contains(&password), "the password is in the log");
        assert!(
            !all.to_ascii_lowercase().contains("x-auth-token"),
            "a token header is in the log"
        );
    })
    .await;
}

/// `kuryr status --json` against the lab: a container's endpoint with its
/// ACTIVE port bound here; a port planted with an endpoint's tags and no
/// Docker endpoint is flagged, and so is an endpoint whose port was
/// deleted behind Docker's back.
#[tokio::test]
async fn status_flags_what_is_out_of_step() {
    lab::run(async |lab: &Lab| {
        lab_daemon();
        let kuryr = env!("CARGO_BIN_EXE_kuryr");
        let conf = lab_driver_conf();
        let name = unique("ops-st");
        let subnet = lab.cidr4(0);
        let mut cleanup = Cleanup::new();
        cleanup.kuryr_network(&name, Some(&subnet), &[]);
        let nid = network_id(&name);
        lab.track_network(&nid);
        let net = lab.network_of(&nid).await;
        let c = format!("{name}-c");
        cleanup.container(&c, &name, &[]);
        let port = lab.kuryr_ports_in(&net.id).await.remove(0);

        let ours = |json: &Value| -> Vec<Value> {
            json["out_of_step"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["docker_network"] == nid.as_str())
                .cloned()
                .collect()
        };
        let (_, json) = status_json(kuryr, &conf);
        assert_eq!(json["host"], lab.host.as_str());
        let network = json["networks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["docker_id"] == nid.as_str())
            .unwrap_or_else(|| panic!("{name} not in {json:#}"))
            .clone();
        assert_eq!(network["neutron_network"], net.id.as_str());
        let ep = &network["endpoints"][0];
        assert_eq!(ep["port"]["id"], port.id.as_str(), "{network:#}");
        assert_eq!(ep["port"]["status"], "ACTIVE", "{network:#}");
        assert_eq!(ep["port"]["binding_host"], lab.host.as_str());
        assert!(ours(&json).is_empty(), "{json:#}");

        // A port for an endpoint Docker does not have.
        let ghost = common::env::docker_id();
        let planted = lab
            .neutron
            .create_port(&PortCreate {
                network_id: net.id.clone(),
                name: Some(names::endpoint_port_name(
                    &kuryr::protocol::DockerId::parse(&ghost).unwrap(),
                )),
                device_owner: Some(names::DEVICE_OWNER.into()),
                device_id: Some(ghost.clone()),
                host_id: Some(lab.host.clone()),
                ..Default::default()
            })
            .await
            .expect("plant a port");
        lab.track_user_port(&planted.id);
        for tag in id_tags(&ghost) {
            lab.neutron
                .add_tag(kuryr_openstack::TagResource::Port, &planted.id, &tag)
                .await
                .unwrap();
        }
        let (code, json) = status_json(kuryr, &conf);
        assert_eq!(code, 1, "{json:#}");
        let flagged = ours(&json);
        assert_eq!(flagged.len(), 1, "{json:#}");
        assert_eq!(flagged[0]["kind"], "port_without_endpoint");
        assert_eq!(flagged[0]["port"], planted.id.as_str());
        assert_eq!(flagged[0]["endpoint"], ghost.as_str());
        let table = Command::new(kuryr)
            .arg("--config-file")
            .arg(&conf)
            .arg("status")
            .output()
            .unwrap();
        let text = output_text(&table);
        assert!(
            text.contains("port_without_endpoint") && text.contains(&planted.id),
            "{text}"
        );
        lab.neutron.delete_port(&planted.id).await.unwrap();

        // The container's port deleted behind Docker's back.
        lab.neutron.delete_port(&port.id).await.unwrap();
        let (code, json) = status_json(kuryr, &conf);
        assert_eq!(code, 1);
        let flagged = ours(&json);
        assert_eq!(flagged.len(), 1, "{json:#}");
        assert_eq!(flagged[0]["kind"], "endpoint_without_port");
        docker_ok(&["rm", "-f", &c]);
        cleanup.containers.clear();
    })
    .await;
}

/// A daemon of the test's own, as an operator would configure it:
/// `use_json` and `log_file`, metrics on a loopback port, stderr taken
/// for journald (`JOURNAL_STREAM` names the file it writes to).
struct PrivateDaemon {
    child: Child,
    dir: TempDir,
    metrics: String,
}

impl PrivateDaemon {
    fn start() -> PrivateDaemon {
        use std::os::unix::fs::MetadataExt;
        let dir = TempDir::new("kuryr-ops-");
        let port = 20000 + (common::env::random_u64() % 20000) as u16;
        let metrics = format!("127.0.0.1:{port}");
        let base =
            std::fs::read_to_string(format!("{}/kuryr.conf", common::env::lab_dir())).unwrap();
        let conf = dir.join("kuryr.conf");
        let text = format!(
            "{base}\n[DEFAULT]\nplugin_socket = {sock}\nlog_file = {log}\nuse_json = true\nuse_stderr = true\n\n[metrics]\nlisten = {metrics}\n",
            sock = dir.join("kuryr.sock").display(),
            log = dir.join("log/kuryr.log").display(),
        );
        std::fs::write(&conf, text).unwrap();
        std::fs::set_permissions(&conf, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let stderr = std::fs::File::create(dir.join("stderr")).unwrap();
        let meta = stderr.metadata().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_kuryr-server"))
            .arg("--config-file")
            .arg(&conf)
            .env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start kuryr-server");
        PrivateDaemon {
            child,
            dir,
            metrics,
        }
    }

    fn socket(&self) -> std::path::PathBuf {
        self.dir.join("kuryr.sock")
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let request = http::post(path, body.to_string().as_bytes(), "");
        let (status, reply) = http::unix(&self.socket(), &request, Duration::from_secs(60))
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        (
            status,
            serde_json::from_slice(&reply).unwrap_or(Value::Null),
        )
    }
}

impl Drop for PrivateDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// JSON log lines (one per call, IDs as fields) in the log file, the same
/// events with their journald priority on stderr, and metrics and
/// `/health` on a loopback port.
#[tokio::test]
async fn json_logs_journald_priorities_and_a_loopback_metrics_port() {
    lab::run(async |lab: &Lab| {
        let d = PrivateDaemon::start();
        eventually(
            "the private daemon answers /health",
            Duration::from_secs(60),
            || async {
                let (status, body) = http::tcp(
                    &d.metrics,
                    b"GET /health HTTP/1.1\r\nHost: k\r\nConnection: close\r\n\r\n",
                    Duration::from_secs(10),
                )
                .await
                .ok()?;
                (status == 200).then_some(String::from_utf8_lossy(&body).into_owned())
            },
        )
        .await;
        let cidr = lab.cidr4(1);
        let nid = common::env::docker_id();
        lab.track_network(&nid);
        let (status, pool) = d
            .post(
                "/IpamDriver.RequestPool",
                requests::request_pool(&cidr, "", false, json!({})),
            )
            .await;
        assert_eq!(status, 200, "{pool}");
        let pool_id = pool["PoolID"].as_str().unwrap().to_string();
        lab.track_pool(&pool_id);
        let gateway = format!("{}.1", lab.slot.prefix4(1));
        let (status, reply) = d
            .post(
                "/NetworkDriver.CreateNetwork",
                requests::create_network(
                    &nid,
                    json!({}),
                    vec![requests::ipam_data(&cidr, &format!("{gateway}/24"))],
                    vec![],
                ),
            )
            .await;
        assert_eq!(status, 200, "{reply}");
        let net = lab.network_of(&nid).await;
        let (status, _) = d
            .post("/NetworkDriver.DeleteNetwork", requests::network(&nid))
            .await;
        assert_eq!(status, 200);
        let (status, _) = d
            .post("/IpamDriver.ReleasePool", requests::release_pool(&pool_id))
            .await;
        assert_eq!(status, 200);
        let (status, reply) = d.post("/NetworkDriver.Nope", json!({})).await;
        assert_eq!(status, 404, "{reply}");

        let log = std::fs::read_to_string(d.dir.join("log/kuryr.log")).unwrap();
        let events: Vec<Value> = log
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        let of = |call: &str| -> Vec<&Value> {
            events
                .iter()
                .filter(|e| e["call"] == call && e.get("ms").is_some())
                .collect()
        };
        let create = of("NetworkDriver.CreateNetwork");
        assert_eq!(create.len(), 1, "{log}");
        assert_eq!(create[0]["network"], nid.as_str());
        assert_eq!(create[0]["neutron_network"], net.id.as_str());
        assert_eq!(create[0]["level"], "INFO");
        assert!(
            create[0]["neutron_calls"].as_u64().unwrap() >= 1,
            "{}",
            create[0]
        );
        let request_pool = of("IpamDriver.RequestPool");
        assert_eq!(request_pool.len(), 1);
        assert_eq!(request_pool[0]["pool"], pool_id.as_str());
        assert_eq!(
            of("NetworkDriver.DeleteNetwork")[0]["neutron_network"],
            net.id.as_str()
        );
        assert_eq!(of("IpamDriver.ReleasePool")[0]["pool"], pool_id.as_str());
        assert!(
            events
                .iter()
                .any(|e| e["level"] == "WARN" && e["message"] == "refused"),
            "{log}"
        );

        // stderr is "the journal": each line carries its priority.
        let stderr = std::fs::read_to_string(d.dir.join("stderr")).unwrap();
        let info = stderr
            .lines()
            .find(|l| l.contains("NetworkDriver.CreateNetwork"))
            .unwrap_or_else(|| panic!("{stderr}"));
        assert!(info.starts_with("<6>{"), "{info}");
        let refused = stderr
            .lines()
            .find(|l| l.contains("\"refused\""))
            .unwrap_or_else(|| panic!("{stderr}"));
        assert!(refused.starts_with("<4>"), "{refused}");

        let (status, body) = get_tcp(&d.metrics, "/metrics").await;
        assert_eq!(status, 200);
        let s = Scrape::parse(&body);
        assert_eq!(
            s.get(&calls_series("NetworkDriver.CreateNetwork", "ok")),
            1.0,
            "{body}"
        );
        assert_eq!(s.get(&calls_series("unknown", "error")), 1.0, "{body}");
        assert_eq!(
            s.get("kuryr_plugin_call_errors_total{call=\"unknown\",kind=\"unknown_method\"}"),
            1.0
        );
        let (status, health) = get_tcp(&d.metrics, "/health").await;
        assert_eq!(status, 200, "{health}");
        assert!(!log.contains(&account("kuryr").password));
    })
    .await;
}
