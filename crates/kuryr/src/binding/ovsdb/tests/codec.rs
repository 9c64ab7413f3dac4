//! The wire format without a connection: framing, values, operations and
//! transaction results.

use serde_json::{Value, json};

use crate::binding::ovsdb::framing::Framer;
use crate::binding::ovsdb::ops::results;
use crate::binding::ovsdb::value::{row_from_json, row_to_json};
use crate::binding::ovsdb::*;

/// Feed `chunks` one by one; every message, in order.
fn frame(chunks: &[&[u8]]) -> Result<Vec<Value>, OvsdbError> {
    let mut f = Framer::default();
    let mut out = Vec::new();
    for c in chunks {
        f.buffer().extend_from_slice(c);
        while let Some(m) = f.next_message()? {
            out.push(m);
        }
    }
    Ok(out)
}

#[test]
fn framing_several_messages_in_one_read() {
    let out = frame(&[
        br#"{"id":1,"result":[]}{"id":2,"result":{}} {"method":"echo","params":[],"id":"e"}"#,
    ])
    .unwrap();
    assert_eq!(
        out,
        [
            json!({"id": 1, "result": []}),
            json!({"id": 2, "result": {}}),
            json!({"method": "echo", "params": [], "id": "e"}),
        ]
    );
}

#[test]
fn framing_a_message_split_at_every_byte() {
    let msg = r#"{"id":7,"result":[{"rows":[{"name":"br-int","ports":["set",[["uuid","x"]]]}]}],"error":null}"#;
    let bytes: Vec<&[u8]> = msg.as_bytes().chunks(1).collect();
    let out = frame(&bytes).unwrap();
    assert_eq!(out, [serde_json::from_str::<Value>(msg).unwrap()]);
    // Two messages, cut in the middle of each.
    let two = format!("{msg}\n{msg}");
    let (a, b) = two.split_at(30);
    let (b, c) = b.split_at(msg.len());
    let out = frame(&[a.as_bytes(), b.as_bytes(), c.as_bytes()]).unwrap();
    assert_eq!(out.len(), 2);
    assert_eq!(out[0], out[1]);
}

#[test]
fn framing_ignores_braces_and_escaped_quotes_in_strings() {
    let msg = r#"{"details":"a } and a { and \"}\" and \\","x":["]"]}"#;
    let (a, b) = msg.split_at(msg.find("\\\"").unwrap() + 1);
    let out = frame(&[a.as_bytes(), b.as_bytes(), b"{}"]).unwrap();
    assert_eq!(out[0]["details"], r#"a } and a { and "}" and \"#);
    assert_eq!(out[0]["x"], json!(["]"]));
    assert_eq!(out[1], json!({}));
}

#[test]
fn framing_keeps_a_partial_message_and_refuses_garbage() {
    let mut f = Framer::default();
    f.buffer().extend_from_slice(br#"  {"id":1,"res"#);
    assert!(f.next_message().unwrap().is_none());
    assert!(f.in_message());
    f.buffer().extend_from_slice(br#"ult":null}"#);
    assert_eq!(
        f.next_message().unwrap(),
        Some(json!({"id": 1, "result": null}))
    );
    assert!(!f.in_message());

    let e = frame(&[b"{} x{}"]).unwrap_err();
    assert!(matches!(e, OvsdbError::Protocol(_)), "{e}");
    assert!(e.to_string().contains("'x'"), "{e}");
    let e = frame(&[b"{\"a\":tru}"]).unwrap_err();
    assert!(e.to_string().contains("invalid JSON"), "{e}");
}

#[test]
fn atoms_round_trip() {
    let cases = [
        (Atom::from("br-int"), json!("br-int")),
        (Atom::Integer(-1), json!(-1)),
        (Atom::Real(1.5), json!(1.5)),
        (Atom::Boolean(true), json!(true)),
        (Atom::Uuid("u1".into()), json!(["uuid", "u1"])),
        (Atom::NamedUuid("n1".into()), json!(["named-uuid", "n1"])),
    ];
    for (atom, wire) in cases {
        assert_eq!(atom.to_json(), wire);
        assert_eq!(Atom::from_json(&wire), Some(atom));
    }
    for bad in [json!(null), json!({}), json!(["uuid"]), json!(["oid", "x"])] {
        assert_eq!(Atom::from_json(&bad), None, "{bad}");
    }
}

#[test]
fn sets_and_maps() {
    // A set of one is its bare atom, both ways.
    assert_eq!(Datum::atom("x").to_json(), json!("x"));
    assert_eq!(Datum::from_json(&json!(5)), Some(Datum::atom(5i64)));
    assert_eq!(Datum::empty().to_json(), json!(["set", []]));
    let two = Datum::uuids(["a", "b"]);
    assert_eq!(
        two.to_json(),
        json!(["set", [["uuid", "a"], ["uuid", "b"]]])
    );
    assert_eq!(Datum::from_json(&two.to_json()), Some(two.clone()));
    assert_eq!(two.elements().len(), 2);
    assert_eq!(two.as_atom(), None);

    let m = Datum::string_map([("iface-id", "p1"), ("owner", "kuryr")]);
    let wire = json!(["map", [["iface-id", "p1"], ["owner", "kuryr"]]]);
    assert_eq!(m.to_json(), wire);
    assert_eq!(Datum::from_json(&wire), Some(m.clone()));
    assert_eq!(m.get("owner"), Some(&Atom::from("kuryr")));
    assert_eq!(m.get("nope"), None);
    assert_eq!(
        Datum::from_json(&json!(["map", []])),
        Some(Datum::Map(vec![]))
    );
    for bad in [
        json!(["map", [["k"]]]),
        json!(["set", [{}]]),
        json!(["bag", []]),
    ] {
        assert_eq!(Datum::from_json(&bad), None, "{bad}");
    }

    let row = row_from_json(&json!({"_uuid": ["uuid", "u"], "ofport": ["set", []]})).unwrap();
    assert_eq!(row["_uuid"], Datum::uuid("u"));
    assert_eq!(row["ofport"], Datum::empty());
    assert_eq!(
        row_to_json(&row),
        json!({"_uuid": ["uuid", "u"], "ofport": ["set", []]})
    );
}

#[test]
fn operations_encode_as_rfc_7047() {
    let row = Row::from([("name".to_string(), Datum::atom("p"))]);
    let ops = [
        Op::select(
            "Bridge",
            vec![Cond::eq("name", "br-int")],
            &["_uuid", "ports"],
        ),
        Op::Insert {
            table: "Port".into(),
            row: row.clone(),
            uuid_name: Some("port".into()),
        },
        Op::Update {
            table: "Port".into(),
            conds: vec![Cond::uuid("u")],
            row: row.clone(),
        },
        Op::Mutate {
            table: "Open_vSwitch".into(),
            conds: vec![],
            mutations: vec![
                Mutation::add("next_cfg", 1),
                Mutation::delete("external_ids", Datum::strings(["k"])),
            ],
        },
        Op::Delete {
            table: "Port".into(),
            conds: vec![Cond::includes("interfaces", Datum::uuid("i"))],
        },
        Op::wait_eq("Port", vec![Cond::eq("name", "p")], &["name"], vec![row]),
        Op::Comment("kuryr".into()),
    ];
    let wire: Vec<Value> = ops.iter().map(Op::to_json).collect();
    assert_eq!(
        wire,
        [
            json!({"op": "select", "table": "Bridge", "where": [["name", "==", "br-int"]],
                   "columns": ["_uuid", "ports"]}),
            json!({"op": "insert", "table": "Port", "row": {"name": "p"}, "uuid-name": "port"}),
            json!({"op": "update", "table": "Port", "where": [["_uuid", "==", ["uuid", "u"]]],
                   "row": {"name": "p"}}),
            json!({"op": "mutate", "table": "Open_vSwitch", "where": [],
                   "mutations": [["next_cfg", "+=", 1], ["external_ids", "delete", "k"]]}),
            json!({"op": "delete", "table": "Port",
                   "where": [["interfaces", "includes", ["uuid", "i"]]]}),
            json!({"op": "wait", "table": "Port", "where": [["name", "==", "p"]],
                   "columns": ["name"], "until": "==", "rows": [{"name": "p"}], "timeout": 0}),
            json!({"op": "comment", "comment": "kuryr"}),
        ]
    );
}

#[test]
fn results_name_the_failed_operation_or_the_commit() {
    let ops = [
        Op::select("Port", vec![], &["name"]),
        Op::wait_eq("Port", vec![], &["name"], vec![]),
        Op::Comment("c".into()),
    ];
    let ok = results(&ops, json!([{"rows": [{"name": "p"}]}, {}, {}])).unwrap();
    assert_eq!(ok[0].rows().unwrap()[0]["name"], Datum::atom("p"));

    let e = results(
        &ops,
        json!([{"rows": []}, {"error": "timed out", "details": "\"where\" clause test failed"}, null]),
    )
    .unwrap_err();
    assert!(
        matches!(&e, OvsdbError::Operation { index: 1, op: "wait", error, .. } if error == "timed out"),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "transaction failed at operation 1 (wait): timed out (\"where\" clause test failed)"
    );

    let e = results(
        &ops,
        json!([{"rows": []}, {}, {}, {"error": "constraint violation", "details": "dup"}]),
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            OvsdbError::Operation {
                index: 3,
                op: "commit",
                ..
            }
        ),
        "{e:?}"
    );

    let e = results(&ops, json!([{}])).unwrap_err();
    assert!(matches!(e, OvsdbError::Protocol(_)), "{e:?}");
    let e = results(&ops, json!({"oops": 1})).unwrap_err();
    assert!(matches!(e, OvsdbError::Protocol(_)), "{e:?}");

    let insert = OpResult(json!({"uuid": ["uuid", "u9"]}).as_object().unwrap().clone());
    assert_eq!(insert.uuid(), Some("u9"));
    let count = OpResult(json!({"count": 2}).as_object().unwrap().clone());
    assert_eq!(count.count(), Some(2));
}
