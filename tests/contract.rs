//! The contract suite (`mover_tests::contract`), run by every backend.

use mover_tests::contract::{self, Backend};

#[tokio::test(flavor = "multi_thread")]
async fn local_folder() {
    let b = Backend::local();
    contract::a_dropped_write_leaves_the_target_as_it_was(&b).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_on_moto() {
    let b = Backend::s3();
    contract::a_dropped_write_leaves_the_target_as_it_was(&b).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite() {
    let b = Backend::sqlite();
    contract::a_dropped_write_leaves_the_target_as_it_was(&b).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres() {
    let b = Backend::postgres();
    contract::a_dropped_write_leaves_the_target_as_it_was(&b).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb() {
    let b = Backend::mariadb();
    contract::a_dropped_write_leaves_the_target_as_it_was(&b).await;
}
