//! The fault suite (`mover_tests::faults`): faults at random points of moves, on each backend,
//! [`faults::runs`] times a case (20), each followed by the check that the target holds its old
//! rows or its new ones exactly and that nothing staged stays. Seeds are printed: a failure
//! replays with `FAULT_SEED`.

use mover_tests::contract::Backend;
use mover_tests::faults::{self, Tally};

fn said(backend: &str, case: &str, t: &Tally) {
    eprintln!(
        "faults: {backend}: {case}: {} faults landed; {} left the old rows, {} the new",
        t.landed, t.old, t.new
    );
    assert!(
        t.landed > 0,
        "{backend}: {case}: no fault landed inside a move"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite() {
    let mut b = Backend::sqlite();
    said(
        b.label,
        "a client leaving",
        &faults::a_client_leaving(&b).await,
    );
    said(
        b.label,
        "a gateway killed",
        &faults::a_gateway_killed(&mut b).await,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres() {
    let (mut b, proxy) = faults::through_a_proxy(true);
    said(
        b.label,
        "a client leaving",
        &faults::a_client_leaving(&b).await,
    );
    let cut = faults::a_connection_cut(&b, &proxy).await;
    said(b.label, "a connection cut", &cut);
    said(
        b.label,
        "a gateway killed",
        &faults::a_gateway_killed(&mut b).await,
    );
    let crashed = faults::a_database_killed(&mut b).await;
    said(b.label, "the database killed", &crashed);
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb() {
    let (mut b, proxy) = faults::through_a_proxy(false);
    let left = faults::a_client_leaving(&b).await;
    said(b.label, "a client leaving", &left);
    let cut = faults::a_connection_cut(&b, &proxy).await;
    said(b.label, "a connection cut", &cut);
    let killed = faults::a_gateway_killed(&mut b).await;
    said(b.label, "a gateway killed", &killed);
    let crashed = faults::a_database_killed(&mut b).await;
    said(b.label, "the database killed", &crashed);
}

#[tokio::test(flavor = "multi_thread")]
async fn local_folder() {
    let mut b = faults::local_folder();
    let left = faults::a_client_leaving(&b).await;
    said(b.label, "a client leaving", &left);
    let killed = faults::a_gateway_killed(&mut b).await;
    said(b.label, "a gateway killed", &killed);
    let full = faults::a_full_disk(&mut b).await;
    said(b.label, "a full disk", &full);
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_on_moto() {
    let (mut b, proxy) = faults::s3_through_a_proxy();
    let left = faults::a_client_leaving(&b).await;
    said(b.label, "a client leaving", &left);
    let cut = faults::a_connection_cut(&b, &proxy).await;
    said(b.label, "a connection cut", &cut);
    let killed = faults::a_gateway_killed(&mut b).await;
    said(b.label, "a gateway killed", &killed);
}
