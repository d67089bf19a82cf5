//! The contract suite (`mover_tests::contract`), run by every backend.

use mover_tests::contract::{self, Backend, Store};
use mover_tests::count_rows;
use mover_tests::names::read;

/// Every check of the contract, on one backend, one after another (each writes names of its
/// own).
async fn every_check(b: &mut Backend) {
    contract::every_existing_table_mode(b).await;
    contract::zero_rows_and_many(b).await;
    contract::projection_and_limits(b).await;
    contract::listing_by_prefix(b).await;
    contract::a_dropped_write_leaves_the_target_as_it_was(b).await;
    contract::a_dropped_read_stops_the_source(b).await;
    contract::a_killed_gateway_leaves_the_dataset_as_it_was(b).await;
    contract::a_killed_connection_leaves_the_table_as_it_was(b).await;
    contract::typed_values_round_trip(b).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn local_folder() {
    let mut b = Backend::local();
    every_check(&mut b).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_on_moto() {
    let mut b = Backend::s3();
    every_check(&mut b).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn azure_on_azurite() {
    let mut b = Backend::azure();
    every_check(&mut b).await;
}

/// Neither GCS emulator here takes object_store's writes: both refuse the XML API's multipart
/// upload that every bucket write starts with (fake-gcs-server answers `POST
/// /bucket/key?uploads=` with 400 "invalid uploadType", gcp-storage-emulator with 501). So on
/// GCS the contract's writes cannot run; what a GCS bucket reads and lists is checked here,
/// against objects put through the emulator's own API.
#[tokio::test(flavor = "multi_thread")]
async fn gcs_on_fake_gcs_server_reads_and_lists() {
    let b = Backend::gcs();
    let Store::Gcs(gcs) = &b.store else {
        unreachable!("Backend::gcs is a GCS store")
    };
    gcs.put(contract::BUCKET, "under/a.csv", "id,name\n1,one\n2,two\n");
    gcs.put(contract::BUCKET, "under/parts/p1.csv", "id,name\n3,three\n");
    gcs.put(
        contract::BUCKET,
        "under/parts/p2.csv",
        "id,name\n4,four\n5,five\n",
    );
    let mut client = b.client().await;
    assert_eq!(count_rows(&mut client, &read("t/a.csv")).await, Ok(2));
    assert_eq!(count_rows(&mut client, &read("t/parts/")).await, Ok(3));
    let listed: Vec<String> = client
        .list("t/")
        .await
        .unwrap()
        .iter()
        .map(|i| i.flight_descriptor.as_ref().unwrap().path.join("/"))
        .collect();
    assert_eq!(listed, ["t/a.csv", "t/parts/"]);
    // A write gets as far as the emulator's refusal, and says so.
    let out = b.gw.mvrec(&["cp", "t/a.csv", "t/b.csv"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("uploadType"));
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite() {
    let mut b = Backend::sqlite();
    every_check(&mut b).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres() {
    let mut b = Backend::postgres();
    every_check(&mut b).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb() {
    let mut b = Backend::mariadb();
    every_check(&mut b).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_over_tls() {
    let b = Backend::postgres_over_tls();
    contract::tls_to_the_database_is_verified(&b).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_over_tls() {
    let b = Backend::mariadb_over_tls();
    contract::tls_to_the_database_is_verified(&b).await;
}
