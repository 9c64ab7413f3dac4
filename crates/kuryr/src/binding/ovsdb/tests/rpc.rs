//! The client against a scripted peer on an in-memory stream: requests as
//! sent, responses as split or batched as a socket may deliver them, the
//! server's echo requests, errors, timeouts and hang-ups.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use crate::binding::ovsdb::framing::Framer;
use crate::binding::ovsdb::*;

/// The server's end of the stream.
struct Peer {
    stream: DuplexStream,
    framer: Framer,
}

impl Peer {
    /// The next message the client sent.
    async fn recv(&mut self) -> Value {
        loop {
            if let Some(m) = self.framer.next_message().unwrap() {
                return m;
            }
            let read = self.stream.read_buf(self.framer.buffer());
            let n = tokio::time::timeout(Duration::from_secs(5), read)
                .await
                .expect("the client sent nothing")
                .unwrap();
            assert!(n > 0, "the client closed the stream");
        }
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    async fn send(&mut self, v: Value) {
        self.send_raw(v.to_string().as_bytes()).await;
    }
}

fn pair(timeout: Option<Duration>) -> (Client, Peer) {
    let (a, b) = tokio::io::duplex(1 << 16);
    let client = Client::from_stream(a, "unix:/test/db.sock", timeout);
    let peer = Peer {
        stream: b,
        framer: Framer::default(),
    };
    (client, peer)
}

fn select_port() -> Vec<Op> {
    vec![Op::select("Port", vec![Cond::eq("name", "p")], &["_uuid"])]
}

const SECS_5: Option<Duration> = Some(Duration::from_secs(5));

#[tokio::test]
async fn transact_request_and_a_response_in_pieces() {
    let (client, mut peer) = pair(SECS_5);
    let call = tokio::spawn(async move { client.transact(DB, &select_port()).await });
    let req = peer.recv().await;
    assert_eq!(req["method"], "transact");
    assert_eq!(
        req["params"],
        json!(["Open_vSwitch", {"op": "select", "table": "Port",
               "where": [["name", "==", "p"]], "columns": ["_uuid"]}])
    );
    let id = req["id"].as_u64().expect("numeric id");
    let reply = json!({"id": id, "result": [{"rows": [{"_uuid": ["uuid", "u1"]}]}], "error": null})
        .to_string();
    for piece in reply.as_bytes().chunks(7) {
        peer.send_raw(piece).await;
        tokio::task::yield_now().await;
    }
    let res = call.await.unwrap().unwrap();
    assert_eq!(res[0].rows().unwrap()[0]["_uuid"], Datum::uuid("u1"));
}

#[tokio::test]
async fn concurrent_calls_answered_out_of_order_in_one_write() {
    let (client, mut peer) = pair(SECS_5);
    let c1 = client.clone();
    let first = tokio::spawn(async move { c1.transact(DB, &select_port()).await });
    let r1 = peer.recv().await;
    let c2 = client.clone();
    let second = tokio::spawn(async move { c2.echo().await });
    let r2 = peer.recv().await;
    assert_eq!(r2["method"], "echo");
    assert_ne!(r1["id"], r2["id"]);
    let both = format!(
        "{}\n{}",
        json!({"id": r2["id"], "result": r2["params"], "error": null}),
        json!({"id": r1["id"], "result": [{"rows": []}], "error": null})
    );
    peer.send_raw(both.as_bytes()).await;
    second.await.unwrap().unwrap();
    assert!(first.await.unwrap().unwrap()[0].rows().unwrap().is_empty());
}

#[tokio::test]
async fn the_servers_echo_is_answered_while_a_call_waits() {
    let (client, mut peer) = pair(SECS_5);
    let call = tokio::spawn(async move { client.transact(DB, &select_port()).await });
    let req = peer.recv().await;
    peer.send(json!({"method": "echo", "params": ["probe"], "id": "echo"}))
        .await;
    assert_eq!(
        peer.recv().await,
        json!({"id": "echo", "result": ["probe"], "error": null})
    );
    // A request the client does not know gets an error; a notification
    // it does not know is ignored.
    peer.send(json!({"method": "lock", "params": ["x"], "id": 9}))
        .await;
    let answer = peer.recv().await;
    assert_eq!(answer["id"], 9);
    assert_eq!(answer["error"]["error"], "unknown method");
    peer.send(json!({"method": "locked", "params": ["x"], "id": null}))
        .await;
    peer.send(json!({"id": req["id"], "result": [{"rows": []}], "error": null}))
        .await;
    call.await.unwrap().unwrap();
}

#[tokio::test]
async fn error_replies() {
    let (client, mut peer) = pair(SECS_5);
    let c = client.clone();
    let call = tokio::spawn(async move { c.transact("Nope", &select_port()).await });
    let req = peer.recv().await;
    peer.send(
        json!({"id": req["id"], "error": {"error": "unknown database",
        "details": "transact request specifies unknown database Nope"}}),
    )
    .await;
    let e = call.await.unwrap().unwrap_err();
    assert!(
        matches!(&e, OvsdbError::Rpc { method, .. } if method == "transact"),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "ovsdb-server refused transact: unknown database \
         (transact request specifies unknown database Nope)"
    );

    // An operation's error fails the transaction, naming it.
    let c = client.clone();
    let call = tokio::spawn(async move { c.transact(DB, &select_port()).await });
    let req = peer.recv().await;
    peer.send(json!({"id": req["id"], "result": [{"error": "syntax error",
        "details": "bad column"}], "error": null}))
        .await;
    let e = call.await.unwrap().unwrap_err();
    assert!(
        matches!(
            &e,
            OvsdbError::Operation {
                index: 0,
                op: "select",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("syntax error (bad column)"), "{e}");
}

#[tokio::test]
async fn a_call_without_answer_times_out_and_the_connection_stays_usable() {
    let (client, mut peer) = pair(Some(Duration::from_millis(200)));
    let started = tokio::time::Instant::now();
    let e = client.transact(DB, &select_port()).await.unwrap_err();
    assert!(matches!(e, OvsdbError::Timeout { .. }), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(
        e.to_string(),
        "transact: no answer from ovsdb-server at unix:/test/db.sock within 0.2 s"
    );
    assert!(e.is_connection_lost());
    // The late answer is dropped; the next call is answered.
    let late = peer.recv().await;
    peer.send(json!({"id": late["id"], "result": [], "error": null}))
        .await;
    let c = client.clone();
    let call = tokio::spawn(async move { c.echo().await });
    let req = peer.recv().await;
    peer.send(json!({"id": req["id"], "result": req["params"], "error": null}))
        .await;
    call.await.unwrap().unwrap();
}

#[tokio::test]
async fn hang_up_fails_pending_and_later_calls() {
    let (client, mut peer) = pair(SECS_5);
    let c = client.clone();
    let call = tokio::spawn(async move { c.transact(DB, &select_port()).await });
    peer.recv().await;
    peer.send_raw(br#"{"id": 99, "resu"#).await;
    drop(peer);
    let e = call.await.unwrap().unwrap_err();
    assert!(matches!(e, OvsdbError::Disconnected(_)), "{e:?}");
    assert!(e.to_string().contains("in the middle of a message"), "{e}");
    assert!(client.is_closed());
    let e = client.echo().await.unwrap_err();
    assert!(matches!(e, OvsdbError::Disconnected(_)), "{e:?}");
}

#[tokio::test]
async fn garbage_ends_the_connection() {
    let (client, mut peer) = pair(SECS_5);
    let c = client.clone();
    let call = tokio::spawn(async move { c.echo().await });
    peer.recv().await;
    peer.send_raw(b"HTTP/1.1 400 Bad Request\r\n").await;
    let e = call.await.unwrap().unwrap_err();
    assert!(matches!(e, OvsdbError::Disconnected(_)), "{e:?}");
    assert!(e.to_string().contains("between messages"), "{e}");
}

#[tokio::test]
async fn monitor_initial_rows_updates_and_cancel_on_drop() {
    let (client, mut peer) = pair(SECS_5);
    let c = client.clone();
    let start = tokio::spawn(async move { c.monitor(DB, &[("Open_vSwitch", &["cur_cfg"])]).await });
    let req = peer.recv().await;
    assert_eq!(req["method"], "monitor");
    let id = req["params"][1].clone();
    assert_eq!(
        req["params"],
        json!(["Open_vSwitch", id, {"Open_vSwitch": {"columns": ["cur_cfg"]}}])
    );
    peer.send(json!({"id": req["id"], "error": null,
        "result": {"Open_vSwitch": {"r1": {"new": {"cur_cfg": 3}}}}}))
        .await;
    let mut mon = start.await.unwrap().unwrap();
    let rows = mon.initial().rows("Open_vSwitch").unwrap();
    assert_eq!(rows[0].0, "r1");
    assert_eq!(rows[0].1.as_ref().unwrap()["cur_cfg"], Datum::atom(3i64));
    assert!(mon.initial().rows("Bridge").unwrap().is_empty());

    // An update of another monitor is not ours; ours arrives.
    let other = json!({"Open_vSwitch": {"r1": {"new": {"cur_cfg": 99}}}});
    peer.send(json!({"id": null, "method": "update", "params": ["someone-else", other]}))
        .await;
    let ours = json!({"Open_vSwitch": {"r1": {"old": {"cur_cfg": 3}, "new": {"cur_cfg": 4}},
                                       "r2": {"old": {"cur_cfg": 0}}}});
    peer.send(json!({"id": null, "method": "update", "params": [id, ours]}))
        .await;
    let update = mon.next().await.unwrap();
    let rows = update.rows("Open_vSwitch").unwrap();
    assert_eq!(rows[0].1.as_ref().unwrap()["cur_cfg"], Datum::atom(4i64));
    assert_eq!(rows[1], ("r2".to_string(), None), "deleted row");

    drop(mon);
    let cancel = peer.recv().await;
    assert_eq!(cancel["method"], "monitor_cancel");
    assert_eq!(cancel["params"], json!([id]));
}
